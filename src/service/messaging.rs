//! Messaging: sending (rate-limited per user, across every transport), attaching and
//! detaching sessions, and the reads a session needs to catch up.

use std::sync::Arc;

use actors::domain::{ConversationId, Event, Seq, SessionId, UserId};
use actors::store::HistoryRange;
use actors::{Messenger, SendRequest, Sent, SessionLink, Store};

use super::ServiceError;
use crate::auth::KeyedLimiter;
use crate::config::Config;

/// The messaging service.
pub struct Messaging {
    store: Arc<dyn Store>,
    messenger: Messenger,
    sends: KeyedLimiter<UserId>,
}

impl Messaging {
    /// The service over this store and actor tree, with the send rate `config` asks for.
    pub fn new(store: Arc<dyn Store>, messenger: Messenger, config: &Config) -> Self {
        Self {
            store,
            messenger,
            sends: KeyedLimiter::per_second(
                "sends",
                config.send_rate_per_second,
                config.send_burst,
            ),
        }
    }

    /// The actor tree (for shutdown, inspection and metrics).
    pub fn messenger(&self) -> &Messenger {
        &self.messenger
    }

    /// Counts a send against its sender's rate, before it is handed over.
    pub fn check_rate(&self, from: UserId) -> Result<(), ServiceError> {
        Ok(self.sends.check(&from)?)
    }

    /// Sends an event; returns once it is durable (or was a known retry). The caller has
    /// counted it with [`Self::check_rate`].
    pub async fn send(&self, request: SendRequest) -> Result<Sent, ServiceError> {
        Ok(self.messenger.send(request).await?)
    }

    /// Whether `user` has a live session (any transport) on this node.
    pub fn has_live_session(&self, user: UserId) -> bool {
        self.messenger.has_live_session(user)
    }

    /// Attaches a session of `user`.
    pub async fn attach(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<SessionLink, ServiceError> {
        Ok(self.messenger.attach(user, session).await?)
    }

    /// Detaches a session.
    pub fn detach(&self, user: UserId, session: SessionId) {
        self.messenger.detach(user, session);
    }

    /// The conversations `user` is in, in a fixed order (by id), for a sync.
    pub async fn conversations_of(
        &self,
        user: UserId,
    ) -> Result<Vec<ConversationId>, ServiceError> {
        let mut ids = self.store.user_conversations(user).await?;
        ids.sort();
        Ok(ids)
    }

    /// Events of `conversation` with seq in (after, before), oldest first, at most
    /// `limit`: a page of a replay. The caller has checked membership.
    pub async fn replay_page(
        &self,
        conversation: ConversationId,
        after: Seq,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Event>, ServiceError> {
        let range = HistoryRange {
            after: Some(after),
            before,
            limit,
            from_newest: false,
        };
        Ok(self.store.events(conversation, range).await?)
    }

    /// Forgets idle rate-limit keys.
    pub fn sweep(&self) {
        self.sends.sweep();
    }
}
