//! Signed-in devices: the list, and signing one out.

use actors::domain::LoginId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use crate::http::{ApiError, ErrorEnvelope, Success, Validator};
use crate::service::{AuthUser, LoginView};
use crate::state::AppState;
use crate::wire::Rfc3339;

/// A signed-in device.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Session)]
pub(crate) struct SessionJson {
    /// Its id, for `DELETE /api/auth/sessions/{id}`.
    #[schema(value_type = String, format = Uuid)]
    id: LoginId,
    /// The name the client gave, or its User-Agent.
    device: String,
    /// When it signed in.
    #[schema(value_type = String, format = DateTime)]
    created_at: Rfc3339,
    /// When a token of it was last used or refreshed (to the minute).
    #[schema(value_type = String, format = DateTime)]
    last_seen_at: Rfc3339,
    /// Whether it is the device asking.
    current: bool,
}

impl From<&LoginView> for SessionJson {
    fn from(view: &LoginView) -> Self {
        Self {
            id: view.login.id,
            device: view.login.device.as_str().to_owned(),
            created_at: Rfc3339(view.login.created_at),
            last_seen_at: Rfc3339(view.login.last_seen_at),
            current: view.current,
        }
    }
}

/// The caller's signed-in devices.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList {
    sessions: Vec<SessionJson>,
}

/// `GET /api/auth/sessions`: the caller's signed-in devices, oldest first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The signed-in devices", body = SessionList), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Success<SessionList>, ApiError> {
    let accounts = state.accounts();
    accounts.check_account_request(me.user.id)?;
    let views = accounts.sessions(&me).await?;
    Ok(Success(SessionList {
        sessions: views.iter().map(SessionJson::from).collect(),
    }))
}

/// `DELETE /api/auth/sessions/{id}`: signs that device out: its tokens are refused from
/// now on and its WebSocket sessions close with 4003. 404 for an id that is not one of
/// the caller's devices.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The session's id")),
    responses((status = 204, description = "Signed out"), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let accounts = state.accounts();
    accounts.check_account_request(me.user.id)?;
    let mut v = Validator::default();
    let id = v.field("id", Some(&id), |s| {
        s.parse::<LoginId>()
            .map_err(|_| actors::domain::Invalid("is not a valid id"))
    });
    v.finish()?;
    let Some(id) = id else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    accounts.sign_out(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
