//! The JSON shapes of domain objects, shared by the REST API and the WebSocket
//! protocol (protocol v2: one vocabulary, camelCase, with the names of the backend
//! Parley replaces where it had one). Only this outer layer knows the wire format; ids
//! are strings, times are RFC 3339 with milliseconds.

use actors::domain::{Event, EventKind, Timestamp, User};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};

/// A user as clients see it.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MessageType {
    /// A text message.
    Text,
}

/// A message as clients see it, on REST and WebSocket alike.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageJson<'a> {
    /// Unique id.
    pub id: String,
    /// Conversation id.
    pub conversation_id: String,
    /// Position in the conversation.
    pub seq: u64,
    /// Sender's user id.
    pub sender: String,
    /// The other participant's user id, in a 1:1 conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// Text.
    pub content: &'a str,
    /// Always `text` for now.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The sender's retry key, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// When the server accepted it.
    pub created_at: String,
}

impl<'a> From<&'a Event> for MessageJson<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            id: e.id.to_string(),
            conversation_id: e.conversation.to_string(),
            seq: e.seq,
            sender: e.sender.to_string(),
            receiver: match &e.kind {
                EventKind::Message(m) => m.receiver.map(|r| r.to_string()),
                _ => None,
            },
            content: e.text().map_or("", |t| t.as_str()),
            kind: MessageType::Text,
            client_id: e.client_id.as_ref().map(|c| c.as_str()),
            created_at: rfc3339(e.at),
        }
    }
}

/// RFC 3339 with milliseconds, in UTC.
pub fn rfc3339(t: Timestamp) -> String {
    humantime::format_rfc3339_millis(t.as_system_time()).to_string()
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
