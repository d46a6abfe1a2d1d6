//! The JSON shapes of domain objects and the close codes, shared by the REST API and the
//! realtime protocol (protocol v2: one vocabulary, camelCase, with the names of the
//! backend Parley replaces where it had one). Only this outer layer knows the wire
//! format; ids are strings, times are RFC 3339 with milliseconds.

use std::collections::HashMap;

use actors::domain::{
    ConversationId, Event, EventId, EventKind, Seq, Signal, SignalKind, Timestamp, User, UserId,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};

/// A user as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserJson {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
}

impl From<&User> for UserJson {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            name: u.name.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
        }
    }
}

/// What kind of message it is: always `text` for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum MessageType {
    /// A text message.
    Text,
}

/// A message as clients see it, on REST and WebSocket alike.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Message)]
pub struct MessageJson<'a> {
    /// Unique id.
    #[schema(value_type = String, format = Uuid)]
    pub id: EventId,
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
    /// Present, and true, when the sender deleted their account: the content was erased
    /// and this is what is left in its place.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub deleted: bool,
    /// Always `text` for now.
    #[serde(rename = "type")]
    pub kind: MessageType,
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
        Self {
            id: e.id,
            conversation_id: e.conversation,
            seq: e.seq,
            sender: e.sender,
            receiver: match &e.kind {
                EventKind::Message(m) => m.receiver,
                _ => None,
            },
            content: e.text().map_or("", |t| t.as_str()),
            deleted: matches!(e.kind, EventKind::Erased),
            kind: MessageType::Text,
            client_id: e.client_id.as_ref().map(|c| c.as_str()),
            created_at: Rfc3339(e.at),
        }
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
            seq: None,
            online: None,
            last_seen: None,
        };
        match s.kind {
            SignalKind::Typing { active } => json.active = Some(active),
            SignalKind::Delivered { seq } => (json.kind, json.seq) = ("delivered", Some(seq)),
            SignalKind::Read { seq } => (json.kind, json.seq) = ("read", Some(seq)),
            SignalKind::Presence { online, last_seen } => {
                json.kind = "presence";
                json.online = Some(online);
                json.last_seen = last_seen.map(rfc3339);
            }
        }
        json
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
