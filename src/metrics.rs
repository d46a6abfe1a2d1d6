//! Prometheus metrics: the process-wide recorder, the server's own metrics, and the HTTP
//! layer that counts requests.
//!
//! The recorder is global (the `metrics` facade has one per process), so it is installed
//! once, on first use, and every server built in the process renders from the same
//! handle. In production there is one server per process and nothing changes; in tests,
//! where many servers share a process, counters add up across them and a sampled gauge
//! shows the server scraped last. Tests therefore compare counters before and after,
//! and run where nothing else records (see `tests/api/operations.rs`).
//!
//! Names and labels are listed in `docs/operations.md`. Label values are string
//! literals or interned route templates, so recording a message allocates nothing.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use actors::metrics as core;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::wire::close as close_code;

/// Gauge: TCP connections open (HTTP and WebSocket), while a [`ConnectionGuard`] lives.
pub const CONNECTIONS_OPEN: &str = "parley_connections_open";
/// Counter: connections refused or cut off by the connection layer, by `reason`.
pub const CONNECTIONS_REFUSED: &str = "parley_connections_refused_total";
/// Counter: WebSocket sessions opened.
pub const SESSIONS_OPENED: &str = "parley_sessions_opened_total";
/// Counter: WebSocket sessions closed, by `reason`.
pub const SESSIONS_CLOSED: &str = "parley_sessions_closed_total";
/// Gauge (sampled on scrape): WebSocket sessions open.
pub const SESSIONS_OPEN: &str = "parley_sessions_open";
/// Counter: live messages written to recipients' sessions.
pub const MESSAGES_DELIVERED: &str = "parley_messages_delivered_total";
/// Counter: messages written to sessions from history (`sync`, or a gap filled).
pub const MESSAGES_REPLAYED: &str = "parley_messages_replayed_total";
/// Histogram: seconds from a message's sequencing in its conversation (`sent_at`) to
/// its write on a recipient's session.
pub const DELIVERY_LATENCY: &str = "parley_delivery_latency_seconds";
/// Counter: requests refused by a rate limit, by `limiter`.
pub const RATE_LIMIT_HITS: &str = "parley_rate_limit_hits_total";
/// Counter: HTTP requests, by `route` (the template) and `status`.
pub const HTTP_REQUESTS: &str = "parley_http_requests_total";
/// Histogram: HTTP request latency in seconds, by `route`.
pub const HTTP_DURATION: &str = "parley_http_request_duration_seconds";

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch size buckets, in messages.
const BATCH: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
/// How often histograms are drained when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus handle, installing the recorder on first call. `None` when
/// another recorder was installed first (by an embedding program).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).as_ref()
}

fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(core::PERSISTENCE_BATCH.into()), BATCH)
        });
    let handle = match builder.map(PrometheusBuilder::install_recorder) {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed; /metrics is off");
            return None;
        }
    };
    describe();
    register();
    let upkeep = handle.clone();
    // A thread, not a task: it outlives any one runtime (tests start many).
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started");
    }
    Some(handle)
}

fn describe() {
    describe_counter!(core::ACTOR_FAILURES, "Actors that failed, by kind.");
    describe_counter!(
        core::ACTOR_RESTARTS,
        "Actors restarted after a failure, by kind."
    );
    describe_counter!(
        core::ACTOR_GIVEN_UP,
        "Ids given up on after repeated failures, by kind."
    );
    describe_gauge!(core::ACTORS_ALIVE, "Live actors, by kind.");
    describe_counter!(
        core::MESSAGES_RECEIVED,
        "Sends handed to the messaging core, by transport."
    );
    describe_counter!(
        core::MESSAGES_ACKED,
        "Sends answered with success, by transport."
    );
    describe_counter!(
        core::MESSAGES_DUPLICATE,
        "Successful sends that were retries of a known client id."
    );
    describe_counter!(core::MESSAGES_REJECTED, "Sends refused, by error code.");
    describe_histogram!(
        core::SEND_LATENCY,
        Unit::Seconds,
        "From a send reaching the core to its answer."
    );
    describe_histogram!(
        core::PERSISTENCE_BATCH,
        Unit::Count,
        "Messages per group commit."
    );
    describe_histogram!(
        core::PERSISTENCE_COMMIT,
        Unit::Seconds,
        "Duration of a group commit."
    );
    describe_counter!(core::PERSISTENCE_FAILURES, "Group commits that failed.");
    describe_gauge!(
        core::PERSISTENCE_QUEUE,
        "Messages waiting for the next group commit."
    );
    describe_gauge!(
        core::SESSION_QUEUE_MAX,
        "The longest session outbound queue, in messages."
    );
    describe_counter!(
        core::SLOW_CONSUMER_DISCONNECTS,
        "Sessions dropped because their outbound queue overflowed."
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        "TCP connections open (HTTP and WebSocket)."
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused or cut off before a request was served, by reason."
    );
    describe_counter!(SESSIONS_OPENED, "WebSocket sessions opened.");
    describe_counter!(SESSIONS_CLOSED, "WebSocket sessions closed, by reason.");
    describe_gauge!(SESSIONS_OPEN, "WebSocket sessions open.");
    describe_counter!(
        MESSAGES_DELIVERED,
        "Live messages written to recipients' sessions."
    );
    describe_counter!(
        MESSAGES_REPLAYED,
        "Messages written to sessions from history."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From sequencing to the write on a recipient's session."
    );
    describe_counter!(
        RATE_LIMIT_HITS,
        "Requests refused by a rate limit, by limiter."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests, by route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency, by route template."
    );
}

