//! What the nodes say to each other over NATS, as JSON: committed events (in the
//! embedded store's own event encoding, so an event has one encoding however it
//! travels), signals, forwarded sends and their answers, revocations and block changes.

use std::sync::Arc;

use actors::domain::{
    CallSignal, CallType, ConversationId, Event, EventId, RoomId, Seq, SessionId, Signal,
    SignalKind, Timestamp, UserId,
};
use actors::fanout::Delivery;
use actors::{SendError, SendRequest, Sent, Target};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::fjall::{event_bytes, event_from_bytes};

/// Why a payload could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cluster payload: {0}")]
pub(crate) struct CodecError(String);

fn bad(e: impl std::fmt::Display) -> CodecError {
    CodecError(e.to_string())
}

/// One event of a published batch.
#[derive(Serialize, Deserialize)]
struct WireEvent {
    seq: Seq,
    /// The sending session (skipped: its ack carries the event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<u64>,
    event: Box<RawValue>,
}

fn wire_event(event: &Event) -> Result<Box<RawValue>, CodecError> {
    let bytes = event_bytes(event).map_err(bad)?;
    RawValue::from_string(String::from_utf8(bytes).map_err(bad)?).map_err(bad)
}

fn read_event(conversation: ConversationId, seq: Seq, raw: &RawValue) -> Result<Event, CodecError> {
    event_from_bytes(conversation, seq, raw.get().as_bytes()).map_err(bad)
}

/// A batch of one conversation's committed events, for the sessions of `members`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The node that committed it (which delivered it to its own sessions already).
    pub(crate) node: String,
    pub(crate) conversation: ConversationId,
    pub(crate) members: Vec<UserId>,
    events: Vec<WireEvent>,
}

impl Batch {
    pub(crate) fn encode(
        node: &str,
        members: &[UserId],
        batch: &[Delivery],
    ) -> Result<Vec<u8>, CodecError> {
        let Some((first, _)) = batch.first() else {
            return Err(bad("an empty batch"));
        };
        let events = batch
            .iter()
            .map(|(event, origin)| {
                Ok(WireEvent {
                    seq: event.seq,
                    origin: origin.map(SessionId::as_u64),
                    event: wire_event(event)?,
                })
            })
            .collect::<Result<_, CodecError>>()?;
        let batch = Batch {
            node: node.to_owned(),
            conversation: first.conversation,
            members: members.to_vec(),
            events,
        };
        serde_json::to_vec(&batch).map_err(bad)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        serde_json::from_slice(bytes).map_err(bad)
    }

    /// The events, ready for this node's fan-out.
    pub(crate) fn deliveries(&self) -> Result<Vec<Delivery>, CodecError> {
        self.events
            .iter()
            .map(|w| {
                let event = read_event(self.conversation, w.seq, &w.event)?;
                Ok((Arc::new(event), w.origin.map(SessionId::from_u64)))
            })
            .collect()
    }
}

/// A send forwarded to the conversation's owner. Its content travels as an event of
/// seq 0 that the owner takes apart again.
#[derive(Serialize, Deserialize)]
pub(crate) struct Forward {
    from: UserId,
    /// The other user of a direct conversation, or absent for a conversation by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<UserId>,
    conversation: ConversationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<u64>,
    event: Box<RawValue>,
}

