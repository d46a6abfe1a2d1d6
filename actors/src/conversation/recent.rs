//! The client ids a conversation has seen lately, so a retry is told from a new send
//! without a store read.

use std::collections::{HashMap, VecDeque};

use crate::domain::{ClientId, ConversationId, Seq, UserId};
use crate::store::{HistoryRange, Store, StoreResult};

/// Where a remembered client id's event is.
#[derive(Clone, Copy)]
pub(crate) enum Recent {
    Committed,
    InFlight,
}

/// Client ids of this conversation seen lately. Bounded: older ids are found through the
/// store's client-id index.
///
/// While `complete`, the map holds every client id the conversation has ever used, so a
/// new id is known to be new without a store read (one per send otherwise). It starts
/// complete when the conversation is small enough to load whole, and stops being
/// complete at the first id it forgets.
pub(crate) struct RecentIds {
    map: HashMap<(UserId, ClientId), Recent>,
    order: VecDeque<(UserId, ClientId)>,
    capacity: usize,
    complete: bool,
}

impl RecentIds {
    /// Remembers an id, forgetting the oldest beyond capacity.
    pub(crate) fn insert(&mut self, key: (UserId, ClientId), value: Recent) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                    self.complete = false;
                }
            }
        }
    }

    /// What is known of an id.
    pub(crate) fn get(&self, key: &(UserId, ClientId)) -> Option<&Recent> {
        self.map.get(key)
    }

    /// Whether every id the conversation has used is here.
    pub(crate) fn complete(&self) -> bool {
        self.complete
    }

    /// Forgets the ids of a batch that failed: they were never committed.
    pub(crate) fn forget_in_flight(&mut self) {
        self.map.retain(|_, r| !matches!(r, Recent::InFlight));
    }

    /// Loads every client id of a conversation whose last seq is `last`, when it has at
    /// most `capacity` events; otherwise starts empty and incomplete.
    pub(crate) async fn load(
        store: &dyn Store,
        conversation: ConversationId,
        last: Seq,
        capacity: usize,
    ) -> StoreResult<Self> {
        let mut recent = Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            complete: false,
        };
        if last > capacity as Seq {
            return Ok(recent);
        }
        let range = HistoryRange {
            after: None,
            before: None,
            limit: capacity,
            from_newest: false,
        };
        let events = if last == 0 {
            Vec::new()
        } else {
            store.events(conversation, range).await?
        };
        recent.complete = true;
        for e in events {
            if let Some(cid) = e.client_id {
                recent.insert((e.sender, cid), Recent::Committed);
            }
        }
        Ok(recent)
    }
}
