//! `GET /ws`: authenticate before the upgrade (bearer header, or `?token=` for
//! browsers), apply the session limits, attach a session to the user, then hand the
//! socket to the realtime layer.

use actors::domain::SessionId;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::http::{ApiError, ApiQuery, ErrorEnvelope, bearer_token, missing_token};
use crate::realtime::ws::{READ_BUFFER, WRITE_BUFFER, run};
use crate::service::ServiceError;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WsQuery {
    token: Option<String>,
}

/// `GET /ws`: upgrades an authenticated request to a chat session.
#[utoipa::path(get, path = "/ws", tag = "realtime", security(("bearer" = [])), params(WsQuery),
    description = "WebSocket upgrade (protocol v2, docs/protocol.md). Browsers pass the token as ?token=.",
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = "4XX", description = "Refused", body = ErrorEnvelope), (status = "5XX", description = "Too many sessions, or shutting down", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = bearer_token(&headers)
        .or(query.token.as_deref())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ServiceError::Unauthorized(missing_token(&headers)))?;
    let me = state.accounts().authenticate(token).await?;
    let ws = ws.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "This route only accepts WebSocket upgrades.",
        )
    })?;
    if state.shutdown_signal().is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "The server is shutting down.",
        ));
    }
    // Counted before the upgrade, so concurrent upgrades may overshoot by a few.
    if state.sessions().len() >= state.config().max_connections {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "The server holds as many sessions as it allows; try again later.",
        ));
    }
    let messaging = state.messaging();
    messaging.check_open(me.user.id)?;
    let id = SessionId::next();
    let link = messaging.open(&me, id).await?;
    let max = state.config().max_frame_bytes;
    let tracker = state.sessions().clone();
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| tracker.track_future(run(state, me, id, link, socket)))
        .into_response())
}
