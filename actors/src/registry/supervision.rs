//! Supervision: what happens when a child stops or fails. A stopped child is forgotten
//! (and started again if requests wait for it); a failed one is restarted after a
//! back-off, or given up on after too many failures in the window.

use std::time::Instant;

use ractor::{ActorId, ActorRef};

use super::msg::{RegistryError, RegistryMsg, answer_all};
use super::{RegistryState, Slot, spawn};

pub(super) fn exited(
    myself: &ActorRef<RegistryMsg>,
    state: &mut RegistryState,
    actor: ActorId,
    failure: Option<String>,
    reason: Option<String>,
) {
    let Some(key) = state.by_actor.remove(&actor) else {
        return;
    };
    let (waiters, create, stop_reason) = match state.slots.remove(&key) {
        Some(Slot::Live { child, .. }) if child.cell().get_id() == actor => {
            state.unlist(key);
            (Vec::new(), None, reason.unwrap_or_else(|| "stopped".into()))
        }
        Some(Slot::Stopping {
            actor: a,
            reason,
            waiters,
            create,
        }) if a == actor => (waiters, create, reason.into()),
        Some(newer) => {
            // The slot already belongs to a newer incarnation.
            state.slots.insert(key, newer);
            (Vec::new(), None, reason.unwrap_or_else(|| "stopped".into()))
        }
        None => (Vec::new(), None, reason.unwrap_or_else(|| "stopped".into())),
    };
    let (kind, id) = (key.kind(), key.to_string());
    let Some(error) = failure else {
        tracing::info!(target: "parley::supervision", node_id = state.shared.config.node.as_deref(), actor_kind = kind, actor_id = %id, reason = %stop_reason, "actor_stopped");
        if !waiters.is_empty() {
            if state.shutting_down {
                answer_all(waiters, Err(&RegistryError::ShuttingDown));
            } else {
                let creating = create.is_some();
                state.slots.insert(
                    key,
                    Slot::Starting {
                        waiters,
                        create: create.clone(),
                        creating,
                    },
                );
                spawn::begin_spawn(myself, state, key, create);
            }
        }
        return;
    };
    tracing::error!(target: "parley::supervision", node_id = state.shared.config.node.as_deref(), actor_kind = kind, actor_id = %id, error = %error, "actor_failed");
    crate::metrics::actor_failed(key.actor_kind());
    if state.shutting_down {
        return answer_all(waiters, Err(&RegistryError::ShuttingDown));
    }
    let config = &state.shared.config;
    let history = state.failures.entry(key).or_default();
    history.push_back(Instant::now());
    while history
        .front()
        .is_some_and(|t| t.elapsed() > config.restart_window)
    {
        history.pop_front();
    }
    if history.len() > config.max_restarts {
        let failures = history.len();
        state.failures.remove(&key);
        state.given_up.insert(key, Instant::now());
        crate::metrics::actor_given_up(key.actor_kind());
        tracing::error!(
            target: "parley::supervision",
            node_id = state.shared.config.node.as_deref(), actor_kind = kind, actor_id = %id, failures, "actor_given_up"
        );
        return answer_all(waiters, Err(&RegistryError::GivenUp));
    }
    let restart_count = history.len();
    state.restarting.insert(key, restart_count);
    state.slots.insert(
        key,
        Slot::Starting {
            waiters,
            create,
            creating: false,
        },
    );
    let delay = config.restart_backoff * restart_count as u32;
    ractor::time::send_after(delay, myself.get_cell(), move || RegistryMsg::Restart {
        key,
    });
}
