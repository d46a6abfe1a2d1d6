//! The messaging facade: what the HTTP and WebSocket layers call. It starts the actor
//! tree, finds (or starts) the right actor for each request, retries once when an actor
//! stopped between lookup and call, and shuts everything down in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::sync::{mpsc, oneshot};

use crate::conversation::ConversationMsg;
use crate::domain::{
    ClientId, Conversation, ConversationId, Message, MessageBody, SessionId, Timestamp, UserId,
};
use crate::inspect::{ActorTree, SessionQueues};
use crate::persistence::{PersistenceActor, PersistenceArgs, PersistenceMsg};
use crate::registry::{Directory, RegistryActor, RegistryError, RegistryMsg, Shared};
use crate::store::{Store, StoreError};
use crate::user::{SessionSink, UserMsg};

/// Tunables of the actor tree.
#[derive(Debug, Clone)]
pub struct MessengerConfig {
    /// An actor with nothing to do for this long stops.
    pub idle_timeout: Duration,
    /// Messages a session may have queued before it counts as a slow consumer.
    pub session_queue: usize,
    /// Sessions one user may hold at once.
    pub max_sessions_per_user: usize,
    /// How long a caller waits for an actor's answer.
    pub call_timeout: Duration,
    /// Failures within `restart_window` after which an actor is given up on.
    pub max_restarts: usize,
    /// The window for `max_restarts`.
    pub restart_window: Duration,
    /// Back-off before a restart, multiplied by the restart count.
    pub restart_backoff: Duration,
    /// How long a given-up actor refuses requests.
    pub give_up_cooldown: Duration,
    /// Most messages in one group commit.
    pub max_commit_batch: usize,
    /// Client ids each conversation remembers without a store read.
    pub recent_client_ids: usize,
    /// How long shutdown waits for each actor to finish.
    pub shutdown_timeout: Duration,
}

impl Default for MessengerConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            session_queue: 1024,
            max_sessions_per_user: 16,
            call_timeout: Duration::from_secs(10),
            max_restarts: 3,
            restart_window: Duration::from_secs(60),
            restart_backoff: Duration::from_millis(50),
            give_up_cooldown: Duration::from_secs(30),
            max_commit_batch: 4096,
            recent_client_ids: 4096,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The direct conversation with this user (created on first use).
    User(UserId),
    /// An existing conversation.
    Conversation(ConversationId),
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// The sender.
    pub from: UserId,
    /// Where it goes.
    pub target: Target,
    /// What it says.
    pub body: MessageBody,
    /// The sender's retry key.
    pub client_id: Option<ClientId>,
    /// The session it came from (acked rather than delivered to).
    pub origin: Option<SessionId>,
}

/// A committed send.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The message as stored.
    pub message: Arc<Message>,
    /// True when this was a retry of a client id already used: nothing new was stored.
    pub duplicate: bool,
}

/// Why a send failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The recipient does not exist.
    #[error("no such recipient")]
    RecipientNotFound,
    /// A user cannot start a conversation with themselves.
    #[error("cannot send a message to yourself")]
    CannotMessageSelf,
    /// The sender is not in that conversation (or it does not exist).
    #[error("not a participant of this conversation")]
    NotParticipant,
    /// The conversation's actor failed while handling this send: it may or may not be
    /// committed, so retry with the same client id.
    #[error("the conversation failed while handling this message; retry with the same client_id")]
    Failed,
    /// The conversation's actor keeps failing and was given up on for a while.
    #[error("this conversation is temporarily unavailable")]
    Unavailable,
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The store failed; nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a session could not attach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The user already holds the most sessions allowed.
    #[error("too many sessions for this user")]
    TooManySessions,
    /// The user does not exist.
    #[error("no such user")]
    UserNotFound,
    /// The user's actor could not be reached.
    #[error("temporarily unavailable")]
    Unavailable,
}

/// Why a session was dropped by its user actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its outbound queue overflowed.
    SlowConsumer,
}