/// Creates the counters with fixed labels at zero (see [`core::register`]).
fn register() {
    core::register();
    counter!(SESSIONS_OPENED).increment(0);
    for (code, reason) in [
        (None, "client_gone"),
        (None, "transport_error"),
        (Some(close_code::NORMAL), ""),
        (Some(close_code::GOING_AWAY), ""),
        (Some(close_code::SLOW_CONSUMER), ""),
        (Some(close_code::HEARTBEAT_TIMEOUT), ""),
        (Some(close_code::RESTART), ""),
    ] {
        closed_counter(code, reason).increment(0);
    }
    for reason in [
        "too_many_connections",
        "idle_timeout",
        "header_timeout",
        "bad_request",
        "uri_too_long",
        "headers_too_large",
    ] {
        counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(0);
    }
    counter!(MESSAGES_DELIVERED).increment(0);
    counter!(MESSAGES_REPLAYED).increment(0);
    counter!(RATE_LIMIT_HITS, "limiter" => "sends").increment(0);
    counter!(RATE_LIMIT_HITS, "limiter" => "auth_by_address").increment(0);
    counter!(RATE_LIMIT_HITS, "limiter" => "login_backoff").increment(0);
    counter!(RATE_LIMIT_HITS, "limiter" => "session_opens").increment(0);
    counter!(RATE_LIMIT_HITS, "limiter" => "syncs").increment(0);
}

/// Prometheus text for one server: samples its gauges, then renders the process's
/// metrics. `None` when the recorder is not ours.
pub fn render(messenger: &actors::Messenger, sessions: usize) -> Option<String> {
    let handle = handle()?;
    messenger.record_gauges();
    metrics::gauge!(SESSIONS_OPEN).set(sessions as f64);
    Some(handle.render())
}

/// One open TCP connection, counted in `parley_connections_open` until dropped. Each
/// connection's socket holds one, so an upgraded WebSocket is counted until it closes.
#[must_use = "the connection is counted only while the guard lives"]
pub struct ConnectionGuard(());

/// Counts a connection just accepted.
pub fn connection_opened() -> ConnectionGuard {
    metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
    ConnectionGuard(())
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// Counts a session that started.
pub(crate) fn session_opened() {
    counter!(SESSIONS_OPENED).increment(1);
}

/// Counts a session that ended, by why (its close code, or the reason it ended without
/// one).
pub(crate) fn session_closed(code: Option<u16>, reason: &'static str) {
    closed_counter(code, reason).increment(1);
}

fn closed_counter(code: Option<u16>, reason: &str) -> metrics::Counter {
    use close_code as close;
    match code {
        None if reason == "client_gone" => counter!(SESSIONS_CLOSED, "reason" => "client_gone"),
        None => counter!(SESSIONS_CLOSED, "reason" => "transport_error"),
        Some(close::NORMAL) => counter!(SESSIONS_CLOSED, "reason" => "client_close"),
        Some(close::GOING_AWAY) => counter!(SESSIONS_CLOSED, "reason" => "shutdown"),
        Some(close::SLOW_CONSUMER) => counter!(SESSIONS_CLOSED, "reason" => "slow_consumer"),
        Some(close::HEARTBEAT_TIMEOUT) => {
            counter!(SESSIONS_CLOSED, "reason" => "heartbeat_timeout")
        }
        Some(close::RESTART) => counter!(SESSIONS_CLOSED, "reason" => "session_reset"),
        Some(close::TOKEN_EXPIRED) => counter!(SESSIONS_CLOSED, "reason" => "token_expired"),
        Some(close::TOKEN_REVOKED) => counter!(SESSIONS_CLOSED, "reason" => "token_revoked"),
        Some(close::TOO_BIG) => counter!(SESSIONS_CLOSED, "reason" => "frame_too_large"),
        Some(close::UNSUPPORTED_DATA) => {
            counter!(SESSIONS_CLOSED, "reason" => "unsupported_data")
        }
        Some(close::INVALID_PAYLOAD) => counter!(SESSIONS_CLOSED, "reason" => "invalid_payload"),
        Some(close::INTERNAL) => counter!(SESSIONS_CLOSED, "reason" => "internal_error"),
        Some(close::PROTOCOL_ERROR) => counter!(SESSIONS_CLOSED, "reason" => "protocol_error"),
        Some(_) => counter!(SESSIONS_CLOSED, "reason" => "other"),
    }
}

/// Counts a live message written to a session and how long it took to get there.
pub(crate) fn delivered(sent_at: actors::domain::Timestamp) {
    counter!(MESSAGES_DELIVERED).increment(1);
    // Wall clock: `sent_at` is all a message carries (milliseconds; a clock step
    // backwards reads as zero).
    let latency = std::time::SystemTime::now()
        .duration_since(sent_at.as_system_time())
        .unwrap_or_default();
    histogram!(DELIVERY_LATENCY).record(latency.as_secs_f64());
}

/// Counts a message written from history.
pub(crate) fn replayed() {
    counter!(MESSAGES_REPLAYED).increment(1);
}

/// Counts a request refused by the rate limiter `name`.
/// Counts a connection refused or cut off by the connection layer.
pub(crate) fn connection_refused(reason: &'static str) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// Counts a request refused by a rate limit.
pub(crate) fn rate_limited(name: &'static str) {
    counter!(RATE_LIMIT_HITS, "limiter" => name).increment(1);
}

/// Counts each request by route template and status, and times it.
pub(crate) async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| intern(p.as_str()));
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status();
    let code = status_label(status);
    counter!(HTTP_REQUESTS, "route" => route, "status" => code).increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// Route templates as `'static` label values. The set is the router's routes, so it is
/// small and fixed: each template is leaked once.
fn intern(route: &str) -> &'static str {
    static ROUTES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut routes = ROUTES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(known) = routes.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(leaked);
    leaked
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        101 => "101",
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 200 => "1xx",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
