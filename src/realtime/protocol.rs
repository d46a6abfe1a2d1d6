//! The WebSocket protocol (v2): JSON text frames in, JSON text frames out, camelCase,
//! with the message object of `crate::wire`. Parsing turns a frame into a [`Command`]
//! of domain types or into a [`FrameError`] that names what was wrong (and echoes the
//! `clientId` when there was one); it does no I/O. See `docs/protocol.md` for every
//! frame with an example.

use std::collections::{BTreeMap, HashMap};

use actors::Target;
use actors::domain::{ClientId, ConversationId, MessageBody, Seq, Signal, SignalKind, UserId};
use serde::Serialize;
use serde_json::Value;

use crate::wire::{
    CallJson, ClientFrame, MessageJson, SignalJson, UserJson, V1_SEND_FIELDS, v1_field_refusal,
};

pub use crate::wire::close;

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
    /// The frame's `clientId`, echoed as given.
    pub client_id: Option<Value>,
}

/// Parses one text frame.
pub fn parse(text: &str, max_body_chars: usize) -> Result<Command, FrameError> {
    let raw: ClientFrame = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            // Only on this error path: look again, leniently, for a client id to echo.
            let value: Option<Value> = serde_json::from_str(text).ok();
            let client_id = value.as_ref().and_then(|v| v.get("clientId")).cloned();
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
    command(raw, max_body_chars)
}

/// Parses the payload of a command that came with its type outside it (a Socket.IO
/// event: its name is the type, its first argument the payload). A missing payload
/// (`null`) is an empty object.
pub fn parse_value(
    kind: &str,
    payload: Value,
    max_body_chars: usize,
) -> Result<Command, FrameError> {
    let payload = match payload {
        Value::Null => Value::Object(Default::default()),
        object @ Value::Object(_) => object,
        _ => {
            return Err(FrameError {
                code: "invalid_frame",
                message: "The payload must be a JSON object.".to_owned(),
                client_id: None,
            });
        }
    };
    let client_id = payload.get("clientId").cloned();
    let mut raw: ClientFrame = serde_json::from_value(payload).map_err(|e| FrameError {
        code: "invalid_frame",
        message: format!("A field has the wrong type: {e}"),
        client_id,
    })?;
    raw.kind = Some(kind.to_owned());
    command(raw, max_body_chars)
}

