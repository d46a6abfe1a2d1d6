//! The Socket.IO transport: socket.io-client v4 (Socket.IO 5 on Engine.IO 4, polling
//! and WebSocket with the upgrade between them) at `/socket.io/`, served by socketioxide
//! as a layer of the router, driving the same session core as the WebSocket transport.
//!
//! A client connects with `auth: {token}` and emits `register(userId, callback)`, as
//! the backend Parley replaces asked. The token is checked there, not at connect; a
//! refusal answers `{error}` and disconnects. Once registered, the socket is a session
//! of its user like any other: every socket of a user receives.
//!
//! - Commands go to the core in the order they arrived: `send`, `sync`, `ping` (Parley's
//!   own, payloads as the native frames without `type`) and the older `sendMessage`.
//!   Each may carry an ack callback; the core's answer (`ack`, `error`, `synced`,
//!   `pong`) goes to it, or is emitted as an event of that name when there is none.
//! - The core's deliveries become events: `receiveMessage` (the message object, with
//!   `_id`), `signal`, `call:user`/`call:accepted`/`call:ended`, and `ready` first.
//! - `callUser`, `answerCall` and `endCall` go to the calls service directly: they are
//!   requests with an answer, not part of a session's stream.
//!
//! Socket.IO has no backpressure to offer: an emit either fits in the socket's buffer
//! or fails. So a durable write (a message, an answer) that does not fit waits and
//! tries again, which stalls the core as a full socket would, and a signal that does
//! not fit is dropped, as the sheddable lane would. The heartbeat is Engine.IO's.

use std::collections::VecDeque;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actors::SessionLink;
use actors::domain::{CallType, RoomId, SessionId, UserId};
use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::core::{self, Ending, Inbound, InboundStream, MAX_IN_FLIGHT, Outbound, Stop};
use super::protocol::{self, OutFrame, close};
use crate::service::{AuthUser, ServiceError};
use crate::state::AppState;
use crate::wire::MessageJson;

/// Packets buffered per socket before an emit fails (socketioxide's default is 128). A
/// sync replays up to `--sync-batch` messages at once; writes that do not fit wait.
const BUFFER: usize = 1024;
/// Bytes the WebSocket transport reads per system call, as for native sessions.
const READ_BUFFER: usize = super::ws::READ_BUFFER;
/// The longest pause between two attempts at a durable write that did not fit.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// The answers the backend Parley replaces gave to `register`.
mod refusal {
    pub(super) const NO_TOKEN: &str = "No token provided";
    pub(super) const WRONG_USER: &str = "Invalid user ID or token";
    pub(super) const INVALID_TOKEN: &str = "Invalid token";
}

/// Builds the Socket.IO layer for the router, with every handler wired, and closes
/// every Socket.IO connection once shutdown has let the sessions answer what they hold.
pub(crate) fn layer(state: &AppState) -> SocketIoLayer {
    let max = state.config().max_frame_bytes;
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(BUFFER)
        .max_payload(max as u64)
        .ws_max_message_size(max)
        .ws_max_frame_size(max)
        .ws_read_buffer_size(READ_BUFFER)
        .build_layer();
    let sessions = TaskTracker::new();
    let shared = Shared {
        state: state.clone(),
        sessions: sessions.clone(),
    };
    io.ns(
        "/",
        move |socket: SocketRef, TryData(auth): TryData<Value>| {
            connect(shared.clone(), socket, auth.ok());
            ready(())
        },
    );
    let (state, grace) = (state.clone(), state.config().shutdown_timeout / 2);
    tokio::spawn(async move {
        state.shutdown_signal().cancelled().await;
        // Sessions first answer the sends they hold (as native sessions do before their
        // 1001); then every transport closes, and clients reconnect by themselves.
        sessions.close();
        let _ = tokio::time::timeout(grace, sessions.wait()).await;
        io.close().await;
    });
    layer
}

/// What every socket's handlers share.
#[derive(Clone)]
struct Shared {
    state: AppState,
    /// The Socket.IO sessions, so shutdown can let them finish before closing sockets.
    sessions: TaskTracker,
}

/// Where a socket is in its life.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Connected, not registered: commands are refused.
    Waiting,
    /// `register` is being checked: commands queue for the session.
    Registering,
    /// A session of this user.
    Registered(UserId),
}

/// One socket: its token, its phase, and its commands on their way to the core.
struct Link {
    shared: Shared,
    token: Option<String>,
    phase: Mutex<Phase>,
    commands: Arc<Commands>,
    /// Cancelled when the socket disconnects.
    gone: CancellationToken,
}

impl Link {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }
}

