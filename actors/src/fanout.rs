//! The fan-out seam: how a conversation's committed events and its signals reach the
//! sessions of its members. [`LocalFanout`] delivers within this process, straight into
//! the sessions' lanes; a broker-backed implementation can reach other nodes behind the
//! same trait.
//!
//! Each conversation actor calls its fan-out itself, once its batch is durable, so one
//! conversation's deliveries never wait behind another's; and since it finishes batch
//! *n* before it cuts batch *n + 1*, every session sees a conversation in seq order.

use std::sync::Arc;

use crate::directory::Directory;
use crate::domain::{Event, SessionId, Signal, UserId};
use crate::user::msg::UserMsg;

/// A committed event and the session that sent it (which has it through its ack).
pub type Delivery = (Arc<Event>, Option<SessionId>);

/// Where committed events and signals go.
pub trait Fanout: Send + Sync + 'static {
    /// Hands one batch of a conversation's committed events, in seq order, to every
    /// live session of `members` except each event's own sending session. Must not
    /// block or wait: a session that cannot take an event is the session's problem.
    fn events(&self, members: &[UserId], batch: &[Delivery]);

    /// Hands a signal to every live session of `members` but `except`, on the sheddable
    /// lane.
    fn signal(&self, members: &[UserId], signal: &Arc<Signal>, except: Option<SessionId>);
}

/// Fan-out within this process, through the directory of live users.
pub(crate) struct LocalFanout {
    directory: Arc<Directory>,
}

impl LocalFanout {
    pub(crate) fn new(directory: Arc<Directory>) -> Self {
        Self { directory }
    }
}

impl Fanout for LocalFanout {
    fn events(&self, members: &[UserId], batch: &[Delivery]) {
        for user in members {
            // Offline members have no entry: they find the events in history when they
            // sync. A session that attaches after this read syncs too, and the events
            // are in the store already.
            self.directory.with_sessions(*user, |live| {
                live.stats.touch(std::time::Instant::now());
                for (event, origin) in batch {
                    if crate::fault::user_should_fail(event) {
                        // Only a user actor that would have had to deliver fails.
                        let mut targets = 0;
                        live.sessions.each(*origin, |_| targets += 1);
                        if targets > 0 {
                            let _ = live.actor.cast(UserMsg::Fail);
                        }
                        continue;
                    }
                    let mut delivered = false;
                    live.sessions.each(*origin, |session| {
                        session.push_event(event);
                        delivered = true;
                    });
                    if delivered {
                        live.stats.handled();
                    }
                }
            });
        }
    }

    fn signal(&self, members: &[UserId], signal: &Arc<Signal>, except: Option<SessionId>) {
        for user in members {
            self.directory.with_sessions(*user, |live| {
                live.sessions
                    .each(except, |session| session.push_signal(signal));
            });
        }
    }
}
