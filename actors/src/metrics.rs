//! The metrics the actor tree records, through the `metrics` facade: whichever recorder
//! the process installs (the server installs a Prometheus one) receives them, and with
//! none installed they cost next to nothing.
//!
//! Label values on the hot path are string literals (hence the `match`es below), so
//! recording a message allocates nothing: the macros keep literal labels in statics.
//! Rejections are labelled with their error's code.

use metrics::{Counter, counter, gauge, histogram};

use crate::api::SendError;
use crate::key::ActorKind;

/// Counter: actors that failed (panicked or returned an error), by `kind`.
pub const ACTOR_FAILURES: &str = "parley_actor_failures_total";
/// Counter: actors restarted after a failure, by `kind`.
pub const ACTOR_RESTARTS: &str = "parley_actor_restarts_total";
/// Counter: ids given up on after too many failures, by `kind`.
pub const ACTOR_GIVEN_UP: &str = "parley_actor_given_up_total";
/// Gauge (sampled on scrape): live actors, by `kind`.
pub const ACTORS_ALIVE: &str = "parley_actors_alive";
/// Counter: sends handed to the messaging core, by `transport` (`ws`, `rest`).
pub const MESSAGES_RECEIVED: &str = "parley_messages_received_total";
/// Counter: sends answered with success (committed, or a known retry), by `transport`.
pub const MESSAGES_ACKED: &str = "parley_messages_acked_total";
/// Counter: sends answered with success that were retries of a known client id.
pub const MESSAGES_DUPLICATE: &str = "parley_messages_duplicate_total";
/// Counter: sends refused, by error `code` (the code the client sees).
pub const MESSAGES_REJECTED: &str = "parley_messages_rejected_total";
/// Histogram: seconds from a send reaching the core to its answer (includes the commit).
pub const SEND_LATENCY: &str = "parley_send_latency_seconds";
/// Histogram: messages per group commit.
pub const PERSISTENCE_BATCH: &str = "parley_persistence_batch_size";
/// Histogram: seconds per group commit (one fsync).
pub const PERSISTENCE_COMMIT: &str = "parley_persistence_commit_seconds";
/// Counter: group commits that failed.
pub const PERSISTENCE_FAILURES: &str = "parley_persistence_commit_failures_total";
/// Gauge (sampled on scrape): messages waiting for the next group commit.
pub const PERSISTENCE_QUEUE: &str = "parley_persistence_queue_messages";
/// Gauge (sampled on scrape): the longest session outbound queue, in messages.
pub const SESSION_QUEUE_MAX: &str = "parley_session_queue_max";
/// Counter: sessions closed because their durable lane overflowed.
pub const SLOW_CONSUMER_DISCONNECTS: &str = "parley_slow_consumer_disconnects_total";
/// Counter: signals (typing, presence, receipts) dropped because a session's sheddable
/// lane was full.
pub const SIGNALS_SHED: &str = "parley_signals_shed_total";

/// Creates every counter with a fixed label set at zero, so that dashboards and alerts
/// see a series before its first event (Prometheus' `increase()` misses the event that
/// creates a series).
pub fn register() {
    for kind in [ActorKind::User, ActorKind::Conversation] {
        for counter in [failures(kind), restarts(kind), given_up(kind)] {
            counter.increment(0);
        }
    }
    for ws in [true, false] {
        received(ws).increment(0);
        acked(ws).increment(0);
    }
    counter!(MESSAGES_DUPLICATE).increment(0);
    let all = [
        SendError::RecipientNotFound,
        SendError::CannotMessageSelf,
        SendError::NotParticipant,
        SendError::NotAllowed,
        SendError::Failed,
        SendError::Unavailable,
        SendError::Timeout,
        SendError::ShuttingDown,
        SendError::Store(crate::StoreError::msg("")),
    ];
    for e in &all {
        rejected(e).increment(0);
    }
    counter!(PERSISTENCE_FAILURES).increment(0);
    counter!(SLOW_CONSUMER_DISCONNECTS).increment(0);
    counter!(SIGNALS_SHED).increment(0);
}

fn failures(kind: ActorKind) -> Counter {
    match kind {
        ActorKind::User => counter!(ACTOR_FAILURES, "kind" => "user"),
        ActorKind::Conversation => counter!(ACTOR_FAILURES, "kind" => "conversation"),
    }
}

fn restarts(kind: ActorKind) -> Counter {
    match kind {
        ActorKind::User => counter!(ACTOR_RESTARTS, "kind" => "user"),
        ActorKind::Conversation => counter!(ACTOR_RESTARTS, "kind" => "conversation"),
    }
}

fn given_up(kind: ActorKind) -> Counter {
    match kind {
        ActorKind::User => counter!(ACTOR_GIVEN_UP, "kind" => "user"),
        ActorKind::Conversation => counter!(ACTOR_GIVEN_UP, "kind" => "conversation"),
    }
}

fn received(ws: bool) -> Counter {
    if ws {
        counter!(MESSAGES_RECEIVED, "transport" => "ws")
    } else {
        counter!(MESSAGES_RECEIVED, "transport" => "rest")
    }
}

fn acked(ws: bool) -> Counter {
    if ws {
        counter!(MESSAGES_ACKED, "transport" => "ws")
    } else {
        counter!(MESSAGES_ACKED, "transport" => "rest")
    }
}

pub(crate) fn actor_failed(kind: ActorKind) {
    failures(kind).increment(1);
}

pub(crate) fn actor_restarted(kind: ActorKind) {
    restarts(kind).increment(1);
}

pub(crate) fn actor_given_up(kind: ActorKind) {
    given_up(kind).increment(1);
}

pub(crate) fn send_received(ws: bool) {
    received(ws).increment(1);
}

/// Records the outcome of a send that [`send_received`] counted.
pub(crate) fn send_answered(
    ws: bool,
    result: &Result<crate::Sent, SendError>,
    elapsed: std::time::Duration,
) {
    histogram!(SEND_LATENCY).record(elapsed.as_secs_f64());
    match result {
        Ok(sent) => {
            acked(ws).increment(1);
            if sent.duplicate {
                counter!(MESSAGES_DUPLICATE).increment(1);
            }
        }
        Err(e) => rejected(e).increment(1),
    }
}

fn rejected(e: &SendError) -> Counter {
    counter!(MESSAGES_REJECTED, "code" => e.code())
}

pub(crate) fn commit(batch: usize, elapsed: std::time::Duration, ok: bool) {
    histogram!(PERSISTENCE_BATCH).record(batch as f64);
    histogram!(PERSISTENCE_COMMIT).record(elapsed.as_secs_f64());
    if !ok {
        counter!(PERSISTENCE_FAILURES).increment(1);
    }
}

pub(crate) fn slow_consumer() {
    counter!(SLOW_CONSUMER_DISCONNECTS).increment(1);
}

/// Counts a signal dropped for a session that could not take it (by the core's lane, or
/// by a transport's own buffer).
pub fn signal_shed() {
    counter!(SIGNALS_SHED).increment(1);
}

/// Sets the sampled gauges.
pub(crate) fn gauges(
    users: usize,
    conversations: usize,
    persistence_queue: usize,
    session_queue_max: usize,
) {
    gauge!(ACTORS_ALIVE, "kind" => "user").set(users as f64);
    gauge!(ACTORS_ALIVE, "kind" => "conversation").set(conversations as f64);
    gauge!(PERSISTENCE_QUEUE).set(persistence_queue as f64);
    gauge!(SESSION_QUEUE_MAX).set(session_queue_max as f64);
}
