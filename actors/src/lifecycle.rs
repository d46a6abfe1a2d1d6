//! The idle lifecycle every user and conversation actor shares: a timer that ticks a
//! few times per idle timeout, the time of the last activity, and one request to the
//! registry to retire once idle. Written once, so both kinds stop the same way.

use std::sync::Arc;
use std::time::Instant;

use ractor::{ActorCell, ActorRef, Message};
use tokio::task::JoinHandle;

use crate::context::Shared;
use crate::inspect::ActorStats;
use crate::key::Key;
use crate::registry::msg::RegistryMsg;

/// An actor's idle clock.
pub(crate) struct Idle {
    key: Key,
    registry: ActorRef<RegistryMsg>,
    stats: Arc<ActorStats>,
    last_activity: Instant,
    retiring: bool,
    timer: Option<JoinHandle<()>>,
}

impl Idle {
    /// Starts the clock; `tick` is the message the actor receives to check it.
    pub(crate) fn start<M: Message>(
        myself: &ActorRef<M>,
        key: Key,
        shared: &Shared,
        registry: ActorRef<RegistryMsg>,
        stats: Arc<ActorStats>,
        tick: fn() -> M,
    ) -> Self {
        let period = shared.config.idle_check_period();
        let timer = ractor::time::send_interval(period, myself.get_cell(), tick);
        Self {
            key,
            registry,
            stats,
            last_activity: Instant::now(),
            retiring: false,
            timer: Some(timer),
        }
    }

    /// Stops the timer while the actor cannot become idle (a user with a live
    /// session): an idle connection then holds no timer task of its user's.
    pub(crate) fn pause(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }

    /// Starts the timer again after [`Self::pause`]; the idle timeout counts from the
    /// last activity.
    pub(crate) fn resume<M: Message>(
        &mut self,
        myself: &ActorRef<M>,
        shared: &Shared,
        tick: fn() -> M,
    ) {
        if self.timer.is_none() {
            let period = shared.config.idle_check_period();
            self.timer = Some(ractor::time::send_interval(period, myself.get_cell(), tick));
        }
    }

    /// Records activity: the actor is not idle.
    pub(crate) fn touch(&mut self) {
        self.last_activity = Instant::now();
        self.stats.touch(self.last_activity);
    }

    /// The actor's published statistics.
    pub(crate) fn stats(&self) -> &ActorStats {
        &self.stats
    }

    /// On a tick: asks the registry to retire this actor once it has been idle for the
    /// timeout and `quiet` (nothing pending that stopping would drop). Asks once.
    pub(crate) fn check(&mut self, myself: &ActorCell, shared: &Shared, quiet: bool) {
        let idle = self.last_activity.elapsed() >= shared.config.idle_timeout;
        if idle && quiet && !self.retiring {
            self.retiring = true;
            let _ = self.registry.cast(RegistryMsg::Retire {
                key: self.key,
                actor: myself.get_id(),
            });
        }
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}