/// Commands queued by the event handlers for the core, at most [`MAX_IN_FLIGHT`]. A
/// queue that allocates only when used: a channel's first block (32 commands) cost
/// every idle socket ~3.5 KiB.
#[derive(Default)]
struct Commands {
    queue: Mutex<VecDeque<Inbound<Reply>>>,
    ready: Notify,
}

impl Commands {
    /// Queues a command; gives it back when the queue is full.
    fn push(&self, command: Inbound<Reply>) -> Result<(), Inbound<Reply>> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= MAX_IN_FLIGHT {
            return Err(command);
        }
        queue.push_back(command);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// The next command. Cancel-safe: a wake-up not taken stays stored in the `Notify`.
    async fn pop(&self) -> Inbound<Reply> {
        loop {
            let next = self
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            if let Some(command) = next {
                return command;
            }
            self.ready.notified().await;
        }
    }
}

/// How a command's answer is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Parley's commands: the native frame, `type` included.
    Native,
    /// `sendMessage`: `{success: true, message}` or `{success: false, error, code}`.
    Legacy,
}

/// What a command carries to its answer: the client's callback, if it gave one.
pub(crate) struct Reply {
    callback: Option<AckSender>,
    style: Style,
}

/// The ack callback of an event, if the client passed one.
struct Callback(Option<AckSender>);

impl FromMessageParts<socketioxide::adapter::LocalAdapter> for Callback {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        socket: &Arc<socketioxide::socket::Socket>,
        value: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        let Ok(ack) = AckSender::from_message_parts(socket, value, ack_id);
        Ok(Self(ack_id.is_some().then_some(ack)))
    }
}

impl Callback {
    /// Answers the callback, if there is one (a failed answer is the client's loss:
    /// the socket is gone or not reading).
    fn answer<T: Serialize + ?Sized>(self, data: &T) {
        if let Some(ack) = self.0 {
            let _ = ack.send(data);
        }
    }
}

/// The token of a connect packet's `auth`: `{token}`, with or without `Bearer `.
fn token_of(auth: Option<Value>) -> Option<String> {
    let token = auth?.get("token")?.as_str()?.trim().to_owned();
    let token = match token.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
        _ => token,
    };
    (!token.is_empty()).then_some(token)
}

/// A socket connected: wires its handlers. Nothing is checked until `register`.
fn connect(shared: Shared, socket: SocketRef, auth: Option<Value>) {
    let link = Arc::new(Link {
        shared,
        token: token_of(auth),
        phase: Mutex::new(Phase::Waiting),
        commands: Arc::default(),
        gone: CancellationToken::new(),
    });
    let l = link.clone();
    // One handler for every event (a handler per event cost each idle socket its own
    // boxed closures). Not async: a command is queued while socketioxide dispatches its
    // packet, so commands reach the core in the order the client sent them.
    socket.on_fallback(
        move |socket: SocketRef,
              Event(event): Event,
              TryData(payload): TryData<Value>,
              callback: Callback|
              -> Ready<()> {
            let payload = payload.unwrap_or(Value::Null);
            match event.as_str() {
                "register" => {
                    tokio::spawn(register(l.clone(), socket, payload, callback));
                }
                "send" | "sync" | "ping" => {
                    command(&l, &socket, &event, Style::Native, payload, callback);
                }
                "sendMessage" => command(&l, &socket, "send", Style::Legacy, payload, callback),
                "callUser" | "answerCall" | "endCall" => {
                    tokio::spawn(call(l.clone(), event, payload, callback));
                }
                // As the backend Parley replaces did: an unknown event is ignored, unless
                // the client waits for an answer.
                _ => callback.answer(&OutFrame::Error {
                    code: "unknown_type",
                    message: "Unknown event.",
                    client_id: None,
                    retry_after_ms: None,
                }),
            }
            ready(())
        },
    );
    socket.on_disconnect(move || {
        link.gone.cancel();
        ready(())
    });
}

