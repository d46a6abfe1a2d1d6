//! Typing: "I am typing in this conversation", to its other members, on the sheddable
//! lane. Nothing is stored and the server keeps no timer: an `active` signal says how
//! long it holds ([`TYPING_TTL`]), and a client renews it while the user types, so a
//! typist who vanishes (a dropped connection) stops showing by itself.

use std::sync::Arc;
use std::time::Duration;

use actors::domain::{ConversationId, SessionId, Signal, SignalKind, UserId};
use actors::{Messenger, Store};

use super::{Blocks, ServiceError};
use crate::auth::KeyedLimiter;

/// How long an `active` typing signal holds unless renewed.
pub const TYPING_TTL: Duration = Duration::from_secs(5);

/// The typing service.
pub struct Typing {
    store: Arc<dyn Store>,
    messenger: Messenger,
    blocks: Arc<Blocks>,
    /// Typing signals per session: a renewal every second or two is plenty, and each
    /// one reaches every member of a group.
    limiter: KeyedLimiter<SessionId>,
}

impl Typing {
    /// The service over this store and actor tree.
    pub fn new(store: Arc<dyn Store>, messenger: Messenger, blocks: Arc<Blocks>) -> Self {
        Self {
            store,
            messenger,
            blocks,
            limiter: KeyedLimiter::per_second("typing", 2, 5),
        }
    }

    /// Tells the other members of `conversation` that `me` is (or stopped) typing.
    #[tracing::instrument(skip_all, fields(user_id = %me, conversation_id = %conversation))]
    pub async fn notify(
        &self,
        me: UserId,
        session: SessionId,
        conversation: ConversationId,
        active: bool,
    ) -> Result<(), ServiceError> {
        self.limiter.check(&session)?;
        let record = match self.store.conversation(conversation).await? {
            Some(c) if c.has(me) => c,
            _ => return Err(ServiceError::ConversationNotFound),
        };
        // Nobody who blocks the typist, or whom the typist blocks, sees them type.
        let apart = self.blocks.apart_from(me, &record.participants).await?;
        let others: Vec<UserId> = record
            .participants
            .iter()
            .copied()
            .filter(|u| *u != me && !apart.contains(u))
            .collect();
        let signal = Signal {
            conversation: Some(conversation),
            from: me,
            kind: SignalKind::Typing { active },
        };
        self.messenger.signal(&others, signal, Some(session));
        Ok(())
    }

    /// Forgets idle rate-limit keys.
    pub fn sweep(&self) {
        self.limiter.sweep();
    }
}
