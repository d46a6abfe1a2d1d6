//! Contacts: add one by email, list them.

use actors::domain::{Email, Timestamp};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::http::{ApiError, ApiJson, AppState, Validator};
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
    let Some(other) = state.store().user_by_email(&email).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            "No user has this email.",
        ));
    };
    if other.user.id == me.user.id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "cannot_add_self",
            "You cannot add yourself as a contact.",
        ));
    }
    if !state
        .store()
        .add_contacts(me.user.id, other.user.id, Timestamp::now())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_contact",
            "This user is already a contact.",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(ContactResponse {
            contact: UserJson::from(&other.user),
        }),
    ))
}

/// `GET /api/contact/contacts`: the caller's contacts, sorted by name.
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Json<ContactsResponse>, ApiError> {
    let ids = state.store().contacts(me.user.id).await?;
    let mut users = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(record) = state.store().user(id).await? {
            users.push(record.user);
        }
    }
    users.sort_by(|a, b| {
        let key = |u: &actors::domain::User| {
            (u.name.as_str().to_lowercase(), u.email.as_str().to_owned())
        };
        key(a).cmp(&key(b))
    });
    Ok(Json(ContactsResponse {
        contacts: users.iter().map(UserJson::from).collect(),
    }))
}