impl Forward {
    pub(crate) fn encode(
        conversation: ConversationId,
        request: &SendRequest,
    ) -> Result<Vec<u8>, CodecError> {
        let carrier = Event {
            id: EventId::generate(),
            conversation,
            seq: 0,
            sender: request.from,
            client_id: request.client_id.clone(),
            at: Timestamp::now(),
            kind: request.kind.clone(),
        };
        let forward = Forward {
            from: request.from,
            to: match request.target {
                Target::User(to) => Some(to),
                Target::Conversation(_) => None,
            },
            conversation,
            origin: request.origin.map(SessionId::as_u64),
            event: wire_event(&carrier)?,
        };
        serde_json::to_vec(&forward).map_err(bad)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<SendRequest, CodecError> {
        let f: Forward = serde_json::from_slice(bytes).map_err(bad)?;
        let carrier = read_event(f.conversation, 0, &f.event)?;
        Ok(SendRequest {
            from: f.from,
            target: match f.to {
                Some(to) => Target::User(to),
                None => Target::Conversation(f.conversation),
            },
            kind: carrier.kind,
            client_id: carrier.client_id,
            origin: f.origin.map(SessionId::from_u64),
        })
    }
}

/// The owner's answer to a forwarded send.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Answer {
    Sent {
        seq: Seq,
        duplicate: bool,
        event: Box<RawValue>,
    },
    /// A [`SendError::code`].
    Error { code: String, message: String },
}

impl Answer {
    pub(crate) fn encode(result: &Result<Sent, SendError>) -> Vec<u8> {
        let answer = match result {
            Ok(sent) => match wire_event(&sent.event) {
                Ok(event) => Answer::Sent {
                    seq: sent.event.seq,
                    duplicate: sent.duplicate,
                    event,
                },
                Err(e) => Answer::Error {
                    code: SendError::Failed.code().into(),
                    message: e.to_string(),
                },
            },
            Err(e) => Answer::Error {
                code: e.code().into(),
                message: e.to_string(),
            },
        };
        serde_json::to_vec(&answer).unwrap_or_default()
    }

    pub(crate) fn decode(
        conversation: ConversationId,
        bytes: &[u8],
    ) -> Result<Result<Sent, SendError>, CodecError> {
        Ok(match serde_json::from_slice(bytes).map_err(bad)? {
            Answer::Sent {
                seq,
                duplicate,
                event,
            } => Ok(Sent {
                event: Arc::new(read_event(conversation, seq, &event)?),
                duplicate,
            }),
            Answer::Error { code, message } => Err(SendError::from_code(&code, message)),
        })
    }
}

/// A signal (typing, a receipt, presence, a call's ringing) for the sessions of
/// `members` but `except`.
#[derive(Serialize, Deserialize)]
pub(crate) struct SignalBatch {
    /// The node it started on (which handed it to its own sessions already).
    pub(crate) node: String,
    pub(crate) members: Vec<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    except: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conversation: Option<ConversationId>,
    from: UserId,
    kind: WireSignal,
}

/// What a travelling signal says.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum WireSignal {
    Typing {
        active: bool,
    },
    Delivered {
        seq: Seq,
    },
    Read {
        seq: Seq,
    },
    Presence {
        online: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen: Option<Timestamp>,
    },
    CallIncoming {
        room: String,
        call_type: String,
        data: String,
    },
    CallAccepted {
        room: String,
        data: String,
    },
    CallEnded {
        room: String,
    },
}

impl SignalBatch {
    /// The payload for `signal`.
    pub(crate) fn encode(
        node: &str,
        members: &[UserId],
        signal: &Signal,
        except: Option<SessionId>,
    ) -> Result<Vec<u8>, CodecError> {
        let kind = match &signal.kind {
            SignalKind::Typing { active } => WireSignal::Typing { active: *active },
            SignalKind::Delivered { seq } => WireSignal::Delivered { seq: *seq },
            SignalKind::Read { seq } => WireSignal::Read { seq: *seq },
            SignalKind::Presence { online, last_seen } => WireSignal::Presence {
                online: *online,
                last_seen: *last_seen,
            },
            SignalKind::Call(CallSignal::Incoming {
                room,
                call_type,
                data,
            }) => WireSignal::CallIncoming {
                room: room.to_string(),
                call_type: call_type.as_str().to_owned(),
                data: data.to_string(),
            },
            SignalKind::Call(CallSignal::Accepted { room, data }) => WireSignal::CallAccepted {
                room: room.to_string(),
                data: data.to_string(),
            },
            SignalKind::Call(CallSignal::Ended { room }) => WireSignal::CallEnded {
                room: room.to_string(),
            },
        };
        let batch = SignalBatch {
            node: node.to_owned(),
            members: members.to_vec(),
            except: except.map(SessionId::as_u64),
            conversation: signal.conversation,
            from: signal.from,
            kind,
        };
        serde_json::to_vec(&batch).map_err(bad)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        serde_json::from_slice(bytes).map_err(bad)
    }

