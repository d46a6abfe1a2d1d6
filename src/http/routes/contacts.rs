//! Contacts: add one by email, list them.

use actors::domain::Email;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, Validator};
use crate::service::AuthUser;
use crate::state::AppState;
use crate::wire::UserJson;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddContactBody {
    email: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactResponse {
    contact: UserJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactsResponse {
    contacts: Vec<UserJson>,
}

/// `POST /api/contact/add-contact`: makes the caller and the owner of `email` contacts
/// of each other.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn add(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<AddContactBody>,
) -> Result<(StatusCode, Json<ContactResponse>), ApiError> {
    let mut v = Validator::default();
    let email = v.field("email", body.email.as_deref(), Email::parse);
    v.finish()?;
    let Some(email) = email else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let contact = state.contacts().add(me.user.id, &email).await?;
    Ok((
        StatusCode::CREATED,
        Json(ContactResponse {
            contact: UserJson::from(&contact),
        }),
    ))
}

/// `GET /api/contact/contacts`: the caller's contacts, sorted by name.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Json<ContactsResponse>, ApiError> {
    let users = state.contacts().list(me.user.id).await?;
    Ok(Json(ContactsResponse {
        contacts: users.iter().map(UserJson::from).collect(),
    }))
}
