//! The registry actor: supervisor of every user and conversation actor.
//!
//! Lookups of live actors go through the [`Directory`], a read-mostly map shared with
//! every caller, so the hot path never waits on the registry's mailbox. Only a miss
//! asks the registry, which loads the record from the store and spawns the actor in a
//! task (so one slow load does not hold up other lookups) and parks further requests for
//! that key until it is up.
//!
//! Supervision: a child that stops is forgotten; a child that fails is restarted after
//! a short back-off with its state reloaded from the store; a child that fails more
//! than `max_restarts` times within `restart_window` is given up on, and requests for
//! it are refused with [`RegistryError::GivenUp`] for `give_up_cooldown`. At most one
//! incarnation of a key exists at a time: a new one starts only after the old one has
//! terminated. Every start, stop, failure, restart and give-up is a tracing event with
//! `actor_kind` and `actor_id` on the `parley::supervision` target.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort,
    SupervisionEvent,
};

use crate::conversation::{ConversationActor, ConversationArgs, ConversationMsg};
use crate::domain::{Conversation, ConversationId, UserId};
use crate::inspect::{ActorInfo, ActorKind, ActorStats, ActorTree, SessionQueues};
use crate::messenger::MessengerConfig;
use crate::persistence::PersistenceMsg;
use crate::store::{Store, StoreError};
use crate::user::{UserActor, UserArgs, UserMsg};

/// What every actor shares: the store, the configuration, the directory of live actors
/// and the persistence actor.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: MessengerConfig,
    pub(crate) directory: Directory,
    pub(crate) persistence: ActorRef<PersistenceMsg>,
    /// Messages queued in the persistence actor, not yet in a commit.
    pub(crate) persistence_queue: Arc<AtomicUsize>,
    /// Every attached session's outbound queue, for inspection and metrics.
    pub(crate) sessions: SessionQueues,
}

type LiveUser = (ActorRef<UserMsg>, Arc<ActorStats>);

/// Live actors by id, readable without a message round trip.
#[derive(Default)]
pub(crate) struct Directory {
    /// With each user actor, its published stats: deliveries read its session count.
    users: RwLock<HashMap<UserId, LiveUser>>,
    conversations: RwLock<HashMap<ConversationId, ActorRef<ConversationMsg>>>,
}

fn alive(cell: &ActorCell) -> bool {
    matches!(
        cell.get_status(),
        ActorStatus::Starting | ActorStatus::Running | ActorStatus::Upgrading
    )
}

impl Directory {
    /// The running actor of a user, if any.
    pub(crate) fn live_user(&self, id: UserId) -> Option<ActorRef<UserMsg>> {
        self.live_user_sessions(id).map(|(actor, _)| actor)
    }

    /// The running actor of a user and how many sessions it last reported. The count is
    /// published before an attach is answered, so a session that is attached is counted.
    pub(crate) fn live_user_sessions(&self, id: UserId) -> Option<(ActorRef<UserMsg>, usize)> {
        let map = self.users.read().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|(a, _)| alive(&a.get_cell()))
            .map(|(a, stats)| (a.clone(), stats.sessions()))
    }

    /// The running actor of a conversation, if any.
    pub(crate) fn live_conversation(
        &self,
        id: ConversationId,
    ) -> Option<ActorRef<ConversationMsg>> {
        let map = self.conversations.read().unwrap_or_else(|p| p.into_inner());
        map.get(&id).filter(|a| alive(&a.get_cell())).cloned()
    }

    /// How many user and conversation actors are registered.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let users = self.users.read().unwrap_or_else(|p| p.into_inner()).len();
        let convs = self
            .conversations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        (users, convs)
    }

    fn insert(&self, key: Key, child: &Child, stats: &Arc<ActorStats>) {
        match (key, child) {
            (Key::User(id), Child::User(a)) => {
                self.users
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, (a.clone(), stats.clone()));
            }
            (Key::Conversation(id), Child::Conversation(a)) => {
                self.conversations
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, a.clone());
            }
            _ => {}
        }
    }

    fn remove(&self, key: Key) {
        match key {
            Key::User(id) => {
                self.users
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
            Key::Conversation(id) => {
                self.conversations
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
        }
    }
}

/// Which actor: the kind and the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    User(UserId),
    Conversation(ConversationId),
}