/// Turns a frame read into its fields into a command of domain types.
fn command(raw: ClientFrame, max_body_chars: usize) -> Result<Command, FrameError> {
    let client_id_value = raw.client_id.clone().map(Value::String);
    let fail = |code: &'static str, message: &str| FrameError {
        code,
        message: message.to_owned(),
        client_id: client_id_value.clone(),
    };
    match raw.kind.as_deref() {
        Some("send") => {
            let v1 = raw.v1_fields();
            if v1.contains(&true) {
                let refusals: Vec<String> = V1_SEND_FIELDS
                    .iter()
                    .zip(v1)
                    .filter(|(_, given)| *given)
                    .map(|((v1_name, v2_name), _)| v1_field_refusal(v1_name, v2_name))
                    .collect();
                return Err(fail("validation_failed", &refusals.join("; ")));
            }
            let client_id = match raw.client_id.as_deref() {
                None => None,
                Some(c) => Some(
                    ClientId::parse(c)
                        .map_err(|e| fail("validation_failed", &format!("clientId {e}")))?,
                ),
            };
            let target = match (raw.receiver_id.as_deref(), raw.conversation_id.as_deref()) {
                (Some(id), None) => id
                    .parse::<UserId>()
                    .map(Target::User)
                    .map_err(|_| fail("validation_failed", "receiverId is not a valid user id"))?,
                (None, Some(id)) => id
                    .parse::<ConversationId>()
                    .map(Target::Conversation)
                    .map_err(|_| fail("validation_failed", "conversationId is not a valid id"))?,
                (None, None) => {
                    let why = "give either receiverId or conversationId";
                    return Err(fail("validation_failed", why));
                }
                (Some(_), Some(_)) => {
                    let why = "give either receiverId or conversationId, not both";
                    return Err(fail("validation_failed", why));
                }
            };
            let content = raw
                .content
                .as_deref()
                .ok_or_else(|| fail("validation_failed", "content is required"))?;
            let body = MessageBody::parse(content, max_body_chars)
                .map_err(|e| fail("validation_failed", &format!("content {e}")))?;
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

/// A server frame: `{"type": "<variant>", ...fields in camelCase}`.
#[derive(Clone, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum OutFrame<'a> {
    /// First frame of every session.
    Ready {
        /// Who is connected.
        user: UserJson,
        /// This session's id.
        session_id: String,
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
    /// A signal: typing, a receipt, presence.
    Signal {
        /// The signal.
        signal: SignalJson,
    },
    /// A call rang, was answered or ended (`{"type": "call", "event": ...}`).
    Call(CallJson<'a>),
    /// Answer to `ping`.
    Pong,
    /// Something went wrong with one frame; the connection stays open.
    Error {
        /// Machine-readable code.
        code: &'a str,
        /// A sentence for a person.
        message: &'a str,
        /// The frame's `clientId`, echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a Value>,
        /// With `rate_limited`: when to try again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl<'a> OutFrame<'a> {
    /// The frame of a signal: a `call` frame for a call, a `signal` frame otherwise.
    pub fn of_signal(signal: &'a Signal) -> Self {
        match &signal.kind {
            SignalKind::Call(call) => OutFrame::Call(CallJson::new(signal.from, call)),
            _ => OutFrame::Signal {
                signal: SignalJson::from(signal),
            },
        }
    }

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
            &format!(r#"{{"type":"send","receiverId":"{to}","content":"hi","clientId":"c1"}}"#),
            10,
        )
        .unwrap();
        assert!(
            matches!(cmd, Command::Send { target: Target::User(t), client_id: Some(_), .. } if t == to)
        );
        let conv = ConversationId::direct(to, UserId::generate());
        let cmd = parse(
            &format!(r#"{{"type":"send","conversationId":"{conv}","content":"hi"}}"#),
            10,
        )
        .unwrap();
        assert!(
            matches!(cmd, Command::Send { target: Target::Conversation(c), client_id: None, .. } if c == conv)
        );
    }

    #[test]
    fn errors_name_the_problem_and_echo_the_client_id() {
        assert_eq!(err("{nope").code, "malformed_json");
        assert_eq!(err("[1]").code, "invalid_frame");
        assert_eq!(err(r#"{"content":"x"}"#).code, "invalid_frame");
        assert_eq!(err(r#"{"type":"shout"}"#).code, "unknown_type");
        let e = err(r#"{"type":"send","receiverId":5,"clientId":"c9"}"#);
        assert_eq!(
            (e.code, e.client_id),
            ("invalid_frame", Some(Value::String("c9".into())))
        );
        let to = UserId::generate();
        let e = err(&format!(
            r#"{{"type":"send","receiverId":"{to}","content":"","clientId":"c2"}}"#
        ));
        assert_eq!(
            (e.code, e.client_id),
            ("validation_failed", Some(Value::String("c2".into())))
        );
        let e = err(&format!(
            r#"{{"type":"send","receiverId":"{to}","content":"{}"}}"#,
            "x".repeat(11)
        ));
        assert_eq!(e.code, "validation_failed");
        assert_eq!(e.code, "validation_failed");
        assert_eq!(
            err(r#"{"type":"send","receiverId":"x","content":"hi"}"#).code,
            "validation_failed"
        );
        assert_eq!(
            err(r#"{"type":"sync","cursors":{"x":1}}"#).code,
            "validation_failed"
        );
    }

    #[test]
    fn a_payload_without_its_type_is_checked_as_a_frame_is() {
        let to = UserId::generate();
        // Socket.IO: the event names the type, the payload holds the fields.
        let payload =
            serde_json::json!({"receiverId": to.to_string(), "content": "", "clientId": "c3"});
        let p = parse_value("send", payload, 10).expect_err("empty content");
        assert_eq!(
            (p.code, p.client_id),
            ("validation_failed", Some(Value::String("c3".into())))
        );
        let p = parse_value(
            "send",
            serde_json::json!({"content": 5, "clientId": "c4"}),
            10,
        )
        .expect_err("wrong type");
        assert_eq!(
            (p.code, p.client_id),
            ("invalid_frame", Some(Value::String("c4".into())))
        );
        assert_eq!(
            parse_value("sync", serde_json::json!([1]), 10)
                .unwrap_err()
                .code,
            "invalid_frame"
        );
        assert!(
            matches!(parse_value("sync", Value::Null, 10), Ok(Command::Sync { cursors }) if cursors.is_empty())
        );
    }

    #[test]
    fn v1_field_names_are_refused_naming_their_v2_names() {
        let to = UserId::generate();
        let e = err(&format!(
            r#"{{"type":"send","to":"{to}","body":"hi","client_id":"c1"}}"#
        ));
        assert_eq!(e.code, "validation_failed");
        assert_eq!(
            e.message,
            "use receiverId, not the v1 name to; use content, not the v1 name body; \
             use clientId, not the v1 name client_id"
        );
        // Not echoed: the error frame's `clientId` is the frame's own `clientId` only.
        assert_eq!(e.client_id, None);
        // One v1 name among v2 ones is enough to refuse the frame, whatever its value.
        let e = err(&format!(
            r#"{{"type":"send","receiverId":"{to}","content":"hi","conversation":5,"clientId":"c2"}}"#
        ));
        assert_eq!(
            (e.code, e.message.as_str(), e.client_id),
            (
                "validation_failed",
                "use conversationId, not the v1 name conversation",
                Some(Value::String("c2".into()))
            )
        );
    }

    #[test]
    fn server_frames_are_camel_case_and_tagged() {
        let user = UserJson {
            id: "u".into(),
            underscore_id: None,
            name: "Ada".into(),
            email: "ada@example.com".into(),
        };
        assert_eq!(
            OutFrame::Ready {
                user,
                session_id: "7".into()
            }
            .encode(),
            r#"{"type":"ready","user":{"id":"u","name":"Ada","email":"ada@example.com"},"sessionId":"7"}"#
        );
        let client_id = Value::String("c1".into());
        assert_eq!(
            OutFrame::Error {
                code: "rate_limited",
                message: "slow down",
                client_id: Some(&client_id),
                retry_after_ms: Some(250),
            }
            .encode(),
            r#"{"type":"error","code":"rate_limited","message":"slow down","clientId":"c1","retryAfterMs":250}"#
        );
        let m = actors::domain::Event {
            id: actors::domain::EventId::from_bytes([1; 16]),
            conversation: ConversationId::from_bytes([2; 16]),
            seq: 3,
            sender: UserId::from_bytes([4; 16]),
            client_id: Some(ClientId::parse("c1").unwrap()),
            at: actors::domain::Timestamp::from_millis(1_700_000_000_000),
            kind: actors::domain::EventKind::Message(actors::domain::MessageContent {
                receiver: Some(UserId::from_bytes([5; 16])),
                ..actors::domain::MessageContent::text(MessageBody::parse("hi", 10).unwrap())
            }),
        };
        assert_eq!(
            OutFrame::Ack {
                client_id: Some("c1"),
                duplicate: false,
                message: MessageJson::from(&m),
            }
            .encode(),
            concat!(
                r#"{"type":"ack","clientId":"c1","duplicate":false,"message":{"#,
                r#""id":"01010101-0101-0101-0101-010101010101","#,
                r#""conversationId":"02020202-0202-0202-0202-020202020202","seq":3,"#,
                r#""sender":"04040404-0404-0404-0404-040404040404","#,
                r#""receiver":"05050505-0505-0505-0505-050505050505","content":"hi","#,
                r#""type":"text","clientId":"c1","createdAt":"2023-11-14T22:13:20.000Z"}}"#
            )
        );
        assert_eq!(
            OutFrame::Synced {
                cursors: BTreeMap::from([("c".to_owned(), 2)]),
                more: true
            }
            .encode(),
            r#"{"type":"synced","cursors":{"c":2},"more":true}"#
        );
        assert_eq!(OutFrame::Pong.encode(), r#"{"type":"pong"}"#);
        let typing = Signal {
            conversation: Some(ConversationId::from_bytes([2; 16])),
            from: UserId::from_bytes([4; 16]),
            kind: SignalKind::Typing { active: true },
        };
        assert_eq!(
            OutFrame::Signal {
                signal: SignalJson::from(&typing)
            }
            .encode(),
            concat!(
                r#"{"type":"signal","signal":{"kind":"typing","#,
                r#""conversationId":"02020202-0202-0202-0202-020202020202","#,
                r#""userId":"04040404-0404-0404-0404-040404040404","active":true}}"#
            )
        );
        let read = Signal {
            conversation: None,
            from: UserId::from_bytes([4; 16]),
            kind: SignalKind::Read { seq: 7 },
        };
        assert_eq!(
            OutFrame::Signal {
                signal: SignalJson::from(&read)
            }
            .encode(),
            r#"{"type":"signal","signal":{"kind":"read","userId":"04040404-0404-0404-0404-040404040404","seq":7}}"#
        );
    }
}
