//! Shutdown: drain every child, conversations first (so their last batches are
//! committed and fanned out while users can still receive them), then users.

use super::{RegistryState, Slot};
use crate::key::Key;

/// Drains every child, conversations first, waiting for each to finish.
pub(super) async fn shutdown(state: &mut RegistryState) {
    state.shutting_down = true;
    let timeout = state.shared.config.shutdown_timeout;
    for kind in ["conversation", "user"] {
        let mut tasks = tokio::task::JoinSet::new();
        let keys: Vec<Key> = state
            .slots
            .keys()
            .copied()
            .filter(|k| k.kind() == kind)
            .collect();
        for key in keys {
            if let Some(Slot::Live { child, .. }) = state.slots.remove(&key) {
                let cell = child.cell();
                state.unlist(key);
                let actor = cell.get_id();
                state.slots.insert(
                    key,
                    Slot::Stopping {
                        actor,
                        reason: "shutdown",
                        waiters: Vec::new(),
                        create: None,
                    },
                );
                tasks.spawn(async move { (key, actor, cell.drain_and_wait(Some(timeout)).await) });
            }
        }
        // The registry stops right after this, before it would see the children's exits:
        // their lifecycle lines are written here.
        while let Some(joined) = tasks.join_next().await {
            let Ok((key, actor, drained)) = joined else {
                continue;
            };
            state.by_actor.remove(&actor);
            state.slots.remove(&key);
            let (kind, id) = (key.kind(), key.to_string());
            match drained {
                Err(ractor::RactorErr::Timeout) => tracing::warn!(
                    target: "parley::supervision",
                    node_id = state.shared.config.node.as_deref(), actor_kind = kind, actor_id = %id, "actor_stop_timed_out"
                ),
                _ => tracing::info!(
                    target: "parley::supervision",
                    node_id = state.shared.config.node.as_deref(), actor_kind = kind, actor_id = %id, reason = "shutdown", "actor_stopped"
                ),
            }
        }
    }
}
