//! The registry actor: supervisor of every user and conversation actor.
//!
//! Lookups of live actors go through the [`Directory`](crate::directory::Directory), so
//! the hot path never waits on the registry's mailbox. Only a miss asks the registry,
//! which loads the record from the store and spawns the actor in a task (`spawn`), so
//! one slow load does not hold up other lookups, and parks further requests for that key
//! until it is up.
//!
//! Supervision (`supervision`): a child that stops is forgotten; a child that fails is
//! restarted after a short back-off with its state reloaded from the store; a child that
//! fails more than `max_restarts` times within `restart_window` is given up on, and
//! requests for it are refused for `give_up_cooldown`. At most one incarnation of a key
//! exists at a time: a new one starts only after the old one has terminated. Every
//! start, stop, failure, restart and give-up is a tracing event with `actor_kind` and
//! `actor_id` on the `parley::supervision` target. Shutdown (`shutdown`) drains
//! conversations, then users; `snapshot` answers inspections.

pub(crate) mod msg;
mod shutdown;
mod snapshot;
mod spawn;
mod supervision;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::context::Shared;
use crate::directory::alive;
use crate::domain::Conversation;
use crate::inspect::ActorStats;
use crate::key::Key;
use msg::{Child, RegistryError, RegistryMsg, Waiter};

/// What the registry knows of one key.
pub(crate) enum Slot {
    Live {
        child: Child,
        stats: Arc<ActorStats>,
    },
    Starting {
        waiters: Vec<Waiter>,
        create: Option<Conversation>,
        creating: bool,
    },
    Stopping {
        actor: ActorId,
        reason: &'static str,
        waiters: Vec<Waiter>,
        create: Option<Conversation>,
    },
}

/// The registry actor.
pub(crate) struct RegistryActor;

/// Its state.
pub(crate) struct RegistryState {
    shared: Arc<Shared>,
    slots: HashMap<Key, Slot>,
    by_actor: HashMap<ActorId, Key>,
    failures: HashMap<Key, VecDeque<Instant>>,
    restarting: HashMap<Key, usize>,
    given_up: HashMap<Key, Instant>,
    shutting_down: bool,
}

impl RegistryState {
    /// Forgets a live child in the directory (sessions of a user are reset).
    fn unlist(&self, key: Key) {
        match key {
            Key::User(id) => self.shared.directory.remove_user(id),
            Key::Conversation(id) => self.shared.directory.remove_conversation(id),
        }
    }
}

impl Actor for RegistryActor {
    type Msg = RegistryMsg;
    type State = RegistryState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        shared: Arc<Shared>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RegistryState {
            shared,
            slots: HashMap::new(),
            by_actor: HashMap::new(),
            failures: HashMap::new(),
            restarting: HashMap::new(),
            given_up: HashMap::new(),
            shutting_down: false,
        })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: RegistryMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RegistryMsg::GetUser { id, reply } => {
                request(&myself, state, Key::User(id), None, Waiter::User(reply))
            }
            RegistryMsg::GetConversation { id, create, reply } => request(
                &myself,
                state,
                Key::Conversation(id),
                create,
                Waiter::Conversation(reply),
            ),
            RegistryMsg::Spawned { key, result, stats } => {
                spawn::spawned(&myself, state, key, result, stats)
            }
            RegistryMsg::Restart { key } => {
                if let Some(Slot::Starting {
                    create, creating, ..
                }) = state.slots.get_mut(&key)
                {
                    *creating = create.is_some();
                    let create = create.clone();
                    spawn::begin_spawn(&myself, state, key, create);
                }
            }
            RegistryMsg::Retire { key, actor } => {
                if let Some(Slot::Live { child, .. }) = state.slots.get(&key)
                    && child.cell().get_id() == actor
                {
                    let cell = child.cell();
                    state.unlist(key);
                    state.slots.insert(
                        key,
                        Slot::Stopping {
                            actor,
                            reason: "idle",
                            waiters: Vec::new(),
                            create: None,
                        },
                    );
                    let _ = cell.drain();
                }
            }
            RegistryMsg::Shutdown { reply } => {
                shutdown::shutdown(state).await;
                let _ = reply.send(());
            }
            RegistryMsg::Inspect { limit, reply } => {
                let _ = reply.send(snapshot::inspect(state, limit));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                supervision::exited(&myself, state, cell.get_id(), None, reason)
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                supervision::exited(&myself, state, cell.get_id(), Some(err.to_string()), None)
            }
            _ => {}
        }
        Ok(())
    }
}

fn request(
    myself: &ActorRef<RegistryMsg>,
    state: &mut RegistryState,
    key: Key,
    create: Option<Conversation>,
    waiter: Waiter,
) {
    if state.shutting_down {
        return waiter.answer(Err(&RegistryError::ShuttingDown));
    }
    if let Some(since) = state.given_up.get(&key) {
        if since.elapsed() < state.shared.config.give_up_cooldown {
            return waiter.answer(Err(&RegistryError::GivenUp));
        }
        state.given_up.remove(&key);
    }
    match state.slots.get_mut(&key) {
        Some(Slot::Live { child, .. }) if alive(&child.cell()) => waiter.answer(Ok(child)),
        Some(Slot::Live { child, .. }) => {
            // Dead, but its exit is not reported yet: wait for it, then start anew.
            let actor = child.cell().get_id();
            state.unlist(key);
            let waiters = vec![waiter];
            state.slots.insert(
                key,
                Slot::Stopping {
                    actor,
                    reason: "stopped",
                    waiters,
                    create,
                },
            );
        }
        Some(Slot::Starting {
            waiters, create: c, ..
        })
        | Some(Slot::Stopping {
            waiters, create: c, ..
        }) => {
            waiters.push(waiter);
            if c.is_none() {
                *c = create;
            }
        }
        None => {
            let creating = create.is_some();
            let slot = Slot::Starting {
                waiters: vec![waiter],
                create: create.clone(),
                creating,
            };
            state.slots.insert(key, slot);
            spawn::begin_spawn(myself, state, key, create);
        }
    }
}