    /// The session that must not get it (the one it came from).
    pub(crate) fn except(&self) -> Option<SessionId> {
        self.except.map(SessionId::from_u64)
    }

    /// The signal, ready for this node's fan-out.
    pub(crate) fn signal(&self) -> Result<Signal, CodecError> {
        let room = |r: &str| r.parse::<RoomId>().map_err(bad);
        let kind = match &self.kind {
            WireSignal::Typing { active } => SignalKind::Typing { active: *active },
            WireSignal::Delivered { seq } => SignalKind::Delivered { seq: *seq },
            WireSignal::Read { seq } => SignalKind::Read { seq: *seq },
            WireSignal::Presence { online, last_seen } => SignalKind::Presence {
                online: *online,
                last_seen: *last_seen,
            },
            WireSignal::CallIncoming {
                room: r,
                call_type,
                data,
            } => SignalKind::Call(CallSignal::Incoming {
                room: room(r)?,
                call_type: CallType::parse(call_type).map_err(bad)?,
                data: Arc::from(data.as_str()),
            }),
            WireSignal::CallAccepted { room: r, data } => SignalKind::Call(CallSignal::Accepted {
                room: room(r)?,
                data: Arc::from(data.as_str()),
            }),
            WireSignal::CallEnded { room: r } => {
                SignalKind::Call(CallSignal::Ended { room: room(r)? })
            }
        };
        Ok(Signal {
            conversation: self.conversation,
            from: self.from,
            kind,
        })
    }
}

/// A change of `blocker`'s block list, so other nodes read it again.
#[derive(Serialize, Deserialize)]
pub(crate) struct BlockChange {
    pub(crate) node: String,
    pub(crate) blocker: UserId,
}

/// A revocation of a user's sessions (those opened with `credential`, or all).
#[derive(Serialize, Deserialize)]
pub(crate) struct Revocation {
    pub(crate) node: String,
    pub(crate) user: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use actors::domain::{ClientId, EventKind, MessageBody, MessageContent};

    use super::*;

    #[test]
    fn a_forwarded_send_and_its_answer_arrive_as_they_left() {
        let (from, to) = (UserId::generate(), UserId::generate());
        let conversation = ConversationId::direct(from, to);
        let request = SendRequest {
            from,
            target: Target::User(to),
            kind: EventKind::Message(MessageContent::text(MessageBody::parse("hi", 100).unwrap())),
            client_id: Some(ClientId::parse("c-1").unwrap()),
            origin: Some(SessionId::next()),
        };
        let bytes = Forward::encode(conversation, &request).unwrap();
        let back = Forward::decode(&bytes).unwrap();
        assert_eq!(back.from, from);
        assert_eq!(back.target, Target::User(to));
        assert_eq!(back.kind, request.kind);
        assert_eq!(back.client_id, request.client_id);
        assert_eq!(back.origin, request.origin);

        let event = Event {
            id: EventId::generate(),
            conversation,
            seq: 7,
            sender: from,
            client_id: request.client_id.clone(),
            at: Timestamp::now(),
            kind: request.kind.clone(),
        };
        let sent = Ok(Sent {
            event: Arc::new(event.clone()),
            duplicate: true,
        });
        let answer = Answer::decode(conversation, &Answer::encode(&sent))
            .unwrap()
            .unwrap();
        assert_eq!(*answer.event, event);
        assert!(answer.duplicate);
        let refused = Answer::decode(
            conversation,
            &Answer::encode(&Err(SendError::NotParticipant)),
        );
        assert!(matches!(refused.unwrap(), Err(SendError::NotParticipant)));
    }
}
