//! Many nodes: Parley nodes sharing one CQL keyspace and one NATS (`--cluster-nats`).
//!
//! - [`lease`]: which node sequences each conversation (a lease row per conversation,
//!   taken with a lightweight transaction and fenced by its holder id), and the nodes'
//!   heartbeats.
//! - [`broker`]: the NATS connection, its subjects and health, a publisher that never
//!   waits.
//! - [`forward`]: sends reaching a node that does not own their conversation, carried to
//!   the owner and its answer back.
//! - [`online`]: which users have a session on another node (calls, presence).
//! - [`codec`]: the payloads.
//!
//! [`Cluster`] plugs these into the actors through their two seams: it is the
//! [`Placement`] (where to sequence, whether a lease still holds, forwarding) and wraps
//! the local [`Fanout`] so committed events are also published to every other node,
//! which hands them to its own sessions. The store is the truth and NATS the fast path:
//! the session core drops a seq it already wrote and fills a gap from history, so a
//! batch NATS loses is late, never lost, and a batch it repeats is written once.
//!
//! Architecture: uses `store` (the CQL session) and the actors; the composition root
//! (`app`) builds it, `http` reads its status. Nothing here is used on a single node.

pub(crate) mod broker;
pub(crate) mod codec;
pub(crate) mod forward;
pub(crate) mod lease;
pub(crate) mod online;

use std::sync::Arc;
use std::time::Duration;

use actors::domain::{ConversationId, SessionId, Signal, UserId};
use actors::fanout::{Delivery, Fanout};
use actors::placement::{LeaseToken, Place, Placement};
use actors::{Messenger, SendError, SendRequest, Sent, StoreError};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::store::ScyllaStore;
use broker::Broker;
use codec::{Batch, BlockChange, Revocation, SignalBatch};
use forward::Unanswered;
use lease::Leases;
pub(crate) use lease::NodeRow;

/// Counter: events of other nodes' batches handed to this node's sessions.
pub const REMOTE_DELIVERIES: &str = "parley_cluster_remote_deliveries_total";
/// Counter: other nodes' signals handed to this node's sessions.
pub const REMOTE_SIGNALS: &str = "parley_cluster_remote_signals_total";

/// What a node does when another changes someone's block list (forgets its copy).
type BlockListener = Arc<dyn Fn(UserId) + Send + Sync>;

/// This node's membership of a cluster.
pub struct Cluster {
    node: String,
    leases: Leases,
    broker: Arc<Broker>,
    /// How long a forwarded send may wait for the owner's answer.
    forward_wait: Duration,
    stop: CancellationToken,
    /// Set once the services exist ([`Self::on_block_change`]).
    block_listener: std::sync::OnceLock<BlockListener>,
}

impl Cluster {
    /// Joins: prepares the lease tables in `store`'s keyspace and connects to NATS at
    /// `url` (in the background if it is not up yet).
    pub async fn join(
        url: &str,
        node: String,
        lease_ttl: Duration,
        forward_wait: Duration,
        store: ScyllaStore,
    ) -> Result<Arc<Self>, String> {
        let leases = Leases::start(store, node.clone(), lease_ttl)
            .await
            .map_err(|e| format!("cannot prepare the cluster's tables: {e}"))?;
        // The error of a malformed URL may quote it: say only that it is one.
        let broker = Broker::connect(url, &node)
            .await
            .map_err(|e| format!("cannot use --cluster-nats ({:?})", e.kind()))?;
        Ok(Arc::new(Self {
            node,
            leases,
            broker: Arc::new(broker),
            forward_wait,
            stop: CancellationToken::new(),
            block_listener: std::sync::OnceLock::new(),
        }))
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether cross-node traffic is paused (NATS is not connected).
    pub fn degraded(&self) -> bool {
        !self.broker.is_connected()
    }

    /// Conversations this node sequences now.
    pub fn owned(&self) -> usize {
        self.leases.owned()
    }

    /// The live nodes and how many conversations each sequences.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        self.leases.nodes().await
    }

    /// Wraps this node's own fan-out so committed events also go to the other nodes.
    pub fn fanout(self: &Arc<Self>, local: Arc<dyn Fanout>) -> Arc<dyn Fanout> {
        Arc::new(ClusterFanout {
            local,
            cluster: self.clone(),
        })
    }

