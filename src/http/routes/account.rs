//! The caller's account: changing the password, deleting the account, exporting its data.

use actors::domain::Password;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::sessions::SessionJson;
use crate::http::{ApiError, ApiJson, ApiQuery, ClientAddr, ErrorEnvelope, Success, Validator};
use crate::service::{AuthUser, ExportCursor, ExportPage};
use crate::state::AppState;
use crate::wire::{MessageJson, Rfc3339, UserJson};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordBody {
    /// The password in use now.
    #[schema(value_type = String, min_length = 1)]
    current_password: Option<String>,
    /// The new one: 8 to 128 characters.
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    new_password: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteAccountBody {
    /// The account's password, to confirm.
    #[schema(value_type = String, min_length = 1)]
    password: Option<String>,
}

/// `POST /api/auth/password`: replaces the caller's password after checking the current
/// one, and signs out every other device (their WebSocket sessions close with 4003);
/// this one stays signed in. 403 `wrong_password` when the current password is wrong.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordBody,
    responses((status = 204, description = "Changed; the other devices are signed out"), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    me: AuthUser,
    client: ClientAddr,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let accounts = state.accounts();
    accounts.check_account_request(me.user.id)?;
    let mut v = Validator::default();
    let current = v.present("currentPassword", body.current_password.as_deref());
    let new = v.field("newPassword", body.new_password.as_deref(), Password::parse);
    v.finish()?;
    let (Some(current), Some(new)) = (current, new) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    accounts
        .change_password(&me, &current, new, client.0)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/auth/account`: deletes the caller's account after checking its
/// password. Every device is signed out, the content of every message it sent is erased
/// (others see `deleted: true` in its place), and its email is free to register again.
#[utoipa::path(delete, path = "/api/auth/account", tag = "auth", security(("bearer" = [])), request_body = DeleteAccountBody,
    responses((status = 204, description = "Deleted"), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    me: AuthUser,
    client: ClientAddr,
    ApiJson(body): ApiJson<DeleteAccountBody>,
) -> Result<StatusCode, ApiError> {
    let accounts = state.accounts();
    accounts.check_account_request(me.user.id)?;
    let mut v = Validator::default();
    let password = v.present("password", body.password.as_deref());
    v.finish()?;
    let Some(password) = password else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    accounts.delete_account(&me, &password, client.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which page of an export.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// The `nextCursor` of the previous page; the first page without it.
    #[param(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9]{1,19}$"
    )]
    cursor: Option<String>,
}

/// The account itself, in an export.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportAccount {
    id: String,
    name: String,
    email: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Rfc3339,
}

/// A conversation, in an export.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportConversation {
    id: String,
    participants: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Rfc3339,
}

/// One page of the caller's data. The first page (no `cursor`) also holds the account,
/// contacts, conversations and sessions; every page holds up to 500 messages of the
/// caller's conversations, sent or received, by conversation then seq.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<ExportAccount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<Vec<UserJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversations: Option<Vec<ExportConversation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<SessionJson>>,
    messages: Vec<MessageJson<'a>>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

fn export_response(page: &ExportPage) -> ExportResponse<'_> {
    let head = page.head.as_ref();
    ExportResponse {
        account: head.map(|h| ExportAccount {
            id: h.user.id.to_string(),
            name: h.user.name.as_str().to_owned(),
            email: h.user.email.as_str().to_owned(),
            created_at: Rfc3339(h.created_at),
        }),
        contacts: head.map(|h| {
            h.contacts
                .iter()
                .map(|u| UserJson::from(u).with_underscore_id())
                .collect()
        }),
        conversations: head.map(|h| {
            h.conversations
                .iter()
                .map(|c| ExportConversation {
                    id: c.id.to_string(),
                    participants: c.participants.iter().map(ToString::to_string).collect(),
                    created_at: Rfc3339(c.created_at),
                })
                .collect()
        }),
        sessions: head.map(|h| h.sessions.iter().map(SessionJson::from).collect()),
        messages: page
            .events
            .iter()
            .map(|e| MessageJson::from(e).with_underscore_id())
            .collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }
}

/// `GET /api/auth/export?cursor=`: the caller's data, a page at a time (rate-limited
/// per user).
#[utoipa::path(get, path = "/api/auth/export", tag = "auth", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, description = "A page of the caller's data", body = ExportResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn export(
    State(state): State<AppState>,
    me: AuthUser,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let mut v = Validator::default();
    let cursor = match query.cursor.as_deref() {
        None => None,
        raw => v.field("cursor", raw, ExportCursor::parse),
    };
    v.finish()?;
    let current = me.claims.login_id().ok().flatten();
    let page = state.export().page(&me.user, current, cursor).await?;
    // The answer borrows from the page, so it is encoded here, while the page lives.
    Ok(Success(export_response(&page)).into_response())
}
