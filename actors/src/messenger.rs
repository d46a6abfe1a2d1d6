//! The messaging facade: what the service layer calls. It starts the actor tree, finds
//! (or starts) the right actor for each request, retries when an actor stopped between
//! lookup and call, and shuts everything down in order.

use std::sync::Arc;
use std::time::Instant;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};

use crate::api::{AttachError, SendError, SendRequest, Sent, Target};
use crate::commit::Committer;
use crate::config::MessengerConfig;
use crate::context::Shared;
use crate::conversation::msg::ConversationMsg;
use crate::directory::Directory;
use crate::domain::{Conversation, ConversationId, SessionId, Signal, Timestamp, UserId};
use crate::fanout::{Delivery, Fanout, LocalFanout};
use crate::inspect::ActorTree;
use crate::placement::{Alone, Place, Placement};
use crate::registry::RegistryActor;
use crate::registry::msg::{RegistryError, RegistryMsg};
use crate::session::{SessionLink, SessionSink};
use crate::store::{Store, StoreError};
use crate::user::msg::UserMsg;

/// Handle to the running actor tree. Cheap to clone.
#[derive(Clone)]
pub struct Messenger {
    shared: Arc<Shared>,
    registry: ActorRef<RegistryMsg>,
    /// Delivery to this process's sessions only: what events and revocations arriving
    /// from other nodes go through.
    local: Arc<dyn Fanout>,
}

impl Messenger {
    /// Starts the group commit and the registry, with fan-out within this process.
    pub async fn start(
        store: Arc<dyn Store>,
        config: MessengerConfig,
    ) -> Result<Self, ractor::SpawnErr> {
        Self::start_placed(store, config, Arc::new(Alone), |local| local).await
    }

    /// Starts as one node of a cluster: `placement` says which node sequences each
    /// conversation, and `fanout` wraps the delivery within this process (to publish
    /// committed events to the other nodes as well).
    pub async fn start_placed(
        store: Arc<dyn Store>,
        config: MessengerConfig,
        placement: Arc<dyn Placement>,
        fanout: impl FnOnce(Arc<dyn Fanout>) -> Arc<dyn Fanout>,
    ) -> Result<Self, ractor::SpawnErr> {
        let directory = Arc::new(Directory::default());
        let local: Arc<dyn Fanout> = Arc::new(LocalFanout::new(directory.clone()));
        let committer = Committer::start(
            store.clone(),
            config.max_commit_batch,
            config.commit_interval,
        );
        let shared = Arc::new(Shared {
            store,
            config,
            directory,
            committer,
            fanout: fanout(local.clone()),
            placement,
            sessions: Default::default(),
        });
        let (registry, _) = Actor::spawn(None, RegistryActor, shared.clone()).await?;
        Ok(Self {
            shared,
            registry,
            local,
        })
    }

    /// Hands a batch of another node's committed events to this node's sessions of
    /// `members` (each event's sending session is skipped: its ack carries it).
    pub fn deliver(&self, members: &[UserId], batch: &[Delivery]) {
        self.local.events(members, batch);
    }

    /// Hands another node's signal to this node's sessions of `members` but `except`.
    pub fn deliver_signal(
        &self,
        members: &[UserId],
        signal: &Arc<Signal>,
        except: Option<SessionId>,
    ) {
        self.local.signal(members, signal, except);
    }

