//! Conversation leases and node heartbeats, in the CQL store.
//!
//! A conversation is sequenced by the node whose lease row it is: taken with a
//! lightweight transaction (`INSERT … IF NOT EXISTS USING TTL`), renewed by its holder
//! every sixth of the TTL (`UPDATE … IF holder = ?`, the holder being a fresh uuid per
//! taking: the fence), and given back when the conversation's actor has stopped. The
//! holder trusts its lease for half the TTL after the start of its last successful
//! renewal, so it stops acking while the row still exists: no other node can take it
//! before the TTL has run out, measured by the store from a write that started later.
//! A node cut from the store therefore stops acking within half a TTL, and its
//! conversations move within a whole one.
//!
//! The tables are created here, not by the store's migrations: they are the cluster's
//! and a single node never touches them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actors::StoreError;
use actors::domain::ConversationId;
use actors::placement::{LeaseToken, Place};
use futures_util::{StreamExt, stream};
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::store::ScyllaStore;
use crate::store::scylla::applied;

/// Renewals and releases in flight at once.
const RENEWALS_IN_FLIGHT: usize = 16;

/// A lease this node holds.
struct Held {
    token: LeaseToken,
    /// The uuid in the row: renewals and the release are conditional on it.
    holder: Uuid,
    /// Past this the lease is not trusted (half a TTL after a renewal began).
    valid_until: Instant,
    /// Last asked for: a lease taken for a send is kept while its actor starts.
    used: Instant,
}

struct Statements {
    acquire: PreparedStatement,
    renew: PreparedStatement,
    release: PreparedStatement,
    owner: PreparedStatement,
    heartbeat: PreparedStatement,
    nodes: PreparedStatement,
}

/// One live node, from its heartbeat row.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeRow {
    pub(crate) node: String,
    /// Conversations it holds the lease of.
    pub(crate) owned: i32,
}

/// This node's leases.
pub(crate) struct Leases {
    store: ScyllaStore,
    node: String,
    ttl: Duration,
    statements: Statements,
    held: Mutex<HashMap<ConversationId, Held>>,
    /// Other nodes' leases seen lately (forgotten when a forward to them fails).
    owners: Mutex<HashMap<ConversationId, (String, Instant)>>,
    next_token: AtomicU64,
    /// One taking at a time: concurrent first sends of a conversation take it once.
    taking: tokio::sync::Mutex<()>,
}

fn failed(
    what: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    move |e| StoreError::msg(format!("{what}: {e}"))
}

async fn prepare(store: &ScyllaStore, query: String) -> Result<PreparedStatement, StoreError> {
    store
        .session()
        .prepare(query)
        .await
        .map_err(|e| failed("preparing a lease statement")(e.into()))
}

