//! Tunables of the actor tree.

use std::time::Duration;

/// Tunables of the actor tree.
#[derive(Debug, Clone)]
pub struct MessengerConfig {
    /// An actor with nothing to do for this long stops.
    pub idle_timeout: Duration,
    /// Durable events a session may have queued before it counts as a slow consumer.
    pub session_queue: usize,
    /// Signals (typing, presence, receipts) a session may have queued; beyond, new ones
    /// are dropped for that session.
    pub signal_queue: usize,
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
    /// Most events in one group commit.
    pub max_commit_batch: usize,
    /// Shortest time between the starts of two group commits (zero: none), so that
    /// under load more sends share one fsync; an idle committer commits at once.
    pub commit_interval: Duration,
    /// Client ids each conversation remembers without a store read.
    pub recent_client_ids: usize,
    /// How long shutdown waits for each actor to finish.
    pub shutdown_timeout: Duration,
    /// Most members a group may have.
    pub max_group_members: usize,
    /// This node's id in a cluster, carried by the supervision log (`node_id`).
    pub node: Option<String>,
}

impl Default for MessengerConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            session_queue: 1024,
            signal_queue: 256,
            max_sessions_per_user: 16,
            call_timeout: Duration::from_secs(10),
            max_restarts: 3,
            restart_window: Duration::from_secs(60),
            restart_backoff: Duration::from_millis(50),
            give_up_cooldown: Duration::from_secs(30),
            max_commit_batch: 4096,
            commit_interval: Duration::ZERO,
            recent_client_ids: 4096,
            shutdown_timeout: Duration::from_secs(10),
            max_group_members: 1000,
            node: None,
        }
    }
}

impl MessengerConfig {
    /// How often an actor checks whether it has been idle for `idle_timeout`.
    pub(crate) fn idle_check_period(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(30))
    }
}