/// A session's end of its link to the user actor.
pub struct SessionLink {
    /// Committed messages for this session, in order per conversation.
    pub messages: mpsc::Receiver<Arc<Message>>,
    /// Resolves if the user actor drops the session; an error means the user actor
    /// itself went away.
    pub kicked: oneshot::Receiver<Kick>,
}

/// Handle to the running actor tree. Cheap to clone.
#[derive(Clone)]
pub struct Messenger {
    shared: Arc<Shared>,
    registry: ActorRef<RegistryMsg>,
}

impl Messenger {
    /// Starts the persistence actor and the registry.
    pub async fn start(
        store: Arc<dyn Store>,
        config: MessengerConfig,
    ) -> Result<Self, ractor::SpawnErr> {
        let persistence_queue = Arc::new(AtomicUsize::new(0));
        let args = PersistenceArgs {
            store: store.clone(),
            max_batch: config.max_commit_batch,
            queued: persistence_queue.clone(),
        };
        let (persistence, _) = Actor::spawn(None, PersistenceActor, args).await?;
        let shared = Arc::new(Shared {
            store,
            config,
            directory: Directory::default(),
            persistence,
            persistence_queue,
            sessions: SessionQueues::default(),
        });
        let (registry, _) = Actor::spawn(None, RegistryActor, shared.clone()).await?;
        Ok(Self { shared, registry })
    }

    /// The configuration in force.
    pub fn config(&self) -> &MessengerConfig {
        &self.shared.config
    }

    /// Live user and conversation actors.
    pub fn actor_counts(&self) -> (usize, usize) {
        self.shared.directory.counts()
    }

    /// Sets the sampled gauges (actors alive, persistence queue, longest session queue)
    /// from this tree, for a metrics scrape. Cheap: no actor is asked anything.
    pub fn record_gauges(&self) {
        let (users, conversations) = self.shared.directory.counts();
        let (_, queues) = self.shared.sessions.sample();
        crate::metrics::gauges(
            users,
            conversations,
            self.shared.persistence_queue.load(Ordering::Relaxed),
            queues.values().copied().max().unwrap_or(0),
        );
    }

    /// A snapshot of the actor tree with the `limit` busiest actors; `None` when the
    /// registry does not answer in time (or is gone).
    pub async fn inspect(&self, limit: usize) -> Option<ActorTree> {
        match self
            .registry
            .call(
                |reply| RegistryMsg::Inspect { limit, reply },
                Some(self.shared.config.call_timeout),
            )
            .await
        {
            Ok(CallResult::Success(tree)) => Some(tree),
            _ => None,
        }
    }

    /// Sends a message; returns once it is durably committed (or was a known retry).
    pub async fn send(&self, request: SendRequest) -> Result<Sent, SendError> {
        let ws = request.origin.is_some();
        crate::metrics::send_received(ws);
        let started = Instant::now();
        let result = self.send_inner(request).await;
        crate::metrics::send_answered(ws, &result, started.elapsed());
        result
    }

    async fn send_inner(&self, request: SendRequest) -> Result<Sent, SendError> {
        let (id, create) = match request.target {
            Target::User(to) if to == request.from => return Err(SendError::CannotMessageSelf),
            Target::User(to) => {
                let id = ConversationId::direct(request.from, to);
                if self.shared.directory.live_conversation(id).is_some() {
                    (id, None)
                } else if self.shared.store.user(to).await?.is_none() {
                    return Err(SendError::RecipientNotFound);
                } else {
                    (
                        id,
                        Some(Conversation::direct(request.from, to, Timestamp::now())),
                    )
                }
            }
            Target::Conversation(id) => (id, None),
        };
        for _ in 0..3 {
            let actor = self
                .conversation(id, create.clone())
                .await
                .map_err(|e| match e {
                    RegistryError::NotFound => SendError::NotParticipant,
                    RegistryError::ShuttingDown => SendError::ShuttingDown,
                    RegistryError::Store(e) => SendError::Store(e),
                    RegistryError::GivenUp | RegistryError::Spawn(_) => SendError::Unavailable,
                })?;
            let r = request.clone();
            let call = actor.call(
                |reply| ConversationMsg::Send {
                    from: r.from,
                    body: r.body,
                    client_id: r.client_id,
                    origin: r.origin,
                    reply,
                },
                Some(self.shared.config.call_timeout),
            );
            match call.await {
                Ok(CallResult::Success(result)) => return result,
                Ok(CallResult::Timeout) => return Err(SendError::Timeout),
                // The actor died holding the request: it may or may not be committed, so
                // only the client (with its client id) may safely retry.
                Ok(CallResult::SenderError) => return Err(SendError::Failed),
                // The actor stopped before it received the request: ask again.
                Err(_) => continue,
            }
        }
        Err(SendError::Unavailable)
    }

