//! The JSON shapes of domain objects, shared by the REST API and the WebSocket
//! protocol. Only this outer layer knows the wire format; ids are strings, times are
//! RFC 3339 with milliseconds.

use actors::domain::{Event, Timestamp, User};
use serde::Serialize;

/// A user as clients see it.
#[derive(Debug, Clone, Serialize)]
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

/// A message as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageJson<'a> {
    /// Unique id.
    pub id: String,
    /// Conversation id.
    pub conversation: String,
    /// Position in the conversation.
    pub seq: u64,
    /// Sender id.
    pub from: String,
    /// Text.
    pub body: &'a str,
    /// The sender's retry key, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// When the server accepted it.
    pub sent_at: String,
}

impl<'a> From<&'a Event> for MessageJson<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            id: e.id.to_string(),
            conversation: e.conversation.to_string(),
            seq: e.seq,
            from: e.sender.to_string(),
            body: e.text().map_or("", |t| t.as_str()),
            client_id: e.client_id.as_ref().map(|c| c.as_str()),
            sent_at: rfc3339(e.at),
        }
    }
}

/// RFC 3339 with milliseconds, in UTC.
pub fn rfc3339(t: Timestamp) -> String {
    humantime::format_rfc3339_millis(t.as_system_time()).to_string()
}
