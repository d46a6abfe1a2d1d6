//! The JSON shapes of domain objects and the close codes, shared by the REST API and the
//! realtime protocol (protocol v2: one vocabulary, camelCase, with the names of the
//! backend Parley replaces where it had one). Only this outer layer knows the wire
//! format; ids are strings, times are RFC 3339 with milliseconds.

use std::collections::HashMap;

use actors::domain::{
    CallInfo, CallSignal, ContentType, ConversationId, Event, EventId, EventKind, MembershipChange,
    MessageContent, RoomId, Seq, Signal, SignalKind, Timestamp, User, UserId,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// A user as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserJson {
    /// Id.
    pub id: String,
    /// The id again, under the name the backend Parley replaces used (REST and
    /// Socket.IO; not in native WebSocket frames).
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    pub underscore_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
}

impl From<&User> for UserJson {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            underscore_id: None,
            name: u.name.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
        }
    }
}

impl UserJson {
    /// With `_id` beside `id`, as REST and Socket.IO answer.
    pub fn with_underscore_id(mut self) -> Self {
        self.underscore_id = Some(self.id.clone());
        self
    }
}

/// What kind of message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum MessageType {
    /// A text message.
    Text,
    /// The record of a video call.
    Video,
    /// The record of an audio call.
    Audio,
    /// A group's membership changed (created, added, removed, left, renamed, a role):
    /// what happened is in `membership`; `content` is empty.
    Membership,
}

impl From<ContentType> for MessageType {
    fn from(t: ContentType) -> Self {
        match t {
            ContentType::Text => MessageType::Text,
            ContentType::Video => MessageType::Video,
            ContentType::Audio => MessageType::Audio,
        }
    }
}

/// A call as recorded in its message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallInfoJson {
    /// `video` or `audio`, as the message's `type`.
    pub call_type: MessageType,
    /// The two parties' ids, sorted, joined with `_` (absent outside 1:1 conversations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// When it started.
    pub started_at: String,
    /// When it ended, once it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// How long it lasted, in whole seconds, once it has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

impl CallInfoJson {
    fn new(content: &MessageContent, call: &CallInfo, sender: UserId) -> Self {
        Self {
            call_type: content.content_type.into(),
            room_id: content.receiver.map(|r| RoomId::of(sender, r).to_string()),
            started_at: rfc3339(call.started_at),
            ended_at: call.ended_at.map(rfc3339),
            duration: call.duration_secs(),
        }
    }
}

/// A message as clients see it, on REST and WebSocket alike.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Message)]
pub struct MessageJson<'a> {
    /// Unique id.
    #[schema(value_type = String, format = Uuid)]
    pub id: EventId,
    /// The id again, under the name the backend Parley replaces used (REST and
    /// Socket.IO; not in native WebSocket frames).
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub underscore_id: Option<EventId>,
    /// Conversation id.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// Position in the conversation.
    pub seq: u64,
    /// Sender's user id.
    #[schema(value_type = String, format = Uuid)]
    pub sender: UserId,
    /// The other participant's user id, in a 1:1 conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub receiver: Option<UserId>,
    /// Text; empty when `deleted`.
    pub content: &'a str,
    /// `text`, or `video` or `audio` for a call's record.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// For a call: its type, room, start, and end and duration once it has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_info: Option<CallInfoJson>,
    /// For an amendment: the seq of the message it amends; the rest of this object is
    /// that message's new content (under the amendment's own id and seq).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amends: Option<Seq>,
    /// For an edit: the seq of the message it edits; `content` is the new text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edits: Option<Seq>,
    /// For a delete: the seq of the message it deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes: Option<Seq>,
    /// When its sender last edited it (a message in history or sync that was edited).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<Rfc3339>,
    /// A deleted message, or any event of a deleted account: a tombstone whose
    /// `content` is erased (empty) in the store, not hidden.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub deleted: bool,
    /// For a membership event: `{"action": "created", "name"}`, `{"action": "added",
    /// "users"}`, `{"action": "removed", "users"}`, `{"action": "left"}`, `{"action":
    /// "renamed", "name"}` or `{"action": "role_changed", "user", "role"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub membership: Option<&'a MembershipChange>,
    /// The sender's retry key, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// When the server accepted it.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Rfc3339,
}

