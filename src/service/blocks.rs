//! Blocking: a user stops another from reaching them. The blocked user cannot message
//! them in their direct conversation, call them, add them as a contact or to a group,
//! or see their presence and typing; and is never told why: each refusal looks like
//! something that happens without a block (`cannot_reach`, the callee offline, no such
//! user). Blocking is one-way. Groups both are in stay as they are: a block keeps
//! someone out of one's own conversations, not out of everyone's.
//!
//! Checks are on hot paths (every direct send), so each user's block list is read from
//! the store once and kept in memory, and kept current by this node's block and
//! unblock. In a cluster every change is told to the other nodes, which forget their
//! copy ([`Blocks::forget`]); as a safety net for a notice NATS lost, a copy is also
//! read again once it is [`CLUSTER_MAX_AGE`] old.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actors::Store;
use actors::domain::{Timestamp, User, UserId};

use super::ServiceError;

/// How long a node of a cluster trusts its copy of a block list.
pub const CLUSTER_MAX_AGE: Duration = Duration::from_secs(30);

/// Who is told of this node's block-list changes (the other nodes of a cluster).
type ChangeListener = Arc<dyn Fn(UserId) + Send + Sync>;

/// One blocker's list, as read (or last changed) at `at`.
type Copy = (Instant, Arc<HashSet<UserId>>);

/// The blocks service.
pub struct Blocks {
    store: Arc<dyn Store>,
    /// Each blocker's block list, as read from the store and kept current.
    lists: RwLock<HashMap<UserId, Copy>>,
    /// Bumped (under the write lock) by every [`Self::forget`], so a list read from the
    /// store before a forget is not kept after it.
    forgotten: AtomicU64,
    /// Set in a cluster: told of every change here, and copies age out.
    on_change: OnceLock<ChangeListener>,
}

impl Blocks {
    /// The service over this store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            lists: RwLock::default(),
            forgotten: AtomicU64::new(0),
            on_change: OnceLock::new(),
        }
    }

    /// Joins a cluster: `listener` is told of every change made here (to tell the other
    /// nodes), and copies older than [`CLUSTER_MAX_AGE`] are read again.
    pub fn on_change(&self, listener: impl Fn(UserId) + Send + Sync + 'static) {
        let _ = self.on_change.set(Arc::new(listener));
    }

    /// Drops this node's copy of `blocker`'s list (another node changed it): the next
    /// check reads it from the store.
    pub fn forget(&self, blocker: UserId) {
        let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
        lists.remove(&blocker);
        self.forgotten.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether `blocker` blocks `other`.
    pub async fn blocks(&self, blocker: UserId, other: UserId) -> Result<bool, ServiceError> {
        Ok(self.list_of(blocker).await?.contains(&other))
    }

    /// Of `users`, those who block `me` or whom `me` blocks: they do not see each
    /// other's presence or typing.
    pub async fn apart_from(
        &self,
        me: UserId,
        users: &[UserId],
    ) -> Result<HashSet<UserId>, ServiceError> {
        let mine = self.list_of(me).await?;
        let mut out = HashSet::new();
        for user in users {
            if mine.contains(user) || self.list_of(*user).await?.contains(&me) {
                out.insert(*user);
            }
        }
        Ok(out)
    }

    /// `me` blocks `other` (again is harmless). 404 for an unknown user; nobody blocks
    /// themselves.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn block(&self, me: UserId, other: UserId) -> Result<(), ServiceError> {
        if other == me {
            return Err(ServiceError::CannotBlockSelf);
        }
        if self.store.user(other).await?.is_none() {
            return Err(ServiceError::UserNotFound);
        }
        self.store.block_user(me, other, Timestamp::now()).await?;
        self.update(me, |set| {
            set.insert(other);
        })
        .await?;
        self.changed(me);
        Ok(())
    }

    /// `me` no longer blocks `other` (harmless when they did not).
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn unblock(&self, me: UserId, other: UserId) -> Result<(), ServiceError> {
        self.store.unblock_user(me, other).await?;
        self.update(me, |set| {
            set.remove(&other);
        })
        .await?;
        self.changed(me);
        Ok(())
    }

    /// The users `me` blocks (those whose accounts still exist), sorted by name.
    pub async fn list(&self, me: UserId) -> Result<Vec<User>, ServiceError> {
        let mut users = Vec::new();
        for id in self.list_of(me).await?.iter() {
            if let Some(record) = self.store.user(*id).await? {
                users.push(record.user);
            }
        }
        users.sort_by_cached_key(|u| (u.name.as_str().to_lowercase(), u.id));
        Ok(users)
    }

    fn changed(&self, blocker: UserId) {
        if let Some(listener) = self.on_change.get() {
            listener(blocker);
        }
    }

    /// This node's copy, unless it is too old to trust (in a cluster only).
    fn fresh(
        &self,
        lists: &HashMap<UserId, Copy>,
        blocker: UserId,
    ) -> Option<Arc<HashSet<UserId>>> {
        let (at, list) = lists.get(&blocker)?;
        let aged = self.on_change.get().is_some() && at.elapsed() > CLUSTER_MAX_AGE;
        (!aged).then(|| list.clone())
    }

    async fn list_of(&self, blocker: UserId) -> Result<Arc<HashSet<UserId>>, ServiceError> {
        if let Some(list) = self.fresh(
            &self.lists.read().unwrap_or_else(PoisonError::into_inner),
            blocker,
        ) {
            return Ok(list);
        }
        let generation = self.forgotten.load(Ordering::SeqCst);
        let loaded: Arc<HashSet<UserId>> = Arc::new(
            self.store
                .blocked_users(blocker)
                .await?
                .into_iter()
                .collect(),
        );
        let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
        if self.forgotten.load(Ordering::SeqCst) != generation {
            // Another node changed some list while this one was read: use what was
            // read, but keep no copy that may predate the change.
            return Ok(loaded);
        }
        // A block written meanwhile by this node already put its list in: keep that.
        if let Some(list) = self.fresh(&lists, blocker) {
            return Ok(list);
        }
        lists.insert(blocker, (Instant::now(), loaded.clone()));
        Ok(loaded)
    }

    async fn update(
        &self,
        blocker: UserId,
        change: impl FnOnce(&mut HashSet<UserId>),
    ) -> Result<(), ServiceError> {
        // Loaded first (a store read, no lock held); then changed under the lock, so two
        // changes of one list on this node cannot undo each other.
        let loaded = self.list_of(blocker).await?;
        let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = (*lists.get(&blocker).map_or(loaded, |(_, l)| l.clone())).clone();
        change(&mut next);
        lists.insert(blocker, (Instant::now(), Arc::new(next)));
        Ok(())
    }
}
