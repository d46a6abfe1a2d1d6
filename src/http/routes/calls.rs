//! Calls over REST: start, answer, end. Each rings every live session of the other
//! party (Socket.IO `call:*` events, native WebSocket `call` frames); the call's record
//! is a message in the pair's conversation.

use std::sync::Arc;

use actors::domain::{CallType, Invalid, RoomId, UserId};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::http::{ApiError, ApiJson, ErrorEnvelope, Success, Validator};
use crate::service::AuthUser;
use crate::state::AppState;
use crate::wire::MessageJson;

/// The body of `POST /api/call/start`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartBody {
    /// The user to call.
    #[schema(value_type = String, format = Uuid)]
    receiver_id: Option<String>,
    /// The caller's signalling data (any JSON value but null), passed on as sent.
    #[schema(value_type = Object)]
    signal_data: Option<Box<RawValue>>,
    /// `video` (the default) or `audio`.
    #[schema(value_type = Option<String>, pattern = "^(video|audio)$")]
    call_type: Option<String>,
}

/// The body of `POST /api/call/answer`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnswerBody {
    /// The room: the two parties' ids, sorted, joined with `_`.
    #[schema(value_type = String, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    room_id: Option<String>,
    /// The answerer's signalling data, passed on as sent.
    #[schema(value_type = Object)]
    signal_data: Option<Box<RawValue>>,
}

/// The body of `POST /api/call/end`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndBody {
    /// The room: the two parties' ids, sorted, joined with `_`.
    #[schema(value_type = String, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    room_id: Option<String>,
}

/// The answer to `POST /api/call/start`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallStarted<'a> {
    message: &'static str,
    room_id: String,
    /// The call's record, as it appears in history.
    call: MessageJson<'a>,
}

/// The answer to `POST /api/call/answer` and `/api/call/end`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallDone {
    message: &'static str,
}

/// A user id field.
fn user_id(raw: &str) -> Result<UserId, Invalid> {
    raw.parse().map_err(|_| Invalid("is not a valid id"))
}

/// A room id field.
fn room_id(raw: &str) -> Result<RoomId, Invalid> {
    raw.parse()
}

/// Signalling data: any JSON value but `null` (which reads as missing), kept as sent.
fn signal_data(v: &mut Validator, raw: Option<Box<RawValue>>) -> Option<Arc<str>> {
    match raw {
        Some(raw) => Some(Arc::from(raw.get())),
        None => {
            v.fail("signalData", "is required");
            None
        }
    }
}

/// `POST /api/call/start`: calls `receiverId` (`callType` video, the default, or audio),
/// ringing each of their live sessions with `signalData`; records the call. 404
/// `receiver_offline` when they have no live session.
#[utoipa::path(post, path = "/api/call/start", tag = "calls", security(("bearer" = [])), request_body = StartBody,
    responses((status = 200, description = "Ringing; the call is recorded", body = CallStarted), (status = "4XX", description = "Refused, or the receiver is offline (404 receiver_offline)", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn start(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let mut v = Validator::default();
    let receiver = v.field("receiverId", body.receiver_id.as_deref(), user_id);
    let signal = signal_data(&mut v, body.signal_data);
    let call_type = match body.call_type.as_deref() {
        None => Some(CallType::Video),
        Some(raw) => v.field("callType", Some(raw), CallType::parse),
    };
    v.finish()?;
    let (Some(receiver), Some(signal), Some(call_type)) = (receiver, signal, call_type) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let started = state
        .calls()
        .start(me.user.id, receiver, call_type, signal)
        .await?;
    Ok(Success(CallStarted {
        message: "Call started",
        room_id: started.room.to_string(),
        call: MessageJson::from(started.record.as_ref()).with_underscore_id(),
    })
    .into_response())
}

/// `POST /api/call/answer`: answers the call of `roomId` with `signalData`, which
/// reaches each live session of the other party. 404 `caller_offline` when they have
/// none; 403 `not_in_room` for anyone but the room's two parties.
#[utoipa::path(post, path = "/api/call/answer", tag = "calls", security(("bearer" = [])), request_body = AnswerBody,
    responses((status = 200, description = "Answered", body = CallDone), (status = "4XX", description = "Refused, or the caller is offline (404 caller_offline)", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn answer(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<AnswerBody>,
) -> Result<Success<CallDone>, ApiError> {
    let mut v = Validator::default();
    let room = v.field("roomId", body.room_id.as_deref(), room_id);
    let signal = signal_data(&mut v, body.signal_data);
    v.finish()?;
    let (Some(room), Some(signal)) = (room, signal) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    state.calls().answer(me.user.id, room, signal).await?;
    Ok(Success(CallDone {
        message: "Call answered",
    }))
}

/// `POST /api/call/end`: ends the call of `roomId`: its record gets its end time and
/// duration, and each live session of the other party is told. 403 `not_in_room` for
/// anyone but the room's two parties.
#[utoipa::path(post, path = "/api/call/end", tag = "calls", security(("bearer" = [])), request_body = EndBody,
    responses((status = 200, description = "Ended", body = CallDone), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn end(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<EndBody>,
) -> Result<Success<CallDone>, ApiError> {
    let mut v = Validator::default();
    let room = v.field("roomId", body.room_id.as_deref(), room_id);
    v.finish()?;
    let Some(room) = room else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    state.calls().end(me.user.id, room).await?;
    Ok(Success(CallDone {
        message: "Call ended",
    }))
}
