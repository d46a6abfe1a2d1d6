//! Blocking: block and unblock a user, list the users one blocks.

use actors::domain::UserId;
use axum::extract::{Path, State};
use serde::Serialize;

use crate::http::{ApiError, ErrorEnvelope, Success};
use crate::service::{AuthUser, ServiceError};
use crate::state::AppState;
use crate::wire::UserJson;

/// The answer to a block or an unblock.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockResponse {
    user_id: String,
    blocked: bool,
}

/// The users the caller blocks.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockedResponse {
    blocked: Vec<UserJson>,
}

/// A user id from the path; one that does not parse names no user.
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ServiceError::UserNotFound.into())
}

#[utoipa::path(post, path = "/api/users/{id}/block", tag = "blocking", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user to block")),
    responses((status = 200, description = "Blocked (again is harmless)", body = BlockResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `POST /api/users/{id}/block`: the user can no longer message or call the caller in
/// their direct conversation, add them as a contact or to a group, or see their
/// presence and typing; they are not told why.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn block(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Success<BlockResponse>, ApiError> {
    let other = user_id(&id)?;
    state.blocks().block(me.user.id, other).await?;
    Ok(Success(BlockResponse {
        user_id: other.to_string(),
        blocked: true,
    }))
}

#[utoipa::path(delete, path = "/api/users/{id}/block", tag = "blocking", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user to unblock")),
    responses((status = 200, description = "Unblocked (harmless when not blocked)", body = BlockResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `DELETE /api/users/{id}/block`: lifts a block.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn unblock(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Success<BlockResponse>, ApiError> {
    let other = user_id(&id)?;
    state.blocks().unblock(me.user.id, other).await?;
    Ok(Success(BlockResponse {
        user_id: other.to_string(),
        blocked: false,
    }))
}

#[utoipa::path(get, path = "/api/users/blocked", tag = "blocking", security(("bearer" = [])),
    responses((status = 200, description = "The users the caller blocks, by name", body = BlockedResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/users/blocked`: the users the caller blocks.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Success<BlockedResponse>, ApiError> {
    let users = state.blocks().list(me.user.id).await?;
    Ok(Success(BlockedResponse {
        blocked: users
            .iter()
            .map(|u| UserJson::from(u).with_underscore_id())
            .collect(),
    }))
}
