//! Starting children: load the record, spawn the actor off the registry's mailbox, and
//! register it (or answer the waiters with why not).

use std::sync::Arc;

use ractor::{Actor, ActorRef};

use super::msg::{Child, RegistryError, RegistryMsg, answer_all};
use super::{RegistryState, Slot};
use crate::context::Shared;
use crate::conversation::{ConversationActor, ConversationArgs};
use crate::directory::LiveUser;
use crate::domain::Conversation;
use crate::inspect::ActorStats;
use crate::key::Key;
use crate::session::UserSessions;
use crate::user::{UserActor, UserArgs};

/// Loads the child's record and spawns it, off the registry's mailbox.
pub(super) fn begin_spawn(
    myself: &ActorRef<RegistryMsg>,
    state: &RegistryState,
    key: Key,
    create: Option<Conversation>,
) {
    let shared = state.shared.clone();
    let me = myself.clone();
    tokio::spawn(async move {
        let stats = ActorStats::new();
        let result = spawn_child(&me, shared, key, create, stats.clone()).await;
        if let Err(ractor::MessagingErr::SendErr(RegistryMsg::Spawned {
            result: Ok(child), ..
        })) = me.cast(RegistryMsg::Spawned { key, result, stats })
        {
            // The registry is gone (shutdown): nobody supervises this child.
            child.cell().stop(Some("shutdown".into()));
        }
    });
}

async fn spawn_child(
    registry: &ActorRef<RegistryMsg>,
    shared: Arc<Shared>,
    key: Key,
    create: Option<Conversation>,
    stats: Arc<ActorStats>,
) -> Result<Child, RegistryError> {
    let supervisor = registry.get_cell();
    let spawn_err = |e: ractor::SpawnErr| RegistryError::Spawn(e.to_string());
    match key {
        Key::User(id) => {
            let user = shared
                .store
                .user(id)
                .await?
                .ok_or(RegistryError::NotFound)?
                .user;
            let sessions = Arc::new(UserSessions::default());
            let args = UserArgs {
                user,
                shared,
                registry: registry.clone(),
                sessions: sessions.clone(),
                stats,
            };
            let (actor, _) = Actor::spawn_linked(None, UserActor, args, supervisor)
                .await
                .map_err(spawn_err)?;
            Ok(Child::User(actor, sessions))
        }
        Key::Conversation(id) => {
            let conversation = match shared.store.conversation(id).await? {
                Some(c) => c,
                None => {
                    let c = create.ok_or(RegistryError::NotFound)?;
                    shared.store.insert_conversation(&c).await?;
                    c
                }
            };
            let args = ConversationArgs {
                conversation,
                shared,
                registry: registry.clone(),
                stats,
            };
            let (actor, _) = Actor::spawn_linked(None, ConversationActor, args, supervisor)
                .await
                .map_err(spawn_err)?;
            Ok(Child::Conversation(actor))
        }
    }
}

pub(super) fn spawned(
    myself: &ActorRef<RegistryMsg>,
    state: &mut RegistryState,
    key: Key,
    result: Result<Child, RegistryError>,
    stats: Arc<ActorStats>,
) {
    let Some(Slot::Starting {
        waiters,
        create,
        creating,
    }) = state.slots.remove(&key)
    else {
        if let Ok(child) = result {
            child.cell().stop(Some("shutdown".into()));
        }
        return;
    };
    match result {
        Ok(child) if state.shutting_down => {
            child.cell().stop(Some("shutdown".into()));
            answer_all(waiters, Err(&RegistryError::ShuttingDown));
        }
        Ok(child) => {
            state.by_actor.insert(child.cell().get_id(), key);
            match (key, &child) {
                (Key::User(id), Child::User(actor, sessions)) => {
                    let live = LiveUser {
                        actor: actor.clone(),
                        sessions: sessions.clone(),
                        stats: stats.clone(),
                    };
                    state.shared.directory.insert_user(id, live);
                }
                (Key::Conversation(id), Child::Conversation(actor)) => {
                    state
                        .shared
                        .directory
                        .insert_conversation(id, actor.clone());
                }
                _ => {}
            }
            tracing::info!(target: "parley::supervision", node_id = state.shared.config.node.as_deref(), actor_kind = key.kind(), actor_id = %key, "actor_started");
            if let Some(restart_count) = state.restarting.remove(&key) {
                crate::metrics::actor_restarted(key.actor_kind());
                tracing::warn!(
                    target: "parley::supervision",
                    node_id = state.shared.config.node.as_deref(), actor_kind = key.kind(), actor_id = %key, restart_count, "actor_restarted"
                );
            }
            answer_all(waiters, Ok(&child));
            state.slots.insert(key, Slot::Live { child, stats });
        }
        Err(RegistryError::NotFound) if create.is_some() && !creating => {
            // A request that may create the conversation arrived while a plain lookup was
            // loading it: try again, creating it this time.
            state.slots.insert(
                key,
                Slot::Starting {
                    waiters,
                    create: create.clone(),
                    creating: true,
                },
            );
            begin_spawn(myself, state, key, create);
        }
        Err(e) => {
            if !matches!(e, RegistryError::NotFound) {
                tracing::warn!(target: "parley::supervision", node_id = state.shared.config.node.as_deref(), actor_kind = key.kind(), actor_id = %key, error = %e, "actor_start_failed");
            }
            state.restarting.remove(&key);
            answer_all(waiters, Err(&e));
        }
    }
}