// Ids and the time serialize straight into the frame (their `Serialize` writes their
// text form), so building and encoding a message allocates nothing but the frame: it
// is done once per recipient per message.
impl<'a> From<&'a Event> for MessageJson<'a> {
    fn from(e: &'a Event) -> Self {
        let (content, amends) = match &e.kind {
            EventKind::Message(m) => (Some(m), None),
            EventKind::Amend { target, content } => (Some(content), Some(*target)),
            _ => (None, None),
        };
        let membership = match &e.kind {
            EventKind::Membership(change) => Some(change),
            _ => None,
        };
        let (edits, deletes) = match &e.kind {
            EventKind::Edit { target, .. } => (Some(*target), None),
            EventKind::Delete { target } => (None, Some(*target)),
            _ => (None, None),
        };
        Self {
            id: e.id,
            underscore_id: None,
            conversation_id: e.conversation,
            seq: e.seq,
            sender: e.sender,
            receiver: content.and_then(|m| m.receiver),
            content: e.text().map_or("", |t| t.as_str()),
            kind: match (content, membership) {
                (Some(m), _) => m.content_type.into(),
                (None, Some(_)) => MessageType::Membership,
                (None, None) => MessageType::Text,
            },
            call_info: content
                .and_then(|m| m.call.as_ref().map(|c| CallInfoJson::new(m, c, e.sender))),
            amends,
            edits,
            deletes,
            edited_at: content.and_then(|m| m.edited_at).map(Rfc3339),
            deleted: content.is_some_and(|m| m.deleted) || matches!(e.kind, EventKind::Erased),
            membership,
            client_id: e.client_id.as_ref().map(|c| c.as_str()),
            created_at: Rfc3339(e.at),
        }
    }
}

impl MessageJson<'_> {
    /// With `_id` beside `id`, as REST and Socket.IO answer.
    pub fn with_underscore_id(mut self) -> Self {
        self.underscore_id = Some(self.id);
        self
    }
}

/// A signal (typing, a receipt, presence) as clients see it: of the moment, never
/// stored, and dropped for a session that has fallen behind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalJson {
    /// `typing`, `delivered`, `read` or `presence`.
    pub kind: &'static str,
    /// The conversation it concerns (absent for presence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Who it is about.
    pub user_id: String,
    /// Typing: whether they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Typing, when active: how long it holds unless renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
    /// Receipts: up to which seq.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Presence: whether any session of theirs is connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    /// Presence: when they were last connected, unless they hide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

impl From<&Signal> for SignalJson {
    fn from(s: &Signal) -> Self {
        let mut json = Self {
            kind: "typing",
            conversation_id: s.conversation.map(|c| c.to_string()),
            user_id: s.from.to_string(),
            active: None,
            expires_in_ms: None,
            seq: None,
            online: None,
            last_seen: None,
        };
        match &s.kind {
            SignalKind::Typing { active } => {
                json.active = Some(*active);
                let ttl = crate::service::TYPING_TTL.as_millis() as u64;
                json.expires_in_ms = active.then_some(ttl);
            }
            SignalKind::Delivered { seq } => (json.kind, json.seq) = ("delivered", Some(*seq)),
            SignalKind::Read { seq } => (json.kind, json.seq) = ("read", Some(*seq)),
            SignalKind::Presence { online, last_seen } => {
                json.kind = "presence";
                json.online = Some(*online);
                json.last_seen = last_seen.map(rfc3339);
            }
            // Never written as a `signal` frame: calls have frames of their own
            // (`realtime::protocol::OutFrame::of_signal`).
            SignalKind::Call(_) => json.kind = "call",
        }
        json
    }
}

/// A call ringing, answered or ended, as the other party's clients see it: the native
/// protocol's `call` frame, and the payload of the Socket.IO `call:*` events.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallJson<'a> {
    /// `incoming`, `accepted` or `ended`.
    pub event: &'static str,
    /// The call's room: the two parties' ids, sorted, joined with `_`.
    pub room_id: String,
    /// Who rang, answered or hung up (always the authenticated user).
    pub from: String,
    /// `incoming`: `video` or `audio`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_type: Option<&'static str>,
    /// `incoming` and `accepted`: the party's signalling data, as it sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<&'a RawValue>,
}