    /// Attaches a new session of `user`; deliveries arrive on the returned link.
    pub async fn attach(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<SessionLink, AttachError> {
        for _ in 0..3 {
            let actor = match self.user(user).await {
                Ok(a) => a,
                Err(RegistryError::NotFound) => return Err(AttachError::UserNotFound),
                Err(_) => return Err(AttachError::Unavailable),
            };
            let (tx, messages) = mpsc::channel(self.shared.config.session_queue);
            let (kick, kicked) = oneshot::channel();
            self.shared.sessions.insert(session, user, &tx);
            let sink = SessionSink {
                id: session,
                tx,
                kick,
            };
            match actor
                .call(
                    |reply| UserMsg::Attach { sink, reply },
                    Some(self.shared.config.call_timeout),
                )
                .await
            {
                Ok(CallResult::Success(Ok(()))) => return Ok(SessionLink { messages, kicked }),
                Ok(CallResult::Success(Err(e))) => {
                    self.shared.sessions.remove(session);
                    return Err(e);
                }
                Ok(_) => {
                    self.shared.sessions.remove(session);
                    return Err(AttachError::Unavailable);
                }
                Err(_) => {
                    self.shared.sessions.remove(session);
                    continue;
                }
            }
        }
        Err(AttachError::Unavailable)
    }

    /// Detaches a session (when its connection ends).
    pub fn detach(&self, user: UserId, session: SessionId) {
        self.shared.sessions.remove(session);
        if let Some(actor) = self.shared.directory.live_user(user) {
            let _ = actor.cast(UserMsg::Detach { session });
        }
    }

    /// Stops every actor, committing all accepted messages, then makes the store durable.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let timeout = self.shared.config.shutdown_timeout * 2;
        let _ = self
            .registry
            .call(|reply| RegistryMsg::Shutdown { reply }, Some(timeout))
            .await;
        self.registry.stop(None);
        // Conversations have finished their batches, so nothing is left in flight.
        let persistence = &self.shared.persistence;
        let _ = persistence
            .call(|reply| PersistenceMsg::Barrier { reply }, Some(timeout))
            .await;
        persistence.stop(None);
        self.shared.store.flush().await
    }

    async fn conversation(
        &self,
        id: ConversationId,
        create: Option<Conversation>,
    ) -> Result<ActorRef<ConversationMsg>, RegistryError> {
        if let Some(actor) = self.shared.directory.live_conversation(id) {
            return Ok(actor);
        }
        self.ask(|reply| RegistryMsg::GetConversation { id, create, reply })
            .await
    }

    async fn user(&self, id: UserId) -> Result<ActorRef<UserMsg>, RegistryError> {
        if let Some(actor) = self.shared.directory.live_user(id) {
            return Ok(actor);
        }
        self.ask(|reply| RegistryMsg::GetUser { id, reply }).await
    }

    async fn ask<T>(
        &self,
        msg: impl FnOnce(ractor::RpcReplyPort<Result<T, RegistryError>>) -> RegistryMsg,
    ) -> Result<T, RegistryError>
    where
        T: Send + 'static,
    {
        match self
            .registry
            .call(msg, Some(self.shared.config.call_timeout))
            .await
        {
            Ok(CallResult::Success(result)) => result,
            Ok(_) => Err(RegistryError::Spawn("the registry did not answer".into())),
            Err(_) => Err(RegistryError::ShuttingDown),
        }
    }
}
