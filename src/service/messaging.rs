//! Messaging: sending (rate-limited per user, across every transport), opening and
//! closing sessions (rate-limited, and ended when their token is revoked), and the
//! reads a session needs to catch up (rate-limited).

use std::sync::Arc;

use actors::domain::{ConversationId, Event, Seq, SessionId, UserId};
use actors::store::HistoryRange;
use actors::{Messenger, SendRequest, Sent, SessionLink, Store, Target};

use super::unanswered::Unanswered;
use super::{AuthUser, Blocks, ServiceError, TokenProblem};
use crate::auth::KeyedLimiter;
use crate::config::Config;

/// The messaging service.
pub struct Messaging {
    store: Arc<dyn Store>,
    messenger: Messenger,
    blocks: Arc<Blocks>,
    /// Direct conversations opened and not answered yet, per opener.
    unanswered: Unanswered,
    sends: KeyedLimiter<UserId>,
    /// Session opens per user: a client looping reconnects is slowed down.
    opens: KeyedLimiter<UserId>,
    /// Syncs per user: each may replay `--sync-batch` events, so a loop of them would
    /// otherwise make the server send without bound.
    syncs: KeyedLimiter<UserId>,
}

impl Messaging {
    /// The service over this store and actor tree, with the send rate `config` asks for.
    pub fn new(
        store: Arc<dyn Store>,
        messenger: Messenger,
        blocks: Arc<Blocks>,
        config: &Config,
    ) -> Self {
        Self {
            store,
            messenger,
            blocks,
            unanswered: Unanswered::new(config.max_unanswered_conversations as usize),
            sends: KeyedLimiter::per_second(
                "sends",
                config.send_rate_per_second,
                config.send_burst,
            ),
            opens: KeyedLimiter::per_minute("session_opens", config.session_opens_per_minute),
            syncs: KeyedLimiter::per_minute("syncs", config.syncs_per_minute),
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
        // In a direct conversation, someone the other blocks cannot reach them. A group
        // is not checked: a block is between two people, a group is everyone's.
        let other = match request.target {
            Target::User(to) => Some(to),
            Target::Conversation(id) if id.is_direct_form() => self
                .store
                .conversation(id)
                .await?
                .and_then(|c| c.other_than(request.from)),
            Target::Conversation(_) => None,
        };
        if let Some(other) = other
            && self.blocks.blocks(other, request.from).await?
        {
            return Err(ServiceError::CannotReach);
        }
        let from = request.from;
        // Only a user at the limit pays a read: whether this send would open a new
        // conversation (one that does not exist yet).
        if let Target::User(to) = request.target
            && self.unanswered.at_limit(from)
            && self
                .store
                .conversation(ConversationId::direct(from, to))
                .await?
                .is_none()
        {
            return Err(ServiceError::TooManyUnanswered);
        }
        let sent = self.messenger.send(request).await?;
        if let Some(other) = other
            && !sent.duplicate
        {
            self.unanswered.wrote(from, other);
            // Seq 1 of a direct conversation: this send opened it.
            if sent.event.seq == 1 {
                self.unanswered.opened(from, other);
            }
        }
        Ok(sent)
    }

    /// Whether `blocker` blocks `other`.
    pub async fn blocked_by(&self, blocker: UserId, other: UserId) -> Result<bool, ServiceError> {
        self.blocks.blocks(blocker, other).await
    }

    /// Whether `user` has a live session (any transport) on any node.
    pub async fn is_online(&self, user: UserId) -> bool {
        self.messenger.is_online(user).await
    }

    /// Counts a session about to be opened against its user's rate.
    pub fn check_open(&self, user: UserId) -> Result<(), ServiceError> {
        Ok(self.opens.check(&user)?)
    }

    /// Opens a realtime session for `me`. The session ends by itself when `me`'s token
    /// is revoked (see `Accounts::logout`); it must end when the token expires too,
    /// which the session core does with a timer.
    pub async fn open(
        &self,
        me: &AuthUser,
        session: SessionId,
    ) -> Result<SessionLink, ServiceError> {
        let link = self
            .messenger
            .attach(me.user.id, session, me.claims.credential())
            .await?;
        // A logout (or a sign-out of the device) between the caller's authentication and
        // the attach above revoked the token but found no session to end: look again
        // now that it is attached.
        let login_gone = match me.claims.login_id() {
            Ok(Some(login)) => self.store.login(me.user.id, login).await?.is_none(),
            Ok(None) => false,
            Err(_) => true,
        };
        if login_gone || self.store.is_token_revoked(&me.claims.jti).await? {
            self.messenger.detach(me.user.id, session);
            return Err(ServiceError::Unauthorized(TokenProblem::Revoked));
        }
        Ok(link)
    }

    /// Counts a sync against its user's rate.
    pub fn check_sync(&self, user: UserId) -> Result<(), ServiceError> {
        Ok(self.syncs.check(&user)?)
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
    /// `limit`: a page of a replay for `me`. Nothing for a non-member (one removed
    /// since the caller listed it), and nothing from before a member joined a group.
    pub async fn replay_page(
        &self,
        me: UserId,
        conversation: ConversationId,
        after: Seq,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Event>, ServiceError> {
        let Some(record) = self.store.conversation(conversation).await? else {
            return Ok(Vec::new());
        };
        if !record.has(me) {
            return Ok(Vec::new());
        }
        let range = HistoryRange {
            after: Some(after.max(record.visible_from(me) - 1)),
            before,
            limit,
            from_newest: false,
        };
        Ok(self.store.events(conversation, range).await?)
    }

    /// Forgets idle rate-limit keys.
    pub fn sweep(&self) {
        self.sends.sweep();
        self.opens.sweep();
        self.syncs.sweep();
    }
}