    /// Tells the other nodes that `blocker`'s block list changed. Lost while NATS is
    /// down: the others then see the change when their copy ages out (`Blocks`).
    pub fn blocks_changed(&self, blocker: UserId) {
        let change = BlockChange {
            node: self.node.clone(),
            blocker,
        };
        match serde_json::to_vec(&change) {
            Ok(payload) => self.broker.publish(broker::BLOCKS, payload),
            Err(e) => tracing::warn!(error = %e, "cannot encode a block change"),
        }
    }

    /// What to do when another node changes a block list (once; later calls are ignored).
    pub fn on_block_change(&self, listener: impl Fn(UserId) + Send + Sync + 'static) {
        let _ = self.block_listener.set(Arc::new(listener));
    }

    /// Starts taking part: answers forwarded sends, delivers other nodes' events,
    /// signals and revocations to this node's sessions, forgets block lists other nodes
    /// changed, and renews leases, until [`Self::leave`].
    pub async fn run(self: &Arc<Self>, messenger: Messenger) -> Result<(), String> {
        forward::serve(self.broker.clone(), self.node.clone(), messenger.clone())
            .await
            .map_err(|e| format!("cannot subscribe to NATS: {e}"))?;
        online::serve(self.broker.clone(), messenger.clone())
            .await
            .map_err(|e| format!("cannot subscribe to NATS: {e}"))?;
        let to_sessions = messenger.clone();
        self.listen(broker::EVENTS, move |me, payload| {
            me.deliver(&to_sessions, payload);
        })
        .await?;
        let to_sessions = messenger.clone();
        self.listen(broker::SIGNALS, move |me, payload| {
            me.deliver_signal(&to_sessions, payload);
        })
        .await?;
        self.listen(broker::BLOCKS, |me, payload| {
            match serde_json::from_slice::<BlockChange>(payload) {
                Ok(c) if c.node != me.node => {
                    if let Some(listener) = me.block_listener.get() {
                        listener(c.blocker);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable block change"),
            }
        })
        .await?;
        let to_sessions = messenger.clone();
        self.listen(
            broker::REVOCATIONS,
            move |me, payload| match serde_json::from_slice::<Revocation>(payload) {
                Ok(r) if r.node != me.node => {
                    to_sessions.revoke_here(r.user, r.credential.as_deref());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable revocation"),
            },
        )
        .await?;
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.leases.renew_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = me.stop.cancelled() => break,
                }
                me.leases.tick(|c| messenger.has_live_conversation(c)).await;
            }
        });
        tracing::info!(node = %self.node, "joined the cluster");
        Ok(())
    }

    /// Hands every message of the broadcast `subject` to `handle`, in order, on a task
    /// of its own.
    async fn listen(
        self: &Arc<Self>,
        subject: &'static str,
        handle: impl Fn(&Self, &[u8]) + Send + 'static,
    ) -> Result<(), String> {
        let mut messages = self
            .broker
            .client()
            .subscribe(subject)
            .await
            .map_err(|e| format!("cannot subscribe to NATS: {e}"))?;
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                handle(&me, &message.payload);
            }
        });
        Ok(())
    }

    /// Another node's batch: to this node's sessions of its members.
    fn deliver(&self, messenger: &Messenger, payload: &[u8]) {
        let batch = match Batch::decode(payload) {
            Ok(b) if b.node == self.node => return,
            Ok(b) => b,
            Err(e) => return tracing::warn!(error = %e, "unreadable event batch"),
        };
        if !batch.members.iter().any(|m| messenger.has_live_session(*m)) {
            return;
        }
        match batch.deliveries() {
            Ok(deliveries) => {
                metrics::counter!(REMOTE_DELIVERIES).increment(deliveries.len() as u64);
                messenger.deliver(&batch.members, &deliveries);
            }
            Err(e) => tracing::warn!(error = %e, "unreadable event batch"),
        }
    }

    /// Another node's signal: to this node's sessions of its members.
    fn deliver_signal(&self, messenger: &Messenger, payload: &[u8]) {
        let batch = match SignalBatch::decode(payload) {
            Ok(b) if b.node == self.node => return,
            Ok(b) => b,
            Err(e) => return tracing::warn!(error = %e, "unreadable signal"),
        };
        if !batch.members.iter().any(|m| messenger.has_live_session(*m)) {
            return;
        }
        match batch.signal() {
            Ok(signal) => {
                metrics::counter!(REMOTE_SIGNALS).increment(1);
                messenger.deliver_signal(&batch.members, &Arc::new(signal), batch.except());
            }
            Err(e) => tracing::warn!(error = %e, "unreadable signal"),
        }
    }

    /// Stops renewing and gives every lease back (after the actors have stopped), so
    /// the conversations move at once rather than when their leases lapse.
    pub async fn leave(&self) {
        self.stop.cancel();
        self.leases.release_all().await;
    }
}