    /// Whether a conversation actor for `id` is alive on this node.
    pub fn has_live_conversation(&self, id: ConversationId) -> bool {
        self.shared.directory.live_conversation(id).is_some()
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
            self.shared.committer.queued(),
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
    /// In a cluster, a conversation sequenced on another node is forwarded there.
    pub async fn send(&self, request: SendRequest) -> Result<Sent, SendError> {
        let ws = request.origin.is_some();
        crate::metrics::send_received(ws);
        let started = Instant::now();
        let result = self.send_inner(request, true).await;
        crate::metrics::send_answered(ws, &result, started.elapsed());
        result
    }

    /// Sends a message another node forwarded here: sequenced here or refused
    /// ([`SendError::Unavailable`]), never forwarded again, so two nodes that disagree
    /// on the owner cannot bounce a send between them.
    pub async fn send_forwarded(&self, request: SendRequest) -> Result<Sent, SendError> {
        self.send_inner(request, false).await
    }

    async fn send_inner(&self, request: SendRequest, forward: bool) -> Result<Sent, SendError> {
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
        // Tried again after a refusal: the forwarding side forgets the owner it asked.
        let mut here = false;
        for _ in 0..3 {
            match self.shared.placement.place(id).await {
                Place::Here(_) => {
                    here = true;
                    break;
                }
                Place::There(node) if forward => {
                    match self.shared.placement.forward(&node, request.clone()).await {
                        Err(SendError::Unavailable) => continue,
                        answer => return answer,
                    }
                }
                Place::There(_) | Place::Unavailable => break,
            }
        }
        if !here {
            return Err(SendError::Unavailable);
        }
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
            let request = Box::new(request.clone());
            let call = actor.call(
                |reply| ConversationMsg::Send { request, reply },
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

    /// Hands a signal (typing, a receipt, presence) to the live sessions of `members`
    /// but `except`, on their sheddable lanes. Never stored; dropped for a session whose
    /// lane is full.
    pub fn signal(&self, members: &[UserId], signal: Signal, except: Option<SessionId>) {
        self.shared
            .fanout
            .signal(members, &Arc::new(signal), except);
    }

    /// Whether `user` has a live session on this node or, in a cluster, on another.
    pub async fn is_online(&self, user: UserId) -> bool {
        self.has_live_session(user) || self.online_elsewhere(&[user]).await.contains(&user)
    }

    /// Of `users`, those with a live session on another node of a cluster (none on one
    /// node). In a cluster this asks every node and may wait a moment for the answers.
    pub async fn online_elsewhere(&self, users: &[UserId]) -> Vec<UserId> {
        self.shared.placement.online_elsewhere(users).await
    }

    /// Whether `user` has a live session on this node, read from the directory without
    /// a mailbox hop (a session attaching or closing at this moment may be missed).
    pub fn has_live_session(&self, user: UserId) -> bool {
        self.shared
            .directory
            .live_user(user)
            .is_some_and(|live| live.sessions.any_open())
    }

    /// How many live sessions `user` has on this node, read from the directory.
    pub fn live_sessions(&self, user: UserId) -> usize {
        self.shared
            .directory
            .live_user(user)
            .map_or(0, |live| live.sessions.len())
    }

    /// Attaches a new session of `user`, opened with `credential` (an opaque id, such as
    /// a token's, that [`Self::revoke`] can name); deliveries arrive on the returned link.
    pub async fn attach(
        &self,
        user: UserId,
        session: SessionId,
        credential: &str,
    ) -> Result<SessionLink, AttachError> {
        let config = &self.shared.config;
        for _ in 0..3 {
            let actor = match self.user(user).await {
                Ok(a) => a,
                Err(RegistryError::NotFound) => return Err(AttachError::UserNotFound),
                Err(_) => return Err(AttachError::Unavailable),
            };
            let (sink, link) = SessionSink::new(
                session,
                user,
                credential.to_owned(),
                config.session_queue,
                config.signal_queue,
            );
            self.shared.sessions.insert(&sink);
            let answer = actor
                .call(
                    |reply| UserMsg::Attach { sink, reply },
                    Some(config.call_timeout),
                )
                .await;
            match answer {
                Ok(CallResult::Success(Ok(()))) => return Ok(link),
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

    /// Ends at once the live sessions of `user` opened with `credential`, or all of them
    /// with `None`; each is kicked with [`Kick::Revoked`](crate::Kick::Revoked). Returns
    /// how many ended.
    pub fn revoke(&self, user: UserId, credential: Option<&str>) -> usize {
        // The user may have sessions on other nodes too.
        self.shared.placement.revoked(user, credential);
        self.revoke_here(user, credential)
    }

    /// [`Self::revoke`] for this node's sessions only: a revocation another node
    /// published.
    pub fn revoke_here(&self, user: UserId, credential: Option<&str>) -> usize {
        self.shared
            .directory
            .live_user(user)
            .map_or(0, |live| live.sessions.revoke(credential))
    }

    /// Ends at once the live sessions of `user` opened with any credential but `keep`
    /// (a password change keeps the device that asked). Returns how many ended.
    pub fn revoke_except(&self, user: UserId, keep: &str) -> usize {
        self.shared
            .directory
            .live_user(user)
            .map_or(0, |live| live.sessions.revoke_where(|c| c != keep))
    }

    /// Detaches a session (when its connection ends).
    pub fn detach(&self, user: UserId, session: SessionId) {
        self.shared.sessions.remove(session);
        if let Some(live) = self.shared.directory.live_user(user) {
            // Forgotten at once, so no more deliveries are queued for it.
            live.sessions.remove(session);
            let _ = live.actor.cast(UserMsg::Detach { session });
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
        let _ = tokio::time::timeout(timeout, self.shared.committer.barrier()).await;
        let flushed = self.shared.store.flush().await;
        let _ = tokio::time::timeout(timeout, self.shared.committer.stop()).await;
        flushed
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
        if let Some(live) = self.shared.directory.live_user(id) {
            return Ok(live.actor);
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
