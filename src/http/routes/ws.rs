//! `GET /ws`: authenticate before the upgrade (bearer header, or `?token=` for
//! browsers), apply the session limits, attach a session to the user, then complete the
//! WebSocket handshake (RFC 6455 over HTTP/1.1) and hand the socket to the realtime
//! layer.

use actors::domain::SessionId;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::http::{ApiError, ApiQuery, ErrorEnvelope, bearer_token, missing_token};
use crate::realtime::ws::{READ_BUFFER, Socket, WRITE_BUFFER, run};
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
    handshake: Result<Handshake, ApiError>,
) -> Result<Response, ApiError> {
    let token = bearer_token(&headers)
        .or(query.token.as_deref())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ServiceError::Unauthorized(missing_token(&headers)))?;
    let me = state.accounts().authenticate(token).await?;
    let handshake = handshake?;
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
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let tracker = state.sessions().clone();
    Ok(handshake.accept(config, move |socket| {
        tracker.track_future(run(state, me, id, link, socket))
    }))
}

/// A valid WebSocket handshake request, not yet answered.
pub(crate) struct Handshake {
    /// The `Sec-WebSocket-Accept` the answer carries.
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let required = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "websocket_required",
                "This route only accepts WebSocket upgrades.",
            )
        };
        let headers = &parts.headers;
        let valid = parts.method == Method::GET
            && has_token(headers, header::CONNECTION, "upgrade")
            && equals(headers, header::UPGRADE, "websocket")
            && equals(headers, header::SEC_WEBSOCKET_VERSION, "13");
        if !valid {
            return Err(required());
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|key| is_key(key.as_bytes()))
            .ok_or_else(required)?;
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes())
            .parse()
            .map_err(|_| required())?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(required)?;
        Ok(Self { accept, on_upgrade })
    }
}

impl Handshake {
    /// Answers `101 Switching Protocols`; once the connection is upgraded, runs `then`
    /// on the socket.
    fn accept<F, Fut>(self, config: WebSocketConfig, then: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Self { accept, on_upgrade } = self;
        tokio::spawn(async move {
            // An error means the client went away before the upgrade completed.
            if let Ok(upgraded) = on_upgrade.await {
                let io = TokioIo::new(upgraded);
                then(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await).await;
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        response.into_response()
    }
}

/// Whether the header holds `token` in its comma-separated list (any case).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Whether the header is `value` (any case).
fn equals(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Whether a `Sec-WebSocket-Key` is what RFC 6455 asks: 16 bytes in base64 (24
/// characters, the last two `==`).
fn is_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sixteen_bytes_of_base64() {
        assert!(is_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        for bad in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25jZQ===",
            b"dGhlIHNhbXBsZSBub25jZQ-=",
            b"dGhlIHNhbXBsZSBub25j ZQ==",
        ] {
            assert!(!is_key(bad), "{}", String::from_utf8_lossy(bad));
        }
        // RFC 6455's example.
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn connection_upgrade_is_found_in_a_list_in_any_case() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(has_token(&headers, header::CONNECTION, "upgrade"));
        headers.insert(header::CONNECTION, "upgraded".parse().unwrap());
        assert!(!has_token(&headers, header::CONNECTION, "upgrade"));
    }
}
