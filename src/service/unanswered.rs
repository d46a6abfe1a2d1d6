//! Unanswered openings: the direct conversations a user opened whose other party has
//! not written back yet. A user with too many of them cannot open another until someone
//! answers, which bounds unsolicited messages without limiting conversations that are
//! going both ways.
//!
//! Kept in memory on this node, from the sends it sees: a restart forgets openings
//! (erring towards letting people write), and a deployment of several nodes would keep
//! this beside the block lists.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use actors::domain::UserId;

/// Who opened conversations with whom that are not answered yet.
pub struct Unanswered {
    limit: usize,
    open: Mutex<HashMap<UserId, HashSet<UserId>>>,
}

impl Unanswered {
    /// A tracker allowing `limit` unanswered openings per user.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Mutex::default(),
        }
    }

    /// Whether `opener` is at the limit (and so may not open one more).
    pub fn at_limit(&self, opener: UserId) -> bool {
        self.lock()
            .get(&opener)
            .is_some_and(|s| s.len() >= self.limit)
    }

    /// `opener` opened a direct conversation with `other`.
    pub fn opened(&self, opener: UserId, other: UserId) {
        self.lock().entry(opener).or_default().insert(other);
    }

    /// `from` wrote to `to`: if `to` had opened with `from`, it is answered now.
    pub fn wrote(&self, from: UserId, to: UserId) {
        let mut open = self.lock();
        if let Some(set) = open.get_mut(&to) {
            set.remove(&from);
            if set.is_empty() {
                open.remove(&to);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, HashSet<UserId>>> {
        // Plain sets: a panic mid-update leaves nothing half-written to guard against.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_frees_an_opening() {
        let t = Unanswered::new(2);
        let (ada, bob, cy) = (UserId::generate(), UserId::generate(), UserId::generate());
        t.opened(ada, bob);
        assert!(!t.at_limit(ada));
        t.opened(ada, cy);
        assert!(t.at_limit(ada));
        t.wrote(bob, ada);
        assert!(!t.at_limit(ada));
        // Ada writing again to Cy answers nothing of hers.
        t.wrote(ada, cy);
        assert!(!t.at_limit(ada));
    }
}
