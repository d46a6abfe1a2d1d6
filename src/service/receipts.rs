//! Receipts: a member says how far they have received or read a conversation. Marks
//! are high-water marks kept by the store; one that does not raise a mark is ignored
//! (stale, or repeated by another device). A raise is told to the conversation's other
//! members (and the member's other sessions) as a signal on the sheddable lane: never
//! stored as an event, dropped for a session that has fallen behind, and recoverable by
//! asking for the conversation's receipts.

use std::sync::Arc;

use actors::domain::{ConversationId, Mark, Receipt, Seq, SessionId, Signal, SignalKind, UserId};
use actors::{Messenger, Store};

use super::ServiceError;
use crate::auth::KeyedLimiter;

/// The receipts service.
pub struct Receipts {
    store: Arc<dyn Store>,
    messenger: Messenger,
    /// Receipts per user: each is a few store calls and a signal to every member.
    limiter: KeyedLimiter<UserId>,
}

impl Receipts {
    /// The service over this store and actor tree, allowing `per_second` receipts per
    /// user (with a burst of as many again).
    pub fn new(store: Arc<dyn Store>, messenger: Messenger, per_second: u32) -> Self {
        Self {
            store,
            messenger,
            limiter: KeyedLimiter::per_second("receipts", per_second, per_second),
        }
    }

    /// Raises `me`'s `mark` in `conversation` to `seq`; returns the marks now stored.
    /// `origin` is the session it came from, which is not told of it again.
    #[tracing::instrument(skip_all, fields(user_id = %me, conversation_id = %conversation))]
    pub async fn mark(
        &self,
        me: UserId,
        conversation: ConversationId,
        mark: Mark,
        seq: Seq,
        origin: Option<SessionId>,
    ) -> Result<Receipt, ServiceError> {
        self.limiter.check(&me)?;
        let record = match self.store.conversation(conversation).await? {
            Some(c) if c.has(me) => c,
            _ => return Err(ServiceError::ConversationNotFound),
        };
        let last = self
            .store
            .last_event(conversation)
            .await?
            .map_or(0, |e| e.seq);
        if seq > last {
            return Err(ServiceError::SeqBeyondEnd);
        }
        let stored = self.store.receipt(conversation, me).await?;
        let asked = match mark {
            Mark::Delivered => Receipt {
                delivered: seq,
                read: 0,
            },
            Mark::Read => Receipt {
                delivered: 0,
                read: seq,
            },
        };
        let merged = stored.merged(asked);
        if merged == stored {
            // Stale or repeated: nothing changes, nobody is told.
            return Ok(stored);
        }
        self.store.advance_receipt(conversation, me, merged).await?;
        let kind = if merged.read > stored.read {
            SignalKind::Read { seq: merged.read }
        } else {
            SignalKind::Delivered {
                seq: merged.delivered,
            }
        };
        let signal = Signal {
            conversation: Some(conversation),
            from: me,
            kind,
        };
        self.messenger.signal(&record.participants, signal, origin);
        Ok(merged)
    }

    /// Every member's marks in `conversation`, for a member of it.
    pub async fn of(
        &self,
        me: UserId,
        conversation: ConversationId,
    ) -> Result<Vec<(UserId, Receipt)>, ServiceError> {
        let record = match self.store.conversation(conversation).await? {
            Some(c) if c.has(me) => c,
            _ => return Err(ServiceError::ConversationNotFound),
        };
        let mut all = self.store.receipts(conversation).await?;
        // Marks of former members stay in the store; only members' are shown.
        all.retain(|(user, _)| record.has(*user));
        all.sort_by_key(|(user, _)| *user);
        Ok(all)
    }

    /// Forgets idle rate-limit keys.
    pub fn sweep(&self) {
        self.limiter.sweep();
    }
}