impl Key {
    fn kind(self) -> &'static str {
        self.actor_kind().as_str()
    }

    fn actor_kind(self) -> ActorKind {
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

pub(crate) enum Child {
    User(ActorRef<UserMsg>),
    Conversation(ActorRef<ConversationMsg>),
}

impl Child {
    fn cell(&self) -> ActorCell {
        match self {
            Child::User(a) => a.get_cell(),
            Child::Conversation(a) => a.get_cell(),
        }
    }
}

type Reply<T> = RpcReplyPort<Result<ActorRef<T>, RegistryError>>;

enum Waiter {
    User(Reply<UserMsg>),
    Conversation(Reply<ConversationMsg>),
}

impl Waiter {
    fn answer(self, result: Result<&Child, &RegistryError>) {
        match (self, result) {
            (Waiter::User(r), Ok(Child::User(a))) => drop(r.send(Ok(a.clone()))),
            (Waiter::Conversation(r), Ok(Child::Conversation(a))) => drop(r.send(Ok(a.clone()))),
            (Waiter::User(r), Err(e)) => drop(r.send(Err(e.clone()))),
            (Waiter::Conversation(r), Err(e)) => drop(r.send(Err(e.clone()))),
            // A key's kind always matches its child's kind.
            _ => {}
        }
    }
}

fn answer_all(waiters: Vec<Waiter>, result: Result<&Child, &RegistryError>) {
    for w in waiters {
        w.answer(result);
    }
}

enum Slot {
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

/// Its messages.
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
                spawned(&myself, state, key, result, stats)
            }
            RegistryMsg::Restart { key } => {
                if let Some(Slot::Starting {
                    create, creating, ..
                }) = state.slots.get_mut(&key)
                {
                    *creating = create.is_some();
                    let create = create.clone();
                    begin_spawn(&myself, state, key, create);
                }
            }
            RegistryMsg::Retire { key, actor } => {
                if let Some(Slot::Live { child, .. }) = state.slots.get(&key)
                    && child.cell().get_id() == actor
                {
                    let cell = child.cell();
                    state.shared.directory.remove(key);
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
                shutdown(state).await;
                let _ = reply.send(());
            }
            RegistryMsg::Inspect { limit, reply } => {
                let _ = reply.send(inspect(state, limit));
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
                exited(&myself, state, cell.get_id(), None, reason)
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                exited(&myself, state, cell.get_id(), Some(err.to_string()), None)
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
            state.shared.directory.remove(key);
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
            begin_spawn(myself, state, key, create);
        }
    }
}

/// Loads the child's record and spawns it, off the registry's mailbox.
fn begin_spawn(
    myself: &ActorRef<RegistryMsg>,
    state: &RegistryState,
    key: Key,
    create: Option<Conversation>,
) {
    let shared = state.shared.clone();
    let me = myself.clone();
    tokio::spawn(async move {
        let stats = ActorStats::new();
        let result = spawn_child(&me, shared, key, create, stats.clone()).await;
        if let Err(ractor::MessagingErr::SendErr(RegistryMsg::Spawned {
            result: Ok(child), ..
        })) = me.cast(RegistryMsg::Spawned { key, result, stats })
        {
            // The registry is gone (shutdown): nobody supervises this child.
            child.cell().stop(Some("shutdown".into()));
        }
    });
}

async fn spawn_child(
    registry: &ActorRef<RegistryMsg>,
    shared: Arc<Shared>,
    key: Key,
    create: Option<Conversation>,
    stats: Arc<ActorStats>,
) -> Result<Child, RegistryError> {
    let supervisor = registry.get_cell();
    let spawn_err = |e: ractor::SpawnErr| RegistryError::Spawn(e.to_string());
    match key {
        Key::User(id) => {
            let user = shared
                .store
                .user(id)
                .await?
                .ok_or(RegistryError::NotFound)?
                .user;
            let args = UserArgs {
                user,
                shared,
                registry: registry.clone(),
                stats,
            };
            let (actor, _) = Actor::spawn_linked(None, UserActor, args, supervisor)
                .await
                .map_err(spawn_err)?;
            Ok(Child::User(actor))
        }
        Key::Conversation(id) => {
            let conversation = match shared.store.conversation(id).await? {
                Some(c) => c,
                None => {
                    let c = create.ok_or(RegistryError::NotFound)?;
                    shared.store.insert_conversation(&c).await?;
                    c
                }
            };
            let args = ConversationArgs {
                conversation,
                shared,
                registry: registry.clone(),
                stats,
            };
            let (actor, _) = Actor::spawn_linked(None, ConversationActor, args, supervisor)
                .await
                .map_err(spawn_err)?;
            Ok(Child::Conversation(actor))
        }
    }
}

