//! Presence over REST: the state of everyone the caller may see, and hiding one's own
//! last seen time. Changes arrive as `presence` signals.

use actors::domain::UserId;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ErrorEnvelope, Success, Validator};
use crate::service::AuthUser;
use crate::state::AppState;
use crate::wire::Rfc3339;

/// One person's presence.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PresenceJson {
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    online: bool,
    /// When their last session ended; absent when unknown or hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_seen: Option<Rfc3339>,
}

/// The body of `GET /api/presence`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PresenceResponse {
    presence: Vec<PresenceJson>,
}

/// The body of `PATCH /api/presence`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PresenceSettings {
    /// True to hide your last seen time from everyone. Required: absent (or null) is a
    /// 400 naming it, checked by the handler so the answer names the field.
    #[schema(value_type = bool)]
    hide_last_seen: Option<bool>,
}

/// The answer to `PATCH /api/presence`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PresenceSettingsResponse {
    hide_last_seen: bool,
}

#[utoipa::path(get, path = "/api/presence", tag = "presence", security(("bearer" = [])),
    responses((status = 200, description = "The presence of the caller's contacts and co-members", body = PresenceResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/presence`: online and last seen of everyone the caller may see it of:
/// their contacts and the members of their conversations.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Success<PresenceResponse>, ApiError> {
    let views = state.presence().visible_to(me.user.id).await?;
    Ok(Success(PresenceResponse {
        presence: views
            .into_iter()
            .map(|v| PresenceJson {
                user_id: v.user,
                online: v.online,
                last_seen: v.last_seen.map(Rfc3339),
            })
            .collect(),
    }))
}

#[utoipa::path(patch, path = "/api/presence", tag = "presence", security(("bearer" = [])), request_body = PresenceSettings,
    responses((status = 200, description = "Saved", body = PresenceSettingsResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `PATCH /api/presence {hideLastSeen}`: hides (or shows again) the caller's last seen
/// time; whether they are online is always shown.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn settings(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<PresenceSettings>,
) -> Result<Success<PresenceSettingsResponse>, ApiError> {
    let Some(hide) = body.hide_last_seen else {
        let mut v = Validator::default();
        v.fail("hideLastSeen", "is required");
        v.finish()?;
        return Err(ApiError::internal("validator passed a missing field"));
    };
    state
        .presence()
        .set_hide_last_seen(me.user.id, hide)
        .await?;
    Ok(Success(PresenceSettingsResponse {
        hide_last_seen: hide,
    }))
}
