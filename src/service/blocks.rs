//! Blocking: a user stops another from reaching them. The blocked user cannot message
//! them in their direct conversation, call them, add them as a contact or to a group,
//! or see their presence and typing; and is never told why: each refusal looks like
//! something that happens without a block (`cannot_reach`, the callee offline, no such
//! user). Blocking is one-way. Groups both are in stay as they are: a block keeps
//! someone out of one's own conversations, not out of everyone's.
//!
//! Checks are on hot paths (every direct send), so each user's block list is read from
//! the store once and kept in memory, and kept current by this node's block and
//! unblock. A deployment of several nodes would need to tell the others (the same
//! broker that carries fan-out).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use actors::Store;
use actors::domain::{Timestamp, User, UserId};

use super::ServiceError;

/// The blocks service.
pub struct Blocks {
    store: Arc<dyn Store>,
    /// Each blocker's block list, as read from the store and kept current.
    lists: RwLock<HashMap<UserId, Arc<HashSet<UserId>>>>,
}

impl Blocks {
    /// The service over this store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            lists: RwLock::default(),
        }
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
        .await
    }

    /// `me` no longer blocks `other` (harmless when they did not).
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn unblock(&self, me: UserId, other: UserId) -> Result<(), ServiceError> {
        self.store.unblock_user(me, other).await?;
        self.update(me, |set| {
            set.remove(&other);
        })
        .await
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

    async fn list_of(&self, blocker: UserId) -> Result<Arc<HashSet<UserId>>, ServiceError> {
        if let Some(list) = self.read().get(&blocker) {
            return Ok(list.clone());
        }
        let loaded: Arc<HashSet<UserId>> = Arc::new(
            self.store
                .blocked_users(blocker)
                .await?
                .into_iter()
                .collect(),
        );
        // A block written meanwhile by this node already put its list in: keep that.
        let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
        Ok(lists.entry(blocker).or_insert(loaded).clone())
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
        let mut next = (**lists.get(&blocker).unwrap_or(&loaded)).clone();
        change(&mut next);
        lists.insert(blocker, Arc::new(next));
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<UserId, Arc<HashSet<UserId>>>> {
        self.lists.read().unwrap_or_else(PoisonError::into_inner)
    }
}