fn spawned(
    myself: &ActorRef<RegistryMsg>,
    state: &mut RegistryState,
    key: Key,
    result: Result<Child, RegistryError>,
    stats: Arc<ActorStats>,
) {
    let Some(Slot::Starting {
        waiters,
        create,
        creating,
    }) = state.slots.remove(&key)
    else {
        if let Ok(child) = result {
            child.cell().stop(Some("shutdown".into()));
        }
        return;
    };
    match result {
        Ok(child) if state.shutting_down => {
            child.cell().stop(Some("shutdown".into()));
            answer_all(waiters, Err(&RegistryError::ShuttingDown));
        }
        Ok(child) => {
            state.by_actor.insert(child.cell().get_id(), key);
            state.shared.directory.insert(key, &child, &stats);
            tracing::info!(target: "parley::supervision", actor_kind = key.kind(), actor_id = %key, "actor_started");
            if let Some(restart_count) = state.restarting.remove(&key) {
                crate::metrics::actor_restarted(key.actor_kind());
                tracing::warn!(
                    target: "parley::supervision",
                    actor_kind = key.kind(), actor_id = %key, restart_count, "actor_restarted"
                );
            }
            answer_all(waiters, Ok(&child));
            state.slots.insert(key, Slot::Live { child, stats });
        }
        Err(RegistryError::NotFound) if create.is_some() && !creating => {
            // A request that may create the conversation arrived while a plain lookup was
            // loading it: try again, creating it this time.
            state.slots.insert(
                key,
                Slot::Starting {
                    waiters,
                    create: create.clone(),
                    creating: true,
                },
            );
            begin_spawn(myself, state, key, create);
        }
        Err(e) => {
            if !matches!(e, RegistryError::NotFound) {
                tracing::warn!(target: "parley::supervision", actor_kind = key.kind(), actor_id = %key, error = %e, "actor_start_failed");
            }
            state.restarting.remove(&key);
            answer_all(waiters, Err(&e));
        }
    }
}

fn exited(
    myself: &ActorRef<RegistryMsg>,
    state: &mut RegistryState,
    actor: ActorId,
    failure: Option<String>,
    reason: Option<String>,
) {
    let Some(key) = state.by_actor.remove(&actor) else {
        return;
    };
    let (waiters, create, stop_reason) = match state.slots.remove(&key) {
        Some(Slot::Live { child, .. }) if child.cell().get_id() == actor => {
            state.shared.directory.remove(key);
            (Vec::new(), None, reason.unwrap_or_else(|| "stopped".into()))
        }
        Some(Slot::Stopping {
            actor: a,
            reason,
            waiters,
            create,
        }) if a == actor => (waiters, create, reason.into()),
        Some(newer) => {
            // The slot already belongs to a newer incarnation.
            state.slots.insert(key, newer);
            (Vec::new(), None, reason.unwrap_or_else(|| "stopped".into()))
        }
        None => (Vec::new(), None, reason.unwrap_or_else(|| "stopped".into())),
    };
    let (kind, id) = (key.kind(), key.to_string());
    let Some(error) = failure else {
        tracing::info!(target: "parley::supervision", actor_kind = kind, actor_id = %id, reason = %stop_reason, "actor_stopped");
        if !waiters.is_empty() {
            if state.shutting_down {
                answer_all(waiters, Err(&RegistryError::ShuttingDown));
            } else {
                let creating = create.is_some();
                state.slots.insert(
                    key,
                    Slot::Starting {
                        waiters,
                        create: create.clone(),
                        creating,
                    },
                );
                begin_spawn(myself, state, key, create);
            }
        }
        return;
    };
    tracing::error!(target: "parley::supervision", actor_kind = kind, actor_id = %id, error = %error, "actor_failed");
    crate::metrics::actor_failed(key.actor_kind());
    if state.shutting_down {
        return answer_all(waiters, Err(&RegistryError::ShuttingDown));
    }
    let config = &state.shared.config;
    let history = state.failures.entry(key).or_default();
    history.push_back(Instant::now());
    while history
        .front()
        .is_some_and(|t| t.elapsed() > config.restart_window)
    {
        history.pop_front();
    }
    if history.len() > config.max_restarts {
        let failures = history.len();
        state.failures.remove(&key);
        state.given_up.insert(key, Instant::now());
        crate::metrics::actor_given_up(key.actor_kind());
        tracing::error!(
            target: "parley::supervision",
            actor_kind = kind, actor_id = %id, failures, "actor_given_up"
        );
        return answer_all(waiters, Err(&RegistryError::GivenUp));
    }
    let restart_count = history.len();
    state.restarting.insert(key, restart_count);
    state.slots.insert(
        key,
        Slot::Starting {
            waiters,
            create,
            creating: false,
        },
    );
    let delay = config.restart_backoff * restart_count as u32;
    ractor::time::send_after(delay, myself.get_cell(), move || RegistryMsg::Restart {
        key,
    });
}

