//! The WebSocket endpoint, `GET /ws`: authenticate before the upgrade (bearer header, or
//! `?token=` for browsers), attach a session to the user's actor, then run the session.

pub mod protocol;
mod session;
mod written;

use actors::AttachError;
use actors::domain::SessionId;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{authenticate, bearer_token};
use crate::http::{ApiError, ApiQuery, AppState};

/// Bytes the WebSocket layer reads per system call. tungstenite's default (128 KiB) is
/// zero-filled before every read and stays resident for every idle connection: it cost
/// ~140 KiB of RSS per connection and ~10% of the server's CPU under chat load. Chat
/// frames are small; a larger frame grows the buffer to its own size and no further.
const READ_BUFFER: usize = 2 * 1024;
/// Bytes of outgoing frames buffered before they are written to the socket (the session
/// also flushes after every batch of work, so this only caps a batch's buffer).
const WRITE_BUFFER: usize = 16 * 1024;

#[derive(Deserialize)]
pub(crate) struct WsQuery {
    token: Option<String>,
}

/// `GET /ws`: upgrades an authenticated request to a chat session.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = bearer_token(&headers)
        .or(query.token.as_deref())
        .ok_or_else(ApiError::unauthorized)?;
    let me = authenticate(&state, token).await?;
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
    let id = SessionId::next();
    let link = state
        .messenger()
        .attach(me.user.id, id)
        .await
        .map_err(|e| match e {
            AttachError::TooManySessions => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                "This user has too many open sessions.",
            ),
            AttachError::UserNotFound => ApiError::unauthorized(),
            AttachError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Try again in a moment.",
            ),
        })?;
    let max = state.config().max_frame_bytes;
    let tracker = state.sessions().clone();
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| tracker.track_future(session::run(state, me, id, link, socket)))
        .into_response())
}