impl<'a> CallJson<'a> {
    /// The call signal `call`, sent by `from`.
    pub fn new(from: UserId, call: &'a CallSignal) -> Self {
        // The data was encoded from a JSON value at the edge, so it parses.
        let raw = |data: &'a str| serde_json::from_str::<&'a RawValue>(data).ok();
        let (event, room, call_type, signal) = match call {
            CallSignal::Incoming {
                room,
                call_type,
                data,
            } => ("incoming", room, Some(call_type.as_str()), raw(data)),
            CallSignal::Accepted { room, data } => ("accepted", room, None, raw(data)),
            CallSignal::Ended { room } => ("ended", room, None, None),
        };
        Self {
            event,
            room_id: room.to_string(),
            from: from.to_string(),
            call_type,
            signal,
        }
    }
}

/// RFC 3339 with milliseconds, in UTC.
pub fn rfc3339(t: Timestamp) -> String {
    Rfc3339(t).to_string()
}

/// A time written as RFC 3339 with milliseconds, in UTC, without an intermediate string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub Timestamp);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        humantime::format_rfc3339_millis(self.0.as_system_time()).fmt(f)
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A client frame of any type, before validation; also the body of a REST send, which
/// takes the same fields as a `send` frame.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFrame {
    /// The frame's `type`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `send`: the direct conversation with this user.
    pub receiver_id: Option<String>,
    /// `send`: an existing conversation.
    pub conversation_id: Option<String>,
    /// `send`: the text.
    pub content: Option<String>,
    /// `send`: the retry key.
    pub client_id: Option<String>,
    /// `sync`: the last seq seen, by conversation.
    pub cursors: Option<HashMap<String, Seq>>,
    /// `edit`, `delete`: the seq of the message to change.
    pub seq: Option<Seq>,
    /// `typing`: false when the user stopped (true when absent).
    pub active: Option<bool>,
    /// `presence`: false to stop presence signals (true when absent).
    pub watch: Option<bool>,
    // v1 names of `send` fields, read only to refuse them (see `wire::V1_SEND_FIELDS`).
    /// Given under its v1 name `to`.
    #[serde(rename = "to", default, deserialize_with = "present")]
    pub v1_to: bool,
    /// Given under its v1 name `conversation`.
    #[serde(rename = "conversation", default, deserialize_with = "present")]
    pub v1_conversation: bool,
    /// Given under its v1 name `body`.
    #[serde(rename = "body", default, deserialize_with = "present")]
    pub v1_body: bool,
    /// Given under its v1 name `client_id`.
    #[serde(rename = "client_id", default, deserialize_with = "present")]
    pub v1_client_id: bool,
}

impl ClientFrame {
    /// Which v1 field names the frame uses, in the order of [`V1_SEND_FIELDS`].
    pub fn v1_fields(&self) -> [bool; 4] {
        [
            self.v1_to,
            self.v1_conversation,
            self.v1_body,
            self.v1_client_id,
        ]
    }
}

/// The fields of a v1 `send` that v2 renamed, each with its v2 name. A send (WebSocket
/// frame or REST body) that uses one is refused, never read as its v2 field, with a
/// message naming the v2 field.
pub const V1_SEND_FIELDS: [(&str, &str); 4] = [
    ("to", "receiverId"),
    ("conversation", "conversationId"),
    ("body", "content"),
    ("client_id", "clientId"),
];

/// For `#[serde(default, deserialize_with = "wire::present")]`: true when the field is
/// there at all, whatever its value (`null` included); the value is skipped unread.
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// Why a v1 field of a send is refused: `use receiverId, not the v1 name to`.
pub fn v1_field_refusal(v1: &str, v2: &str) -> String {
    format!("use {v2}, not the v1 name {v1}")
}

/// Close codes this server uses, beyond the standard ones.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame broke the WebSocket protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A binary frame was sent; the protocol is text only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A text frame whose payload is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame or message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// An unexpected server error.
    pub const INTERNAL: u16 = 1011;
    /// The user's actor restarted: reconnect and sync.
    pub const RESTART: u16 = 1012;
    /// No frame (not even a pong) within two heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    /// The token the session was opened with expired: log in again.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The token the session was opened with was revoked (logout): log in again.
    pub const TOKEN_REVOKED: u16 = 4003;
    /// The session's outbound queue overflowed: reconnect and sync.
    pub const SLOW_CONSUMER: u16 = 4008;
}