/// Drains every child (conversations first, so their last batches are committed while
/// users can still receive them), waiting for each to finish.
async fn shutdown(state: &mut RegistryState) {
    state.shutting_down = true;
    let timeout = state.shared.config.shutdown_timeout;
    for kind in ["conversation", "user"] {
        let mut tasks = tokio::task::JoinSet::new();
        let keys: Vec<Key> = state
            .slots
            .keys()
            .copied()
            .filter(|k| k.kind() == kind)
            .collect();
        for key in keys {
            if let Some(Slot::Live { child, .. }) = state.slots.remove(&key) {
                let cell = child.cell();
                state.shared.directory.remove(key);
                let actor = cell.get_id();
                state.slots.insert(
                    key,
                    Slot::Stopping {
                        actor,
                        reason: "shutdown",
                        waiters: Vec::new(),
                        create: None,
                    },
                );
                tasks.spawn(async move { (key, actor, cell.drain_and_wait(Some(timeout)).await) });
            }
        }
        // The registry stops right after this, before it would see the children's exits:
        // their lifecycle lines are written here.
        while let Some(joined) = tasks.join_next().await {
            let Ok((key, actor, drained)) = joined else {
                continue;
            };
            state.by_actor.remove(&actor);
            state.slots.remove(&key);
            let (kind, id) = (key.kind(), key.to_string());
            match drained {
                Err(ractor::RactorErr::Timeout) => tracing::warn!(
                    target: "parley::supervision",
                    actor_kind = kind, actor_id = %id, "actor_stop_timed_out"
                ),
                _ => tracing::info!(
                    target: "parley::supervision",
                    actor_kind = kind, actor_id = %id, reason = "shutdown", "actor_stopped"
                ),
            }
        }
    }
}

/// Counts the tree and ranks the live actors by queue depth, then by messages handled.
/// Linear in the number of actors, on the registry's mailbox: lookups of live actors
/// (the directory) do not wait for it, only starts of new actors do.
fn inspect(state: &RegistryState, limit: usize) -> ActorTree {
    let config = &state.shared.config;
    let (sessions, queues) = state.shared.sessions.sample();
    let mut tree = ActorTree {
        given_up: state
            .given_up
            .values()
            .filter(|since| since.elapsed() < config.give_up_cooldown)
            .count(),
        persistence_queue: state.shared.persistence_queue.load(Ordering::Relaxed),
        sessions,
        largest_session_queue: queues.values().copied().max().unwrap_or(0),
        ..ActorTree::default()
    };
    let mut live: Vec<ActorInfo> = Vec::new();
    for (key, slot) in &state.slots {
        match slot {
            Slot::Live { stats, .. } => {
                let restarts = state.failures.get(key).map_or(0, |history| {
                    history
                        .iter()
                        .filter(|t| t.elapsed() <= config.restart_window)
                        .count()
                });
                let largest = match key {
                    Key::User(id) => queues.get(id).copied(),
                    Key::Conversation(_) => None,
                };
                match key {
                    Key::User(_) => tree.users += 1,
                    Key::Conversation(_) => tree.conversations += 1,
                }
                live.push(stats.snapshot(key.actor_kind(), key.to_string(), restarts, largest));
            }
            Slot::Starting { .. } => tree.starting += 1,
            Slot::Stopping { .. } => tree.stopping += 1,
        }
    }
    let busier =
        |a: &ActorInfo, b: &ActorInfo| (b.queue_depth, b.handled).cmp(&(a.queue_depth, a.handled));
    if live.len() > limit && limit > 0 {
        live.select_nth_unstable_by(limit - 1, busier);
    }
    live.truncate(limit);
    live.sort_by(busier);
    tree.busiest = live;
    tree
}
