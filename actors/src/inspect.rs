//! Live inspection of the actor tree, for operators: what is alive, what is queued
//! where, and how long each actor has lived and idled.
//!
//! ractor does not expose the length of an actor's mailbox, so each user and
//! conversation actor publishes its own pending work in an [`ActorStats`] (a few
//! atomics, written by the actor after each message, read by the registry when asked).
//! Session outbound queues are read live from the channels themselves, through weak
//! references kept in [`SessionQueues`], so an inspection or a scrape never waits on a
//! user actor and never keeps a session alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::domain::{SessionId, UserId};
pub use crate::key::ActorKind;
use crate::session::SessionSink;

/// One live actor, as seen by an inspection.
#[derive(Debug, Clone)]
pub struct ActorInfo {
    /// Its kind.
    pub kind: ActorKind,
    /// The user or conversation id.
    pub id: String,
    /// Work waiting on it. For a conversation: sends accepted and not yet answered
    /// (queued, waiting for a retry's original, or in the commit in flight). For a user:
    /// the longest outbound queue among its sessions. Messages still in the mailbox are
    /// not counted (ractor does not expose the mailbox length).
    pub queue_depth: usize,
    /// For a user: its live sessions.
    pub sessions: Option<usize>,
    /// Messages this incarnation has handled (sends for a conversation, deliveries for a
    /// user).
    pub handled: u64,
    /// How long this incarnation has been alive.
    pub age: Duration,
    /// How long since it last had something to do.
    pub idle: Duration,
    /// Failures of this id within the restart window (each one was followed by a
    /// restart).
    pub restarts: usize,
}

/// The actor tree at one moment.
#[derive(Debug, Clone, Default)]
pub struct ActorTree {
    /// Live user actors.
    pub users: usize,
    /// Live conversation actors.
    pub conversations: usize,
    /// Actors being started (loading their record, or waiting out a restart back-off).
    pub starting: usize,
    /// Actors stopping (idle, or being replaced).
    pub stopping: usize,
    /// Ids given up on after repeated failures, still in their cool-down.
    pub given_up: usize,
    /// Messages waiting for the next group commit.
    pub persistence_queue: usize,
    /// Open sessions.
    pub sessions: usize,
    /// The longest session outbound queue.
    pub largest_session_queue: usize,
    /// The busiest actors first: by queue depth, then by messages handled.
    pub busiest: Vec<ActorInfo>,
}

/// What one actor publishes about itself. Written by the actor only, with relaxed
/// stores: readers want a recent value, not a synchronised one.
pub(crate) struct ActorStats {
    started: Instant,
    /// Milliseconds after `started` of the last activity.
    last_activity_ms: AtomicU64,
    queue: AtomicUsize,
    sessions: AtomicUsize,
    handled: AtomicU64,
}

impl ActorStats {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            queue: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            handled: AtomicU64::new(0),
        })
    }

    /// Records activity at `at`.
    pub(crate) fn touch(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.started).as_millis() as u64;
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    /// Counts one handled message.
    pub(crate) fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_queue(&self, n: usize) {
        self.queue.store(n, Ordering::Relaxed);
    }

    pub(crate) fn set_sessions(&self, n: usize) {
        self.sessions.store(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(
        &self,
        kind: ActorKind,
        id: String,
        restarts: usize,
        largest_queue: Option<usize>,
    ) -> ActorInfo {
        let age = self.started.elapsed();
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        let sessions = self.sessions.load(Ordering::Relaxed);
        let (queue_depth, sessions) = match kind {
            ActorKind::User => (largest_queue.unwrap_or(0), Some(sessions)),
            ActorKind::Conversation => (self.queue.load(Ordering::Relaxed), None),
        };
        ActorInfo {
            kind,
            id,
            queue_depth,
            sessions,
            handled: self.handled.load(Ordering::Relaxed),
            age,
            idle: age.saturating_sub(last),
            restarts,
        }
    }
}

/// The durable lane of every attached session, by weak reference: registered on
/// attach, forgotten on detach (and pruned when found closed).
#[derive(Default)]
pub(crate) struct SessionQueues {
    map: Mutex<HashMap<SessionId, Weak<SessionSink>>>,
}

impl SessionQueues {
    pub(crate) fn insert(&self, sink: &Arc<SessionSink>) {
        self.lock().insert(sink.id, Arc::downgrade(sink));
    }

    pub(crate) fn remove(&self, session: SessionId) {
        self.lock().remove(&session);
    }

    /// Open sessions and the longest queue of each user; prunes closed ones.
    pub(crate) fn sample(&self) -> (usize, HashMap<UserId, usize>) {
        let mut by_user: HashMap<UserId, usize> = HashMap::new();
        let mut map = self.lock();
        map.retain(|_, weak| {
            let Some(sink) = weak.upgrade().filter(|s| !s.is_closed()) else {
                return false;
            };
            let longest = by_user.entry(sink.user).or_default();
            *longest = (*longest).max(sink.queued());
            true
        });
        (map.len(), by_user)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Weak<SessionSink>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}
