//! The WebSocket protocol: JSON text frames in, JSON text frames out. Parsing turns a
//! frame into a [`Command`] of domain types or into a [`FrameError`] that names what was
//! wrong (and echoes the `client_id` when there was one); it does no I/O. See
//! `docs/protocol.md` for every frame with an example.

use std::collections::{BTreeMap, HashMap};

use actors::Target;
use actors::domain::{ClientId, ConversationId, MessageBody, Seq, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{MessageJson, UserJson};

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
    /// The session's outbound queue overflowed: reconnect and sync.
    pub const SLOW_CONSUMER: u16 = 4008;
}

/// A parsed client frame.
#[derive(Debug)]
pub enum Command {
    /// Send a message.
    Send {
        /// Where.
        target: Target,
        /// What.
        body: MessageBody,
        /// Retry key.
        client_id: Option<ClientId>,
    },
    /// Replay what was missed after these cursors.
    Sync {
        /// Last seq seen, by conversation.
        cursors: HashMap<ConversationId, Seq>,
    },
    /// Application-level ping (answered with `pong`).
    Ping,
}

/// A frame that could not be turned into a command. The connection stays open.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// Machine-readable code.
    pub code: &'static str,
    /// A sentence for a person.
    pub message: String,
    /// The frame's `client_id`, echoed as given.
    pub client_id: Option<Value>,
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    to: Option<String>,
    conversation: Option<String>,
    body: Option<String>,
    client_id: Option<String>,
    cursors: Option<HashMap<String, Seq>>,
}

/// Parses one text frame.
pub fn parse(text: &str, max_body_chars: usize) -> Result<Command, FrameError> {
    let raw: RawFrame = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            // Only on this error path: look again, leniently, for a client id to echo.
            let value: Option<Value> = serde_json::from_str(text).ok();
            let client_id = value.as_ref().and_then(|v| v.get("client_id")).cloned();
            let (code, message) = match value {
                None => ("malformed_json", "The frame is not valid JSON.".to_owned()),
                Some(Value::Object(_)) => {
                    ("invalid_frame", format!("A field has the wrong type: {e}"))
                }
                Some(_) => ("invalid_frame", "A frame must be a JSON object.".to_owned()),
            };
            return Err(FrameError {
                code,
                message,
                client_id,
            });
        }
    };
    let client_id_value = raw.client_id.clone().map(Value::String);
    let fail = |code: &'static str, message: &str| FrameError {
        code,
        message: message.to_owned(),
        client_id: client_id_value.clone(),
    };
    match raw.kind.as_deref() {
        Some("send") => {
            let client_id = match raw.client_id.as_deref() {
                None => None,
                Some(c) => Some(
                    ClientId::parse(c)
                        .map_err(|e| fail("validation_failed", &format!("client_id {e}")))?,
                ),
            };
            let target = match (raw.to.as_deref(), raw.conversation.as_deref()) {
                (Some(to), None) => Target::User(
                    to.parse::<UserId>()
                        .map_err(|_| fail("validation_failed", "to is not a valid user id"))?,
                ),
                (None, Some(c)) => Target::Conversation(
                    c.parse::<ConversationId>()
                        .map_err(|_| fail("validation_failed", "conversation is not a valid id"))?,
                ),
                (None, None) => {
                    return Err(fail("validation_failed", "give either to or conversation"));
                }
                (Some(_), Some(_)) => {
                    return Err(fail(
                        "validation_failed",
                        "give either to or conversation, not both",
                    ));
                }
            };
            let body = raw
                .body
                .as_deref()
                .ok_or_else(|| fail("validation_failed", "body is required"))?;
            let body = MessageBody::parse(body, max_body_chars)
                .map_err(|e| fail("validation_failed", &format!("body {e}")))?;
            Ok(Command::Send {
                target,
                body,
                client_id,
            })
        }
        Some("sync") => {
            let mut cursors = HashMap::new();
            for (id, seq) in raw.cursors.unwrap_or_default() {
                let id = id.parse::<ConversationId>().map_err(|_| {
                    fail(
                        "validation_failed",
                        "cursors must map conversation ids to seqs",
                    )
                })?;
                cursors.insert(id, seq);
            }
            Ok(Command::Sync { cursors })
        }
        Some("ping") => Ok(Command::Ping),
        Some(_) => Err(fail("unknown_type", "Unknown frame type.")),
        None => Err(fail("invalid_frame", "type is required")),
    }
}

/// A server frame.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutFrame<'a> {
    /// First frame of every session.
    Ready {
        /// Who is connected.
        user: UserJson,
        /// This session's id.
        session: String,
    },
    /// A send of this session is durable.
    Ack {
        /// The send's retry key.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        /// True when it was a retry: the original message, nothing new stored.
        duplicate: bool,
        /// The message.
        message: MessageJson<'a>,
    },
    /// A message in one of the user's conversations.
    Message {
        /// The message.
        message: MessageJson<'a>,
    },
    /// The end of a sync replay.
    Synced {
        /// Up to where the client is now complete, by conversation.
        cursors: BTreeMap<String, Seq>,
        /// True when the replay was capped: sync again from these cursors.
        more: bool,
    },
    /// Answer to `ping`.
    Pong,
    /// Something went wrong with one frame; the connection stays open.
    Error {
        /// Machine-readable code.
        code: &'a str,
        /// A sentence for a person.
        message: &'a str,
        /// The frame's `client_id`, echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a Value>,
        /// With `rate_limited`: when to try again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl OutFrame<'_> {
    /// The frame as JSON text.
    pub fn encode(&self) -> String {
        // Serialising these types cannot fail: all keys are strings, no maps of floats.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"encoding failed"}"#.to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> FrameError {
        parse(text, 10).expect_err("should be refused")
    }

    #[test]
    fn a_valid_send_parses_into_domain_types() {
        let to = UserId::generate();
        let cmd = parse(
            &format!(r#"{{"type":"send","to":"{to}","body":"hi","client_id":"c1"}}"#),
            10,
        )
        .unwrap();
        assert!(
            matches!(cmd, Command::Send { target: Target::User(t), client_id: Some(_), .. } if t == to)
        );
    }

    #[test]
    fn errors_name_the_problem_and_echo_the_client_id() {
        assert_eq!(err("{nope").code, "malformed_json");
        assert_eq!(err("[1]").code, "invalid_frame");
        assert_eq!(err(r#"{"body":"x"}"#).code, "invalid_frame");
        assert_eq!(err(r#"{"type":"shout"}"#).code, "unknown_type");
        let e = err(r#"{"type":"send","to":5,"client_id":"c9"}"#);
        assert_eq!(
            (e.code, e.client_id),
            ("invalid_frame", Some(Value::String("c9".into())))
        );
        let to = UserId::generate();
        let e = err(&format!(
            r#"{{"type":"send","to":"{to}","body":"","client_id":"c2"}}"#
        ));
        assert_eq!(
            (e.code, e.client_id),
            ("validation_failed", Some(Value::String("c2".into())))
        );
        let e = err(&format!(
            r#"{{"type":"send","to":"{to}","body":"{}"}}"#,
            "x".repeat(11)
        ));
        assert_eq!(e.code, "validation_failed");
        assert_eq!(
            err(r#"{"type":"send","to":"x","body":"hi"}"#).code,
            "validation_failed"
        );
        assert_eq!(
            err(r#"{"type":"sync","cursors":{"x":1}}"#).code,
            "validation_failed"
        );
    }
}