/// `register(userId, callback)`: checks the socket's token against `userId` and makes
/// the socket a session of that user, or refuses and disconnects.
async fn register(link: Arc<Link>, socket: SocketRef, user: Value, callback: Callback) {
    // Checked and set under one lock: two `register`s at once start one registration.
    let was = {
        let mut phase = link.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let was = *phase;
        if matches!(was, Phase::Waiting) {
            *phase = Phase::Registering;
        }
        was
    };
    match was {
        Phase::Waiting => {}
        Phase::Registering => {
            return callback.answer(&json!({"error": "Registration in progress"}));
        }
        // Registering again as the same user changes nothing.
        Phase::Registered(id) => {
            return if user.as_str() == Some(id.to_string().as_str()) {
                callback.answer(&json!({"success": true}))
            } else {
                callback.answer(&json!({"error": refusal::WRONG_USER}))
            };
        }
    }
    match attach(&link, user).await {
        Ok((me, id, session)) => {
            link.set_phase(Phase::Registered(me.user.id));
            // Answered before the session writes anything, so `ready` comes after it.
            callback.answer(&json!({"success": true}));
            let shared = &link.shared;
            let task = run(
                shared.state.clone(),
                me,
                id,
                session,
                socket,
                link.commands.clone(),
                link.gone.clone(),
            );
            let task = shared.state.sessions().track_future(task);
            tokio::spawn(shared.sessions.track_future(task));
        }
        Err(why) => {
            link.set_phase(Phase::Waiting);
            callback.answer(&json!({"error": why}));
            let _ = socket.disconnect();
        }
    }
}

/// Checks a registration and attaches the session; why not, in the words clients of
/// the backend Parley replaces expect where it had words for it.
async fn attach(link: &Link, user: Value) -> Result<(AuthUser, SessionId, SessionLink), String> {
    let state = &link.shared.state;
    let token = link.token.as_deref().ok_or(refusal::NO_TOKEN)?;
    let me = state
        .accounts()
        .authenticate(token)
        .await
        .map_err(|e| match e {
            ServiceError::Unauthorized(_) => refusal::INVALID_TOKEN.to_owned(),
            other => other.to_string(),
        })?;
    let claimed = user.as_str();
    if claimed != Some(me.user.id.to_string().as_str()) {
        return Err(refusal::WRONG_USER.to_owned());
    }
    if state.shutdown_signal().is_cancelled() {
        return Err("The server is shutting down.".to_owned());
    }
    if state.sessions().len() >= state.config().max_connections {
        return Err("The server holds as many sessions as it allows; try again later.".to_owned());
    }
    let messaging = state.messaging();
    messaging
        .check_open(me.user.id)
        .map_err(|e| e.to_string())?;
    let id = SessionId::next();
    let session = messaging.open(&me, id).await.map_err(|e| e.to_string())?;
    Ok((me, id, session))
}

/// Queues a command for the session, or refuses it at once.
fn command(
    link: &Link,
    socket: &SocketRef,
    kind: &str,
    style: Style,
    payload: Value,
    callback: Callback,
) {
    let reply = Reply {
        callback: callback.0,
        style,
    };
    let refuse = |code: &'static str, message: &str, retry_after_ms: Option<u64>, reply| {
        let frame = OutFrame::Error {
            code,
            message,
            client_id: None,
            retry_after_ms,
        };
        // Refused at once, without waiting: if even this does not fit, the client is
        // not reading its answers anyway.
        let _ = answer_now(socket, reply, &frame);
    };
    if matches!(link.phase(), Phase::Waiting) {
        return refuse("unauthorized", "Register first.", None, reply);
    }
    let max = link.shared.state.config().max_message_chars;
    let parsed = protocol::parse_value(kind, payload, max);
    if let Err(Inbound::Command(_, reply)) = link.commands.push(Inbound::Command(parsed, reply)) {
        refuse(
            "rate_limited",
            "Too many commands are waiting; slow down.",
            Some(1000),
            reply,
        );
    }
}

/// `callUser {receiverId, signalData, callType?}`, `answerCall {roomId, signal}` and
/// `endCall {roomId}`, through the calls service. A `from` in the payload is ignored:
/// the caller is the registered user. The callback, if any, gets `{success: true,
/// message}` (and `roomId` for a start) or `{success: false, message, code}`.
async fn call(link: Arc<Link>, event: String, payload: Value, callback: Callback) {
    let answer = match link.phase() {
        Phase::Registered(me) => call_inner(&link.shared.state, me, &event, &payload).await,
        _ => Err(("unauthorized", "Register first.".to_owned())),
    };
    callback.answer(&match answer {
        Ok((message, room_id)) => CallAnswer {
            success: true,
            message: message.to_owned(),
            room_id,
            code: None,
        },
        Err((code, message)) => CallAnswer {
            success: false,
            message,
            room_id: None,
            code: Some(code),
        },
    });
}

/// The answer to a call event, as the backend Parley replaces shaped it (plus `roomId`
/// and `code`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallAnswer {
    success: bool,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
}

