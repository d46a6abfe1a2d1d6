//! A session's two lanes from the core, and the per-user list of them that fan-out reads.
//!
//! Every session has a **durable lane** for committed events and a **sheddable lane**
//! for signals. Both are bounded and neither is ever waited on: a full durable lane
//! makes the session a slow consumer, which is kicked (it reconnects and catches up by
//! sync, so nothing durable is lost); a full sheddable lane drops the signal and counts
//! it. Nothing durable is ever shed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::{mpsc, oneshot};

use crate::api::Kick;
use crate::domain::{Event, SessionId, Signal, SignalKind, UserId};

/// A session's end of its link to the core.
pub struct SessionLink {
    /// Committed events for this session, in seq order per conversation.
    pub events: mpsc::Receiver<Arc<Event>>,
    /// Signals for this session; some may have been shed.
    pub signals: mpsc::Receiver<Arc<Signal>>,
    /// Resolves if the core drops the session; an error means the user's actor itself
    /// went away.
    pub kicked: oneshot::Receiver<Kick>,
    /// Whether the session gets presence signals.
    pub presence: PresenceSwitch,
}

/// Turns a session's presence signals on or off. Off by default: presence is about
/// other people coming and going, which a client that does not show it should not pay
/// for (every contact's every connection would reach every session).
#[derive(Clone, Default)]
pub struct PresenceSwitch(Arc<AtomicBool>);

impl PresenceSwitch {
    /// Starts (true) or stops (false) presence signals for the session.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The core's end of one session.
pub(crate) struct SessionSink {
    pub(crate) id: SessionId,
    pub(crate) user: UserId,
    /// The opaque id of the credential the session was opened with (a token id), so
    /// revoking that credential ends exactly its sessions.
    credential: String,
    events: mpsc::Sender<Arc<Event>>,
    signals: mpsc::Sender<Arc<Signal>>,
    /// Taken when the session is kicked, so it is told once.
    kick: Mutex<Option<oneshot::Sender<Kick>>>,
    presence: PresenceSwitch,
}

impl SessionSink {
    /// A session with lanes of these sizes, and the session's end of them.
    pub(crate) fn new(
        id: SessionId,
        user: UserId,
        credential: String,
        durable: usize,
        sheddable: usize,
    ) -> (Arc<Self>, SessionLink) {
        let (events_tx, events) = mpsc::channel(durable.max(1));
        let (signals_tx, signals) = mpsc::channel(sheddable.max(1));
        let (kick, kicked) = oneshot::channel();
        let presence = PresenceSwitch::default();
        let sink = Arc::new(Self {
            id,
            user,
            credential,
            events: events_tx,
            signals: signals_tx,
            kick: Mutex::new(Some(kick)),
            presence: presence.clone(),
        });
        (
            sink,
            SessionLink {
                events,
                signals,
                kicked,
                presence,
            },
        )
    }

    /// Queues a committed event; a full lane kicks the session as a slow consumer.
    pub(crate) fn push_event(&self, event: &Arc<Event>) {
        match self.events.try_send(event.clone()) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.kick(Kick::SlowConsumer),
        }
    }

    /// Queues a signal, or drops it when the lane is full (or it is presence and the
    /// session has not asked for it).
    pub(crate) fn push_signal(&self, signal: &Arc<Signal>) {
        if matches!(signal.kind, SignalKind::Presence { .. }) && !self.presence.is_on() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.signals.try_send(signal.clone()) {
            crate::metrics::signal_shed();
        }
    }

    /// Whether the session's end is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.events.is_closed()
    }

    /// Events queued and not yet taken by the session.
    pub(crate) fn queued(&self) -> usize {
        self.events.max_capacity() - self.events.capacity()
    }

    fn kick(&self, why: Kick) {
        let taken = self
            .kick
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(kick) = taken {
            match why {
                Kick::SlowConsumer => {
                    tracing::info!(user_id = %self.user, session = %self.id, "slow consumer kicked");
                    crate::metrics::slow_consumer();
                }
                Kick::Revoked => {
                    tracing::info!(user_id = %self.user, session = %self.id, "credential revoked")
                }
            }
            // The session may have just gone: then nobody is left to tell.
            let _ = kick.send(why);
        }
    }
}

/// The live sessions of one user. Only the user's actor adds and removes; fan-out reads
/// it directly, so a delivery costs no hop through the user's mailbox.
#[derive(Default)]
pub(crate) struct UserSessions(RwLock<Vec<Arc<SessionSink>>>);

impl UserSessions {
    /// Runs `f` on every session but `except`.
    pub(crate) fn each(&self, except: Option<SessionId>, mut f: impl FnMut(&SessionSink)) {
        let list = self.0.read().unwrap_or_else(PoisonError::into_inner);
        for sink in list.iter().filter(|s| Some(s.id) != except) {
            f(sink);
        }
    }

    /// Adds a session unless `max` are live already (dead ones are forgotten first).
    pub(crate) fn add(&self, sink: Arc<SessionSink>, max: usize) -> bool {
        let mut list = self.0.write().unwrap_or_else(PoisonError::into_inner);
        list.retain(|s| !s.is_closed());
        if list.len() >= max {
            return false;
        }
        list.push(sink);
        true
    }

    /// Ends the sessions opened with `credential` (every session when `None`): each is
    /// told it was revoked and forgotten, so nothing more is queued for it.
    pub(crate) fn revoke(&self, credential: Option<&str>) -> usize {
        self.revoke_where(|c| credential.is_none_or(|wanted| wanted == c))
    }

    /// Ends the sessions whose credential `matches` says so, as [`Self::revoke`] does.
    pub(crate) fn revoke_where(&self, matches: impl Fn(&str) -> bool) -> usize {
        let mut list = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let mut ended = 0;
        list.retain(|s| {
            let matches = matches(&s.credential);
            if matches {
                s.kick(Kick::Revoked);
                ended += 1;
            }
            !matches
        });
        ended
    }

    /// Forgets a session.
    pub(crate) fn remove(&self, id: SessionId) {
        let mut list = self.0.write().unwrap_or_else(PoisonError::into_inner);
        list.retain(|s| s.id != id);
    }

    /// Drops every session: each is told its user's actor went away (a reset).
    pub(crate) fn clear(&self) {
        let list = std::mem::take(&mut *self.0.write().unwrap_or_else(PoisonError::into_inner));
        for sink in list {
            // Dropping the kick sender is what tells the session; other holders of the
            // sink (inspection) must not delay it.
            drop(
                sink.kick
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
        }
    }

    /// Whether any attached session is still open.
    pub(crate) fn any_open(&self) -> bool {
        let list = self.0.read().unwrap_or_else(PoisonError::into_inner);
        list.iter().any(|s| !s.is_closed())
    }

    /// How many sessions are attached.
    pub(crate) fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}
