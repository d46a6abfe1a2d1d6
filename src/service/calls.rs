//! Calls between two users: ringing, answering and hanging up. A call rings every live
//! session of the other party, whatever its transport; its record is a message of the
//! call's type in the pair's conversation, amended with its end when it ends. Only the
//! two parties of a room may answer or end its call, and who rang, answered or hung up
//! is always the authenticated caller, never what a client claims.

use std::sync::Arc;

use actors::domain::{
    CallSignal, CallType, ConversationId, Event, EventKind, MessageBody, MessageContent, RoomId,
    Seq, Signal, SignalKind, Timestamp, UserId,
};
use actors::store::HistoryRange;
use actors::{SendRequest, Store, Target};

use super::{Messaging, ServiceError};

/// Events read per page while looking for a room's open call.
const PAGE: usize = 200;
/// How far back (in events) a room's open call is looked for.
const LOOKBACK: usize = 1000;

/// A call that rings.
#[derive(Debug, Clone)]
pub struct Started {
    /// Its room.
    pub room: RoomId,
    /// Its record in the pair's conversation.
    pub record: Arc<Event>,
}

/// The calls service.
pub struct Calls {
    store: Arc<dyn Store>,
    messaging: Arc<Messaging>,
}

impl Calls {
    /// The service over this store and messaging service.
    pub fn new(store: Arc<dyn Store>, messaging: Arc<Messaging>) -> Self {
        Self { store, messaging }
    }

    /// `me` calls `receiver`: records the call and rings every live session of the
    /// receiver with `signal` (the caller's signalling data, opaque here). A receiver
    /// with no live session is not called, and nothing is recorded.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn start(
        &self,
        me: UserId,
        receiver: UserId,
        call_type: CallType,
        signal: Arc<str>,
    ) -> Result<Started, ServiceError> {
        if receiver == me {
            return Err(actors::SendError::CannotMessageSelf.into());
        }
        self.messaging.check_rate(me)?;
        // To someone who blocks them, a caller's callee just seems offline.
        if !self.messaging.is_online(receiver).await
            || self.messaging.blocked_by(receiver, me).await?
        {
            return Err(ServiceError::ReceiverOffline);
        }
        let body = MessageBody::parse(record_text(call_type), usize::MAX)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let sent = self
            .messaging
            .send(SendRequest {
                from: me,
                target: Target::User(receiver),
                kind: EventKind::Message(MessageContent::call(body, call_type, Timestamp::now())),
                client_id: None,
                origin: None,
            })
            .await?;
        let room = RoomId::of(me, receiver);
        let ring = CallSignal::Incoming {
            room,
            call_type,
            data: signal,
        };
        self.ring(me, receiver, ring);
        Ok(Started {
            room,
            record: sent.event,
        })
    }

    /// `me` answers the call of `room` with `signal`: the other party's live sessions
    /// are told.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn answer(
        &self,
        me: UserId,
        room: RoomId,
        signal: Arc<str>,
    ) -> Result<(), ServiceError> {
        let caller = room.other_than(me).ok_or(ServiceError::NotInRoom)?;
        self.messaging.check_rate(me)?;
        if !self.messaging.is_online(caller).await {
            return Err(ServiceError::CallerOffline);
        }
        self.ring(me, caller, CallSignal::Accepted { room, data: signal });
        Ok(())
    }

    /// `me` ends the call of `room`: its record (the room's newest call that has not
    /// ended, if there is one) gets its end, and the other party's live sessions are
    /// told.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn end(&self, me: UserId, room: RoomId) -> Result<(), ServiceError> {
        let other = room.other_than(me).ok_or(ServiceError::NotInRoom)?;
        self.messaging.check_rate(me)?;
        let conversation = ConversationId::direct(me, other);
        if let Some((seq, mut content)) = self.open_call(conversation).await? {
            if let Some(call) = &mut content.call {
                call.ended_at = Some(Timestamp::now());
            }
            self.messaging
                .send(SendRequest {
                    from: me,
                    target: Target::Conversation(conversation),
                    kind: EventKind::Amend {
                        target: seq,
                        content,
                    },
                    client_id: None,
                    origin: None,
                })
                .await?;
        }
        self.ring(me, other, CallSignal::Ended { room });
        Ok(())
    }

    /// Hands a call signal to every live session of `to`.
    fn ring(&self, from: UserId, to: UserId, call: CallSignal) {
        let signal = Signal {
            conversation: Some(ConversationId::direct(from, to)),
            from,
            kind: SignalKind::Call(call),
        };
        self.messaging.messenger().signal(&[to], signal, None);
    }

    /// The newest call record of `conversation` that has not ended, within the last
    /// [`LOOKBACK`] events.
    async fn open_call(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<(Seq, MessageContent)>, ServiceError> {
        let mut before = None;
        for _ in 0..LOOKBACK / PAGE {
            let range = HistoryRange {
                after: None,
                before,
                limit: PAGE,
                from_newest: true,
            };
            let events = self.store.events(conversation, range).await?;
            for e in events.iter().rev() {
                if let EventKind::Message(m) = &e.kind
                    && m.call.is_some_and(|c| c.ended_at.is_none())
                {
                    return Ok(Some((e.seq, m.clone())));
                }
            }
            match events.first() {
                Some(first) if events.len() == PAGE && first.seq > 1 => before = Some(first.seq),
                _ => break,
            }
        }
        Ok(None)
    }
}

/// The text of a call's record, for clients that show only a message's content.
fn record_text(call_type: CallType) -> &'static str {
    match call_type {
        CallType::Video => "Video call",
        CallType::Audio => "Audio call",
    }
}