/// Handles a call event: its success sentence (and the room, for a start), or its
/// error code and sentence.
async fn call_inner(
    state: &AppState,
    me: UserId,
    event: &str,
    payload: &Value,
) -> Result<(&'static str, Option<String>), (&'static str, String)> {
    let invalid = |why: &str| ("validation_failed", why.to_owned());
    let field = |name: &str| payload.get(name).filter(|v| !v.is_null());
    let room = || -> Result<RoomId, (&'static str, String)> {
        field("roomId")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("roomId is required"))?
            .parse()
            .map_err(|_| invalid("roomId must be two user ids joined with _"))
    };
    let data = |name: &str| -> Result<Arc<str>, (&'static str, String)> {
        let value = field(name).ok_or_else(|| invalid(&format!("{name} is required")))?;
        Ok(Arc::from(value.to_string()))
    };
    let failed = |e: ServiceError| (e.code(), e.to_string());
    let calls = state.calls();
    match event {
        "callUser" => {
            let receiver: UserId = field("receiverId")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("receiverId is required"))?
                .parse()
                .map_err(|_| invalid("receiverId is not a valid user id"))?;
            let call_type = match field("callType").map(|t| t.as_str().unwrap_or_default()) {
                None => CallType::Video,
                Some(raw) => {
                    CallType::parse(raw).map_err(|_| invalid("callType must be video or audio"))?
                }
            };
            let started = calls
                .start(me, receiver, call_type, data("signalData")?)
                .await
                .map_err(failed)?;
            Ok(("Call started", Some(started.room.to_string())))
        }
        "answerCall" => {
            calls
                .answer(me, room()?, data("signal")?)
                .await
                .map_err(failed)?;
            Ok(("Call answered", None))
        }
        _ => {
            calls.end(me, room()?).await.map_err(failed)?;
            Ok(("Call ended", None))
        }
    }
}

/// Runs a registered socket's session to its end.
async fn run(
    state: AppState,
    me: AuthUser,
    id: SessionId,
    session: SessionLink,
    socket: SocketRef,
    commands: Arc<Commands>,
    gone: CancellationToken,
) {
    let mut inbound = SioIn {
        commands,
        gone: gone.clone(),
    };
    let mut out = SioOut {
        socket: socket.clone(),
    };
    // Engine.IO has its own heartbeat: a silent client is disconnected by it.
    let ending = core::serve(&state, &me, id, session, &mut inbound, &mut out, None).await;
    drop(inbound);
    // A socket the session ended on is told why and disconnected, unless the server is
    // shutting down: then every transport is closed at once, and clients reconnect.
    if !gone.is_cancelled() && ending.code != Some(close::GOING_AWAY) {
        if let Some(code) = ending.code {
            let _ = socket.emit("close", &json!({"code": code, "reason": ending.reason}));
        }
        disconnect(socket, &gone).await;
    }
    core::finish(&state, &me, id, ending);
}

/// Disconnects a socket, waiting (a while) for room in its buffer for the packet.
async fn disconnect(socket: SocketRef, gone: &CancellationToken) {
    let mut wait = Duration::from_millis(1);
    let deadline = tokio::time::Instant::now() + super::ws::CLOSE_GRACE;
    while !gone.is_cancelled() && tokio::time::Instant::now() < deadline {
        match socket.clone().disconnect() {
            Err(SocketError::InternalChannelFull) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
            _ => return,
        }
    }
}

/// The reading half: commands queued by the event handlers, and the disconnect.
struct SioIn {
    commands: Arc<Commands>,
    gone: CancellationToken,
}

impl InboundStream for SioIn {
    type Reply = Reply;

    async fn next(&mut self) -> Inbound<Reply> {
        // Both branches are cancel-safe.
        tokio::select! {
            biased;
            () = self.gone.cancelled() => Inbound::End(Ending::gone("client_gone")),
            command = self.commands.pop() => command,
        }
    }
}

/// The writing half: the core's frames as emits and callbacks.
struct SioOut {
    socket: SocketRef,
}

impl Outbound for SioOut {
    type Reply = Reply;

    async fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), Stop> {
        match frame {
            OutFrame::Message { message } => {
                let message = message.clone().with_underscore_id();
                emit_durable(&self.socket, "receiveMessage", &message).await
            }
            OutFrame::Signal { .. } => emit_sheddable(&self.socket, "signal", frame),
            OutFrame::Call(call) => emit_sheddable(&self.socket, call_event(call.event), call),
            other => {
                emit_durable(
                    &self.socket,
                    frame_event(other),
                    &with_underscore_ids(other),
                )
                .await
            }
        }
    }

    async fn answer(&mut self, reply: Reply, frame: &OutFrame<'_>) -> Result<(), Stop> {
        match (reply.callback, reply.style) {
            // A callback is answered once or never: socketioxide consumes it even when
            // the socket's buffer is full. A lost answer ends the session (and the
            // client resends with the same clientId after reconnecting).
            (Some(callback), Style::Native) => callback
                .send(&with_underscore_ids(frame))
                .map_err(|_| Stop::Transport),
            (Some(callback), Style::Legacy) => callback
                .send(&legacy_answer(frame))
                .map_err(|_| Stop::Transport),
            (None, Style::Native) => self.write(frame).await,
            // The old backend answered nothing; only errors are worth an event.
            (None, Style::Legacy) => match frame {
                OutFrame::Error { .. } => {
                    emit_durable(&self.socket, "error", &with_underscore_ids(frame)).await
                }
                _ => Ok(()),
            },
        }
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), Stop> {
        Ok(())
    }
}

