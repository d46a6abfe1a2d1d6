//! The user actor: owns every live session (device, tab) of one user. It adds and
//! removes sessions and stops when the user has been idle with none; deliveries do not
//! pass through it (fan-out reads the user's [`UserSessions`] directly), so a message
//! costs no hop through this mailbox.

pub(crate) mod msg;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::context::Shared;
use crate::domain::User;
use crate::inspect::ActorStats;
use crate::key::Key;
use crate::lifecycle::Idle;
use crate::registry::msg::RegistryMsg;
use crate::session::UserSessions;
use msg::UserMsg;

/// The user actor.
pub(crate) struct UserActor;

/// Its arguments: the account, already loaded by the registry.
pub(crate) struct UserArgs {
    pub(crate) user: User,
    pub(crate) shared: Arc<Shared>,
    pub(crate) registry: ActorRef<RegistryMsg>,
    /// The user's sessions, shared with the directory.
    pub(crate) sessions: Arc<UserSessions>,
    /// Where it publishes its activity for inspection.
    pub(crate) stats: Arc<ActorStats>,
}

/// Its state.
pub(crate) struct UserState {
    shared: Arc<Shared>,
    sessions: Arc<UserSessions>,
    idle: Idle,
}

impl Actor for UserActor {
    type Msg = UserMsg;
    type State = UserState;
    type Arguments = UserArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: UserArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let key = Key::User(args.user.id);
        let idle = Idle::start(
            &myself,
            key,
            &args.shared,
            args.registry,
            args.stats,
            || UserMsg::IdleCheck,
        );
        Ok(UserState {
            shared: args.shared,
            sessions: args.sessions,
            idle,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(actor = %myself.get_id()))]
    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: UserMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UserMsg::Attach { sink, reply } => {
                state.idle.touch();
                let max = state.shared.config.max_sessions_per_user;
                let result = if state.sessions.add(sink, max) {
                    Ok(())
                } else {
                    Err(crate::api::AttachError::TooManySessions)
                };
                let _ = reply.send(result);
            }
            UserMsg::Detach { session } => {
                state.idle.touch();
                state.sessions.remove(session);
            }
            UserMsg::Fail => panic!("injected fault in user actor"),
            UserMsg::IdleCheck => {
                let quiet = state.sessions.len() == 0;
                state.idle.check(&myself.get_cell(), &state.shared, quiet);
            }
        }
        // Only a user without sessions can become idle: while one is attached, the idle
        // timer (a task per user) is not needed, and every connected user would pay for it.
        let sessions = state.sessions.len();
        if sessions == 0 {
            state
                .idle
                .resume(&myself, &state.shared, || UserMsg::IdleCheck);
        } else {
            state.idle.pause();
        }
        // `handled` counts deliveries, which fan-out records: they skip this mailbox.
        state.idle.stats().set_sessions(sessions);
        Ok(())
    }
}
