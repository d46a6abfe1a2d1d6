//! The user actor: owns every live session (device, tab) of one user and fans each
//! delivery out to them.
//!
//! Each session has a bounded outbound queue. The actor never waits on a session: when a
//! queue is full, that session is a slow consumer and is kicked (its transport closes
//! it, and the client catches up by syncing); the other sessions carry on.

use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::{Message, SessionId, User};
use crate::inspect::ActorStats;
use crate::messenger::{AttachError, Kick};
use crate::registry::{Key, RegistryMsg, Shared};

/// The user actor.
pub(crate) struct UserActor;

/// Its arguments: the account, already loaded by the registry.
pub(crate) struct UserArgs {
    pub(crate) user: User,
    pub(crate) shared: Arc<Shared>,
    pub(crate) registry: ActorRef<RegistryMsg>,
    /// Where it publishes its activity for inspection.
    pub(crate) stats: Arc<ActorStats>,
}

/// The actor's end of one session.
pub(crate) struct SessionSink {
    pub(crate) id: SessionId,
    pub(crate) tx: mpsc::Sender<Arc<Message>>,
    pub(crate) kick: oneshot::Sender<Kick>,
}

/// Its messages.
pub(crate) enum UserMsg {
    /// A new session of this user.
    Attach {
        sink: SessionSink,
        reply: RpcReplyPort<Result<(), AttachError>>,
    },
    /// A session ended.
    Detach { session: SessionId },
    /// A committed message for this user; `except` is the session that sent it.
    Deliver {
        message: Arc<Message>,
        except: Option<SessionId>,
    },
    /// Internal: timer tick to stop when idle.
    IdleCheck,
}

/// Its state.
pub(crate) struct UserState {
    user: User,
    shared: Arc<Shared>,
    registry: ActorRef<RegistryMsg>,
    sessions: Vec<SessionSink>,
    stats: Arc<ActorStats>,
    last_activity: Instant,
    retiring: bool,
    idle_timer: Option<JoinHandle<()>>,
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
        let period = crate::conversation::idle_check_period(args.shared.config.idle_timeout);
        let idle_timer =
            ractor::time::send_interval(period, myself.get_cell(), || UserMsg::IdleCheck);
        Ok(UserState {
            user: args.user,
            shared: args.shared,
            registry: args.registry,
            sessions: Vec::new(),
            stats: args.stats,
            last_activity: Instant::now(),
            retiring: false,
            idle_timer: Some(idle_timer),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: UserMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UserMsg::Attach { sink, reply } => {
                state.last_activity = Instant::now();
                // A session whose upgrade never completed left a dead sink behind.
                state.sessions.retain(|s| !s.tx.is_closed());
                let result = if state.sessions.len() >= state.shared.config.max_sessions_per_user {
                    Err(AttachError::TooManySessions)
                } else {
                    state.sessions.push(sink);
                    Ok(())
                };
                state.stats.touch(state.last_activity);
                // Published before the answer: from then on, deliveries must count this
                // session (see `Directory::live_user_sessions`).
                state.stats.set_sessions(state.sessions.len());
                let _ = reply.send(result);
            }
            UserMsg::Detach { session } => {
                state.last_activity = Instant::now();
                state.stats.touch(state.last_activity);
                state.sessions.retain(|s| s.id != session);
            }
            UserMsg::Deliver { message, except } => {
                state.stats.touch(Instant::now());
                state.stats.handled();
                crate::fault::check_user(&message.body);
                deliver(state, &message, except);
            }
            UserMsg::IdleCheck => {
                let idle = state.last_activity.elapsed() >= state.shared.config.idle_timeout;
                if idle && state.sessions.is_empty() && !state.retiring {
                    state.retiring = true;
                    let key = Key::User(state.user.id);
                    let _ = state.registry.cast(RegistryMsg::Retire {
                        key,
                        actor: myself.get_id(),
                    });
                }
            }
        }
        state.stats.set_sessions(state.sessions.len());
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        Ok(())
    }
}

fn deliver(state: &mut UserState, message: &Arc<Message>, except: Option<SessionId>) {
    state.sessions.retain_mut(|s| {
        if Some(s.id) == except {
            return true;
        }
        match s.tx.try_send(message.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(user_id = %state.user.id, session = %s.id, "slow consumer kicked");
                crate::metrics::slow_consumer();
                // The session may have just gone: then nobody is left to tell.
                let (dead_tx, _) = oneshot::channel();
                let _ = std::mem::replace(&mut s.kick, dead_tx).send(Kick::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    });
}