/// Answers a command without the core (refused before it got there), without waiting.
fn answer_now(socket: &SocketRef, reply: Reply, frame: &OutFrame<'_>) -> Result<(), SendError> {
    match (reply.callback, reply.style) {
        (Some(callback), Style::Native) => callback.send(&with_underscore_ids(frame)),
        (Some(callback), Style::Legacy) => callback.send(&legacy_answer(frame)),
        (None, _) => socket.emit(frame_event(frame), frame),
    }
}

/// Emits something that must not be lost: when the socket's buffer is full, waits for
/// room (which stalls the session, as a full socket stalls a native one).
async fn emit_durable<T: Serialize + ?Sized>(
    socket: &SocketRef,
    event: &str,
    data: &T,
) -> Result<(), Stop> {
    let mut wait = Duration::from_millis(1);
    loop {
        match socket.emit(event, data) {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
            Err(_) => return Err(Stop::Transport),
        }
    }
}

/// Emits something of the moment: when the socket's buffer is full it is dropped (and
/// counted), as the sheddable lane drops it.
fn emit_sheddable<T: Serialize + ?Sized>(
    socket: &SocketRef,
    event: &str,
    data: &T,
) -> Result<(), Stop> {
    match socket.emit(event, data) {
        Ok(()) => Ok(()),
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            actors::metrics::signal_shed();
            Ok(())
        }
        Err(_) => Err(Stop::Transport),
    }
}

/// The event a call signal is emitted as, with the names of the backend Parley
/// replaces.
fn call_event(event: &str) -> &'static str {
    match event {
        "incoming" => "call:user",
        "accepted" => "call:accepted",
        _ => "call:ended",
    }
}

/// The event a frame is emitted as when it is not a callback's answer: its type.
fn frame_event(frame: &OutFrame<'_>) -> &'static str {
    match frame {
        OutFrame::Ready { .. } => "ready",
        OutFrame::Ack { .. } => "ack",
        OutFrame::Message { .. } => "receiveMessage",
        OutFrame::Synced { .. } => "synced",
        OutFrame::Signal { .. } => "signal",
        OutFrame::Call(_) => "call",
        OutFrame::Pong => "pong",
        OutFrame::Error { .. } => "error",
    }
}

/// A frame with `_id` beside the `id` of its user or message, as Socket.IO answers.
fn with_underscore_ids<'a>(frame: &OutFrame<'a>) -> OutFrame<'a> {
    match frame.clone() {
        OutFrame::Ready { user, session_id } => OutFrame::Ready {
            user: user.with_underscore_id(),
            session_id,
        },
        OutFrame::Ack {
            client_id,
            duplicate,
            message,
        } => OutFrame::Ack {
            client_id,
            duplicate,
            message: message.with_underscore_id(),
        },
        OutFrame::Message { message } => OutFrame::Message {
            message: message.with_underscore_id(),
        },
        other => other,
    }
}

/// `sendMessage`'s answer: `{success: true, message, duplicate}` or `{success: false,
/// error, code, retryAfterMs?}`.
#[derive(Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum LegacyAnswer<'a> {
    Sent {
        success: bool,
        message: MessageJson<'a>,
        duplicate: bool,
    },
    Failed {
        success: bool,
        error: &'a str,
        code: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Other(OutFrame<'a>),
}

fn legacy_answer<'a>(frame: &OutFrame<'a>) -> LegacyAnswer<'a> {
    match frame {
        OutFrame::Ack {
            duplicate, message, ..
        } => LegacyAnswer::Sent {
            success: true,
            message: message.clone().with_underscore_id(),
            duplicate: *duplicate,
        },
        OutFrame::Error {
            code,
            message,
            retry_after_ms,
            ..
        } => LegacyAnswer::Failed {
            success: false,
            error: message,
            code,
            retry_after_ms: *retry_after_ms,
        },
        // `sendMessage` is answered with an ack or an error only.
        other => LegacyAnswer::Other(with_underscore_ids(other)),
    }
}
