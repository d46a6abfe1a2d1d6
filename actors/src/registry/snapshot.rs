//! Inspection: a snapshot of the tree from the children's published stats.

use super::{RegistryState, Slot};
use crate::inspect::{ActorInfo, ActorTree};
use crate::key::Key;

/// Counts the tree and ranks the live actors by queue depth, then by messages handled.
/// Linear in the number of actors, on the registry's mailbox: lookups of live actors
/// (the directory) do not wait for it, only starts of new actors do.
pub(super) fn inspect(state: &RegistryState, limit: usize) -> ActorTree {
    let config = &state.shared.config;
    let (sessions, queues) = state.shared.sessions.sample();
    let mut tree = ActorTree {
        given_up: state
            .given_up
            .values()
            .filter(|since| since.elapsed() < config.give_up_cooldown)
            .count(),
        persistence_queue: state.shared.committer.queued(),
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
