//! Which actor: a user's or a conversation's, by id, and the names of the kinds.

use std::fmt;

use crate::domain::{ConversationId, UserId};

/// Which actor: the kind and the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    User(UserId),
    Conversation(ConversationId),
}

impl Key {
    /// The kind, as logs and metrics name it.
    pub(crate) fn kind(self) -> &'static str {
        self.actor_kind().as_str()
    }

    pub(crate) fn actor_kind(self) -> ActorKind {
        match self {
            Key::User(_) => ActorKind::User,
            Key::Conversation(_) => ActorKind::Conversation,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::User(id) => id.fmt(f),
            Key::Conversation(id) => id.fmt(f),
        }
    }
}

/// Which kind of actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A user actor: the live sessions of one user.
    User,
    /// A conversation actor: orders and routes one conversation's messages.
    Conversation,
}

impl ActorKind {
    /// `user` or `conversation`, as in the supervision log and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Conversation => "conversation",
        }
    }
}
