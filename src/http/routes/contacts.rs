//! Contacts: add one by email, list them.

use actors::domain::Email;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ErrorEnvelope, Success, Validator};
use crate::service::AuthUser;
use crate::state::AppState;
use crate::wire::UserJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddContactBody {
    #[schema(value_type = String, max_length = 254, pattern = r"^[\x21-\x3f\x41-\x7e]{1,64}@[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?(?:\.[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)+$")]
    email: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactResponse {
    message: &'static str,
    contact: UserJson,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactsResponse {
    contacts: Vec<UserJson>,
}

#[utoipa::path(post, path = "/api/contact/add-contact", tag = "contacts", security(("bearer" = [])), request_body = AddContactBody,
    responses((status = 200, description = "Added (200, as the backend Parley replaces answered)", body = ContactResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `POST /api/contact/add-contact`: makes the caller and the owner of `email` contacts
/// of each other.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn add(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<AddContactBody>,
) -> Result<Success<ContactResponse>, ApiError> {
    let mut v = Validator::default();
    let email = v.field("email", body.email.as_deref(), Email::parse);
    v.finish()?;
    let Some(email) = email else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let contact = state.contacts().add(me.user.id, &email).await?;
    // 200, not 201: the backend Parley replaces answered 200, and its clients check.
    Ok(Success(ContactResponse {
        message: "Contact added",
        contact: UserJson::from(&contact).with_underscore_id(),
    }))
}

#[utoipa::path(get, path = "/api/contact/contacts", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, description = "The contacts", body = ContactsResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/contact/contacts`: the caller's contacts, sorted by name.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Success<ContactsResponse>, ApiError> {
    let users = state.contacts().list(me.user.id).await?;
    Ok(Success(ContactsResponse {
        contacts: users
            .iter()
            .map(|u| UserJson::from(u).with_underscore_id())
            .collect(),
    }))
}
