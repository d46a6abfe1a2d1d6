//! Live actors by id, readable without a message round trip: the hot path (a send
//! finding its conversation, a delivery finding its recipients' sessions) never waits on
//! the registry's mailbox. Only the registry writes it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use ractor::{ActorCell, ActorRef, ActorStatus};

use crate::conversation::msg::ConversationMsg;
use crate::domain::{ConversationId, UserId};
use crate::inspect::ActorStats;
use crate::session::UserSessions;
use crate::user::msg::UserMsg;

/// A live user actor, the sessions it owns, and its published statistics (fan-out
/// counts the deliveries there, since they do not pass through the actor).
#[derive(Clone)]
pub(crate) struct LiveUser {
    pub(crate) actor: ActorRef<UserMsg>,
    pub(crate) sessions: Arc<UserSessions>,
    pub(crate) stats: Arc<ActorStats>,
}

/// Live actors by id.
#[derive(Default)]
pub(crate) struct Directory {
    users: RwLock<HashMap<UserId, LiveUser>>,
    conversations: RwLock<HashMap<ConversationId, ActorRef<ConversationMsg>>>,
}

/// Whether an actor can still take messages.
pub(crate) fn alive(cell: &ActorCell) -> bool {
    matches!(
        cell.get_status(),
        ActorStatus::Starting | ActorStatus::Running | ActorStatus::Upgrading
    )
}

impl Directory {
    /// The running actor of a user and its sessions, if any.
    pub(crate) fn live_user(&self, id: UserId) -> Option<LiveUser> {
        let map = self.users.read().unwrap_or_else(PoisonError::into_inner);
        map.get(&id).filter(|u| alive(&u.actor.get_cell())).cloned()
    }

    /// Runs `f` on the sessions of `user`, if its actor is live, without cloning them.
    pub(crate) fn with_sessions(&self, user: UserId, f: impl FnOnce(&LiveUser)) {
        let map = self.users.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(live) = map.get(&user) {
            f(live);
        }
    }

    /// The running actor of a conversation, if any.
    pub(crate) fn live_conversation(
        &self,
        id: ConversationId,
    ) -> Option<ActorRef<ConversationMsg>> {
        let map = self
            .conversations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(&id).filter(|a| alive(&a.get_cell())).cloned()
    }

    /// How many user and conversation actors are registered.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let users = self
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let convs = self
            .conversations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        (users, convs)
    }

    pub(crate) fn insert_user(&self, id: UserId, live: LiveUser) {
        self.users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, live);
    }

    pub(crate) fn insert_conversation(&self, id: ConversationId, actor: ActorRef<ConversationMsg>) {
        self.conversations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, actor);
    }

    /// Forgets a user's actor. Its sessions are reset: they reconnect and sync.
    pub(crate) fn remove_user(&self, id: UserId) {
        let removed = self
            .users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(live) = removed {
            live.sessions.clear();
        }
    }

    pub(crate) fn remove_conversation(&self, id: ConversationId) {
        self.conversations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}
