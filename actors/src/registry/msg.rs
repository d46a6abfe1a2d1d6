//! The registry's messages and the errors it answers with.

use std::sync::Arc;

use ractor::{ActorCell, ActorId, ActorRef, RpcReplyPort};

use crate::conversation::msg::ConversationMsg;
use crate::domain::{Conversation, ConversationId, UserId};
use crate::inspect::{ActorStats, ActorTree};
use crate::key::Key;
use crate::session::UserSessions;
use crate::store::StoreError;
use crate::user::msg::UserMsg;

/// Why the registry could not hand out an actor.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("no such user or conversation")]
    NotFound,
    #[error("this actor kept failing and was given up on for a while")]
    GivenUp,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("actor failed to start: {0}")]
    Spawn(String),
}

/// A supervised actor.
pub(crate) enum Child {
    User(ActorRef<UserMsg>, Arc<UserSessions>),
    Conversation(ActorRef<ConversationMsg>),
}

impl Child {
    pub(crate) fn cell(&self) -> ActorCell {
        match self {
            Child::User(a, _) => a.get_cell(),
            Child::Conversation(a) => a.get_cell(),
        }
    }
}

pub(crate) type Reply<T> = RpcReplyPort<Result<ActorRef<T>, RegistryError>>;

/// A caller waiting for an actor.
pub(crate) enum Waiter {
    User(Reply<UserMsg>),
    Conversation(Reply<ConversationMsg>),
}

impl Waiter {
    pub(crate) fn answer(self, result: Result<&Child, &RegistryError>) {
        match (self, result) {
            (Waiter::User(r), Ok(Child::User(a, _))) => drop(r.send(Ok(a.clone()))),
            (Waiter::Conversation(r), Ok(Child::Conversation(a))) => drop(r.send(Ok(a.clone()))),
            (Waiter::User(r), Err(e)) => drop(r.send(Err(e.clone()))),
            (Waiter::Conversation(r), Err(e)) => drop(r.send(Err(e.clone()))),
            // A key's kind always matches its child's kind.
            _ => {}
        }
    }
}

pub(crate) fn answer_all(waiters: Vec<Waiter>, result: Result<&Child, &RegistryError>) {
    for w in waiters {
        w.answer(result);
    }
}

/// The registry's messages.
pub(crate) enum RegistryMsg {
    /// The user actor of `id`, started if needed (the user must exist).
    GetUser { id: UserId, reply: Reply<UserMsg> },
    /// The conversation actor of `id`, started if needed; when the conversation does
    /// not exist yet, it is created from `create` if given.
    GetConversation {
        id: ConversationId,
        create: Option<Conversation>,
        reply: Reply<ConversationMsg>,
    },
    /// A child asks to stop because it is idle.
    Retire { key: Key, actor: ActorId },
    /// Stop every child, committing what they hold, then answer.
    Shutdown { reply: RpcReplyPort<()> },
    /// A snapshot of the tree with the `limit` busiest actors. Reads the children's
    /// published stats: no child is asked anything.
    Inspect {
        limit: usize,
        reply: RpcReplyPort<ActorTree>,
    },
    /// Internal: a spawn task finished.
    Spawned {
        key: Key,
        result: Result<Child, RegistryError>,
        stats: Arc<ActorStats>,
    },
    /// Internal: a failed child's back-off has passed.
    Restart { key: Key },
}