#[async_trait::async_trait]
impl Placement for Cluster {
    async fn place(&self, conversation: ConversationId) -> Place {
        self.leases.place(conversation).await
    }

    fn token(&self, conversation: ConversationId) -> Option<LeaseToken> {
        self.leases.token(conversation)
    }

    fn holds(&self, conversation: ConversationId, token: LeaseToken) -> bool {
        self.leases.holds(conversation, token)
    }

    async fn forward(&self, node: &str, request: SendRequest) -> Result<Sent, SendError> {
        match forward::forward(&self.broker, node, &request, self.forward_wait).await {
            Ok(answer) => {
                if matches!(answer, Err(SendError::Unavailable)) {
                    // It no longer sequences this conversation: ask the store again.
                    self.leases.forget_owner(forward::conversation_of(&request));
                }
                answer
            }
            Err(Unanswered::Gone) => {
                self.leases.forget_owner(forward::conversation_of(&request));
                Err(SendError::Unavailable)
            }
            Err(Unanswered::Timeout) => Err(SendError::Timeout),
        }
    }

    fn revoked(&self, user: UserId, credential: Option<&str>) {
        let revocation = Revocation {
            node: self.node.clone(),
            user,
            credential: credential.map(str::to_owned),
        };
        match serde_json::to_vec(&revocation) {
            // Lost if NATS is down: a session on another node then ends when its token
            // expires, or at its next request (each checks the revocation list).
            Ok(payload) => self.broker.publish(broker::REVOCATIONS, payload),
            Err(e) => tracing::warn!(error = %e, "cannot encode a revocation"),
        }
    }

    async fn online_elsewhere(&self, users: &[UserId]) -> Vec<UserId> {
        online::elsewhere(&self.broker, users).await
    }
}

/// This node's fan-out, then a publication to the others.
struct ClusterFanout {
    local: Arc<dyn Fanout>,
    cluster: Arc<Cluster>,
}

impl Fanout for ClusterFanout {
    fn events(&self, members: &[UserId], batch: &[Delivery]) {
        self.local.events(members, batch);
        match Batch::encode(&self.cluster.node, members, batch) {
            Ok(payload) => self.cluster.broker.publish(broker::EVENTS, payload),
            Err(e) => tracing::warn!(error = %e, "cannot encode an event batch"),
        }
    }

    fn signal(&self, members: &[UserId], signal: &Arc<Signal>, except: Option<SessionId>) {
        self.local.signal(members, signal, except);
        match SignalBatch::encode(&self.cluster.node, members, signal, except) {
            Ok(payload) => self.cluster.broker.publish(broker::SIGNALS, payload),
            Err(e) => tracing::warn!(error = %e, "cannot encode a signal"),
        }
    }
}

/// Opens the CQL store and joins the cluster `config` names: what `app` does instead
/// of opening a store when `--cluster-nats` is given.
pub async fn start(
    config: &crate::config::Config,
) -> Result<(Arc<dyn actors::Store>, Arc<Cluster>), String> {
    let (Some(url), Some(node)) = (&config.cluster.cluster_nats, &config.cluster.node_id) else {
        return Err("--cluster-nats needs --node-id".into());
    };
    let Some(scylla) = config.store.scylla() else {
        return Err("--cluster-nats needs --store scylla: the nodes share its keyspace".into());
    };
    let store = ScyllaStore::connect(&scylla)
        .await
        .map_err(|e| e.to_string())?;
    // Forwarded sends wait as long as a local send may.
    let wait = actors::MessengerConfig::default().call_timeout;
    let cluster = Cluster::join(
        &url.0,
        node.clone(),
        config.cluster.cluster_lease,
        wait,
        store.clone(),
    )
    .await?;
    Ok((Arc::new(store), cluster))
}