impl Leases {
    /// Creates the tables if needed and prepares the statements.
    pub(crate) async fn start(
        store: ScyllaStore,
        node: String,
        ttl: Duration,
    ) -> Result<Self, StoreError> {
        let ks = store.keyspace().as_str().to_owned();
        for ddl in [
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.conversation_owner \
                 (conversation uuid PRIMARY KEY, node text, holder uuid)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.cluster_node \
                 (node text PRIMARY KEY, owned int, seen timestamp)"
            ),
        ] {
            store
                .session()
                .query_unpaged(ddl, ())
                .await
                .map_err(|e| failed("creating the cluster's tables")(e.into()))?;
        }
        let mut owner = prepare(
            &store,
            format!("SELECT node FROM {ks}.conversation_owner WHERE conversation = ?"),
        )
        .await?;
        // A read that sees every lease taken before it (Paxos), not a stale replica.
        owner.set_consistency(Consistency::Serial);
        let statements = Statements {
            acquire: prepare(
                &store,
                format!(
                    "INSERT INTO {ks}.conversation_owner (conversation, node, holder) \
                     VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?"
                ),
            )
            .await?,
            renew: prepare(
                &store,
                format!(
                    "UPDATE {ks}.conversation_owner USING TTL ? SET node = ?, holder = ? \
                     WHERE conversation = ? IF holder = ?"
                ),
            )
            .await?,
            release: prepare(
                &store,
                format!("DELETE FROM {ks}.conversation_owner WHERE conversation = ? IF holder = ?"),
            )
            .await?,
            owner,
            heartbeat: prepare(
                &store,
                format!(
                    "INSERT INTO {ks}.cluster_node (node, owned, seen) \
                     VALUES (?, ?, toTimestamp(now())) USING TTL ?"
                ),
            )
            .await?,
            nodes: prepare(&store, format!("SELECT node, owned FROM {ks}.cluster_node")).await?,
        };
        Ok(Self {
            store,
            node,
            ttl,
            statements,
            held: Mutex::default(),
            owners: Mutex::default(),
            next_token: AtomicU64::new(1),
            taking: tokio::sync::Mutex::new(()),
        })
    }

    fn ttl_secs(&self) -> i32 {
        i32::try_from(self.ttl.as_secs().max(2)).unwrap_or(i32::MAX)
    }

    /// How long after a renewal began the lease is trusted.
    fn trust(&self) -> Duration {
        self.ttl / 2
    }

    /// How often leases are renewed.
    pub(crate) fn renew_every(&self) -> Duration {
        self.ttl / 6
    }

    /// The lease this node holds on `conversation` and trusts now.
    pub(crate) fn token(&self, conversation: ConversationId) -> Option<LeaseToken> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&conversation)
            .filter(|h| h.valid_until > Instant::now())
            .map(|h| h.token)
    }

    /// Whether this node still holds `conversation` under `token`.
    pub(crate) fn holds(&self, conversation: ConversationId, token: LeaseToken) -> bool {
        self.token(conversation) == Some(token)
    }

    /// How many conversations this node holds.
    pub(crate) fn owned(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Forgets the owner seen for `conversation` (a forward to it failed).
    pub(crate) fn forget_owner(&self, conversation: ConversationId) {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conversation);
    }

    fn here(&self, conversation: ConversationId) -> Option<Place> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let h = held.get_mut(&conversation)?;
        let now = Instant::now();
        (h.valid_until > now).then(|| {
            h.used = now;
            Place::Here(h.token)
        })
    }

    fn cached_owner(&self, conversation: ConversationId) -> Option<Place> {
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        let (node, seen) = owners.get(&conversation)?;
        // Kept no longer than a lease lives without renewal: then it may have moved.
        (seen.elapsed() < self.ttl).then(|| Place::There(node.clone()))
    }

    /// Where `conversation` is sequenced; takes its lease when nobody holds it.
    pub(crate) async fn place(&self, conversation: ConversationId) -> Place {
        if let Some(place) = self
            .here(conversation)
            .or_else(|| self.cached_owner(conversation))
        {
            return place;
        }
        let _taking = self.taking.lock().await;
        if let Some(place) = self.here(conversation) {
            return place;
        }
        match self.take(conversation).await {
            Ok(place) => place,
            Err(e) => {
                tracing::warn!(%conversation, error = %e, "cannot take or read a conversation's lease");
                Place::Unavailable
            }
        }
    }

    async fn take(&self, conversation: ConversationId) -> Result<Place, StoreError> {
        let holder = Uuid::new_v4();
        let began = Instant::now();
        let session = self.store.session();
        let result = session
            .execute_unpaged(
                &self.statements.acquire,
                (conversation.as_uuid(), &self.node, holder, self.ttl_secs()),
            )
            .await
            .map_err(|e| failed("taking a lease")(e.into()))?;
        if applied(result)? {
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            self.held.lock().unwrap_or_else(|p| p.into_inner()).insert(
                conversation,
                Held {
                    token,
                    holder,
                    valid_until: began + self.trust(),
                    used: Instant::now(),
                },
            );
            tracing::debug!(%conversation, "lease taken");
            return Ok(Place::Here(token));
        }
        let owner = session
            .execute_unpaged(&self.statements.owner, (conversation.as_uuid(),))
            .await
            .map_err(|e| failed("reading a lease")(e.into()))?
            .into_rows_result()
            .map_err(|e| failed("reading a lease")(e.into()))?
            .maybe_first_row::<(Option<String>,)>()
            .map_err(|e| failed("reading a lease")(e.into()))?
            .and_then(|(node,)| node);
        Ok(match owner {
            // This node's name on a lease it does not hold: an earlier run of this node
            // took it. Nobody may sequence until it lapses.
            Some(node) if node == self.node => Place::Unavailable,
            Some(node) => {
                self.owners
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(conversation, (node.clone(), Instant::now()));
                Place::There(node)
            }
            // It lapsed between the two statements: the sender's retry takes it.
            None => Place::Unavailable,
        })
    }

    /// One round: renew the leases of live conversations, give back the others, and
    /// write this node's heartbeat. `live` says whether a conversation's actor is alive.
    pub(crate) async fn tick(&self, live: impl Fn(ConversationId) -> bool) {
        let began = Instant::now();
        let (renew, release): (Vec<_>, Vec<_>) = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            // A lease no longer trusted is dropped: its actor has stopped acking, and the
            // row lapses by itself (or is given back below).
            let lapsed: Vec<_> = held
                .iter()
                .filter(|(_, h)| h.valid_until <= began)
                .map(|(c, h)| (*c, h.holder))
                .collect();
            for (c, _) in &lapsed {
                held.remove(c);
                tracing::warn!(conversation = %c, "lease lapsed: this node stops sequencing it");
            }
            let idle: Vec<_> = held
                .iter()
                .filter(|(c, h)| !live(**c) && h.used.elapsed() > self.ttl)
                .map(|(c, h)| (*c, h.holder))
                .collect();
            for (c, _) in &idle {
                held.remove(c);
            }
            let renew = held.iter().map(|(c, h)| (*c, h.holder)).collect();
            (renew, lapsed.into_iter().chain(idle).collect())
        };
        let session = self.store.session();
        let ttl = self.ttl_secs();
        let renewals = stream::iter(renew)
            .map(|(conversation, holder)| async move {
                let result = session
                    .execute_unpaged(
                        &self.statements.renew,
                        (ttl, &self.node, holder, conversation.as_uuid(), holder),
                    )
                    .await
                    .map_err(|e| failed("renewing a lease")(e.into()))
                    .and_then(applied);
                (conversation, holder, result)
            })
            .buffer_unordered(RENEWALS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            for (conversation, holder, result) in renewals {
                let Some(h) = held.get_mut(&conversation).filter(|h| h.holder == holder) else {
                    continue;
                };
                match result {
                    Ok(true) => h.valid_until = began + self.trust(),
                    Ok(false) => {
                        held.remove(&conversation);
                        tracing::warn!(%conversation, "lease lost to another node");
                    }
                    // Trusted until it runs out; the next round tries again.
                    Err(e) => tracing::warn!(%conversation, error = %e, "cannot renew a lease"),
                }
            }
        }
        stream::iter(release)
            .for_each_concurrent(RENEWALS_IN_FLIGHT, |(conversation, holder)| async move {
                let _ = session
                    .execute_unpaged(&self.statements.release, (conversation.as_uuid(), holder))
                    .await;
            })
            .await;
        let owned = i32::try_from(self.owned()).unwrap_or(i32::MAX);
        if let Err(e) = session
            .execute_unpaged(&self.statements.heartbeat, (&self.node, owned, ttl))
            .await
        {
            tracing::warn!(error = %e, "cannot write this node's heartbeat");
        }
    }

    /// Gives back every lease (at shutdown, once the actors have stopped).
    pub(crate) async fn release_all(&self) {
        let all: Vec<_> = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(c, h)| (c, h.holder))
            .collect();
        let session = self.store.session();
        stream::iter(all)
            .for_each_concurrent(RENEWALS_IN_FLIGHT, |(conversation, holder)| async move {
                let _ = session
                    .execute_unpaged(&self.statements.release, (conversation.as_uuid(), holder))
                    .await;
            })
            .await;
    }

    /// The nodes whose heartbeat has not lapsed, with how many conversations each holds.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let rows = self
            .store
            .session()
            .execute_unpaged(&self.statements.nodes, ())
            .await
            .map_err(|e| failed("listing nodes")(e.into()))?
            .into_rows_result()
            .map_err(|e| failed("listing nodes")(e.into()))?;
        let mut nodes = rows
            .rows::<(String, Option<i32>)>()
            .map_err(|e| failed("listing nodes")(e.into()))?
            .filter_map(Result::ok)
            .map(|(node, owned)| NodeRow {
                node,
                owned: owned.unwrap_or(0),
            })
            .collect::<Vec<_>>();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }
}
