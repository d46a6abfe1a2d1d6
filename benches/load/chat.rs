//! The chat engine shared by `chat`, `ramp`, `login-storm`, `slow-consumer` and
//! `flood`: users in 1:1 pairs, each sending to its partner on an open-loop schedule;
//! and side groups on the same clock with a recorder of their own (the senders to a
//! slow consumer, the flooders), which stop at their stop time even when behind.
//!
//! Open loop: every message has a scheduled send time fixed in advance by the target
//! rate (user `u` of `n` sends every `n / rate` seconds, phases spread evenly). A
//! writer that falls behind sends what is due at once, and latency is measured from
//! the scheduled time, so a stalled server (or a stalled generator) shows up in the
//! latencies instead of silently lowering the rate (no coordinated omission). Writers
//! never wait for acks.
//!
//! Everything is recorded per second of scheduled time (histograms of ack and
//! end-to-end latency, sent/acked/delivered counts) and per second of receive time
//! (deliveries, errors), so any window of whole seconds can be summarised afterwards;
//! the process stats of the server and of the generator are sampled every second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Incoming, Ws};
use crate::procstat::{self, Sample};
use crate::target::{System, Target, User};

const NS: u64 = 1_000_000_000;
/// Latencies are recorded in microseconds, up to a minute.
const MAX_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

#[derive(Default)]
struct Second {
    ack: Option<Histogram<u64>>,
    lag: Option<Histogram<u64>>,
    e2e: Option<Histogram<u64>>,
    sent: u64,
    acked: u64,
    delivered: u64,
    /// Deliveries received during this second (whatever their schedule).
    received: u64,
    /// Error frames received during this second (each answers a send).
    refused: u64,
    errors: BTreeMap<String, u64>,
}

/// The process stats at one second of the run: (second, server, generator, machine,
/// the store's own process).
type Tick = (
    u64,
    Option<Sample>,
    Option<Sample>,
    Option<procstat::Machine>,
    Option<Sample>,
);

/// Where every reader and writer records.
pub(crate) struct Recorder {
    t0: Instant,
    seconds: Mutex<Vec<Second>>,
    samples: Mutex<Vec<Tick>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Recorder {
    fn new(t0: Instant) -> Self {
        Self {
            t0,
            seconds: Mutex::new(Vec::new()),
            samples: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the run's start (negative times clamp to 0).
    pub(crate) fn now_ns(&self) -> u64 {
        Instant::now().saturating_duration_since(self.t0).as_nanos() as u64
    }

    fn with_second<R>(&self, ns: u64, f: impl FnOnce(&mut Second) -> R) -> R {
        let i = (ns / NS) as usize;
        let mut seconds = lock(&self.seconds);
        if seconds.len() <= i {
            seconds.resize_with(i + 1, Second::default);
        }
        f(&mut seconds[i])
    }

    /// A message scheduled at `sched` was written at `now`.
    fn sent(&self, sched: u64, now: u64) {
        let us = (now.saturating_sub(sched) / 1000).clamp(1, MAX_US);
        self.with_second(sched, |s| {
            s.sent += 1;
            s.lag.get_or_insert_with(histogram).saturating_record(us);
        });
    }

    fn ack(&self, sched: u64, now: u64) {
        let us = (now.saturating_sub(sched) / 1000).clamp(1, MAX_US);
        self.with_second(sched, |s| {
            s.acked += 1;
            s.ack.get_or_insert_with(histogram).saturating_record(us);
        });
    }

    fn delivered(&self, sched: u64, now: u64) {
        let us = (now.saturating_sub(sched) / 1000).clamp(1, MAX_US);
        self.with_second(sched, |s| {
            s.delivered += 1;
            s.e2e.get_or_insert_with(histogram).saturating_record(us);
        });
        self.with_second(now, |s| s.received += 1);
    }

    pub(crate) fn error(&self, code: &str) {
        let now = self.now_ns();
        self.with_second(now, |s| *s.errors.entry(code.to_owned()).or_default() += 1);
    }

    /// An error frame from the server, the answer to a send.
    fn refused(&self, code: &str) {
        let now = self.now_ns();
        self.with_second(now, |s| {
            s.refused += 1;
            *s.errors.entry(code.to_owned()).or_default() += 1;
        });
    }

    /// Totals over all seconds: (sent, acked, delivered, refused).
    fn totals(&self) -> (u64, u64, u64, u64) {
        let seconds = lock(&self.seconds);
        seconds.iter().fold((0, 0, 0, 0), |(s, a, d, r), x| {
            (s + x.sent, a + x.acked, d + x.delivered, r + x.refused)
        })
    }

    /// Summarises scheduled seconds `from..to` (and the process stats over them).
    pub(crate) fn window(&self, from: u64, to: u64) -> Window {
        let seconds = lock(&self.seconds);
        let mut ack = histogram();
        let mut e2e = histogram();
        let mut lag = histogram();
        let mut w = Window {
            from_s: from,
            to_s: to,
            ..Window::default()
        };
        for s in seconds
            .iter()
            .skip(from as usize)
            .take(to.saturating_sub(from) as usize)
        {
            w.sent += s.sent;
            w.acked += s.acked;
            w.delivered += s.delivered;
            w.received += s.received;
            if let Some(h) = &s.ack {
                let _ = ack.add(h);
            }
            if let Some(h) = &s.e2e {
                let _ = e2e.add(h);
            }
            if let Some(h) = &s.lag {
                let _ = lag.add(h);
            }
            for (k, v) in &s.errors {
                *w.errors.entry(k.clone()).or_default() += v;
            }
        }
        drop(seconds);
        let secs = to.saturating_sub(from).max(1) as f64;
        w.offered_per_s = w.sent as f64 / secs;
        w.delivered_per_s = w.received as f64 / secs;
        w.ack = Latency::of(&ack);
        w.e2e = Latency::of(&e2e);
        w.send_lag = Latency::of(&lag);
        w.lost = w.sent.saturating_sub(w.delivered.min(w.acked));
        let samples = lock(&self.samples);
        let at = |s: u64| samples.iter().find(|x| x.0 == s);
        w.server_rss_max_mib = samples
            .iter()
            .filter(|x| (from..=to).contains(&x.0))
            .filter_map(|x| x.1.map(|s| s.rss_kib as f64 / 1024.0))
            .reduce(f64::max);
        if let (Some(a), Some(b)) = (at(from), at(to)) {
            if let (Some(x), Some(y)) = (&a.1, &b.1) {
                w.server_cpu_percent = Some(procstat::cpu_percent(x, y));
                w.server_rss_mib = Some(y.rss_kib as f64 / 1024.0);
            }
            if let (Some(x), Some(y)) = (&a.2, &b.2) {
                w.generator_cpu_percent = Some(procstat::cpu_percent(x, y));
            }
            if let (Some(x), Some(y)) = (&a.4, &b.4) {
                w.store_cpu_percent = Some(procstat::cpu_percent(x, y));
            }
            if let (Some(x), Some(y)) = (&a.3, &b.3) {
                let total = procstat::machine_cpu_percent(x, y);
                let ours = w.server_cpu_percent.unwrap_or(0.0)
                    + w.generator_cpu_percent.unwrap_or(0.0)
                    + w.store_cpu_percent.unwrap_or(0.0);
                w.other_cpu_percent = Some((total - ours).max(0.0));
            }
            if w.received > 0 {
                let per =
                    |pct: Option<f64>| pct.map(|p| p / 100.0 * secs * 1e6 / w.received as f64);
                w.server_cpu_us_per_message = per(w.server_cpu_percent);
                w.store_cpu_us_per_message = per(w.store_cpu_percent);
                w.generator_cpu_us_per_message = per(w.generator_cpu_percent);
            }
        }
        w
    }
}

impl Recorder {
    /// Every second from `from` to `to`, for the JSON results: what was scheduled then,
    /// and the process stats.
    pub(crate) fn timeline(&self, from: u64, to: u64) -> Vec<Window> {
        (from..to).map(|s| self.window(s, s + 1)).collect()
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// What happened in a window of scheduled seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Window {
    pub(crate) from_s: u64,
    pub(crate) to_s: u64,
    /// Messages scheduled in the window.
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    pub(crate) delivered: u64,
    /// Deliveries received during the window (whatever their schedule).
    pub(crate) received: u64,
    /// Scheduled messages per second.
    pub(crate) offered_per_s: f64,
    /// Deliveries received per second.
    pub(crate) delivered_per_s: f64,
    /// Scheduled in the window but never both acked and delivered.
    pub(crate) lost: u64,
    pub(crate) ack: Latency,
    pub(crate) e2e: Latency,
    /// How late the generator wrote messages, against their schedule: the part of the
    /// latencies that is the generator's (timer resolution, CPU shared with the server).
    pub(crate) send_lag: Latency,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) server_cpu_percent: Option<f64>,
    /// The server's RSS at the window's end.
    pub(crate) server_rss_mib: Option<f64>,
    /// The largest of the server's RSS sampled each second from the window's start to
    /// its end.
    pub(crate) server_rss_max_mib: Option<f64>,
    pub(crate) generator_cpu_percent: Option<f64>,
    /// CPU of the store's own process (the CQL node of `parley-scylla`, when its pid
    /// is known), in percent of one core.
    pub(crate) store_cpu_percent: Option<f64>,
    /// The store's CPU time per delivered message, in microseconds.
    pub(crate) store_cpu_us_per_message: Option<f64>,
    /// CPU used by every other process on the machine (builds, other sessions), in
    /// percent of one core: when it is high, the window's latencies are not the
    /// server's alone.
    pub(crate) other_cpu_percent: Option<f64>,
    /// Server CPU time per delivered message, in microseconds: the cost of a message,
    /// much less sensitive than latency to what else runs on the machine.
    pub(crate) server_cpu_us_per_message: Option<f64>,
    /// The generator's CPU time per delivered message, in microseconds.
    pub(crate) generator_cpu_us_per_message: Option<f64>,
}

impl Window {
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.lost
    }
}

/// The schedule: the total rate from each start second on.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// (start second, messages per second over all users), ascending.
    pub(crate) steps: Vec<(u64, f64)>,
    /// Body length in bytes.
    pub(crate) body_bytes: usize,
}

impl Plan {
    fn rate_at(&self, ns: u64) -> f64 {
        let s = ns / NS;
        self.steps
            .iter()
            .rev()
            .find(|(start, _)| *start <= s)
            .map_or(0.0, |(_, r)| *r)
    }
}

/// A chat run in progress.
pub(crate) struct Run {
    pub(crate) rec: Arc<Recorder>,
    stop_ns: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
    pub(crate) connect_errors: BTreeMap<String, u64>,
    pub(crate) connected: usize,
    /// Pairs: done when every message sent is acked and delivered. A side group: done
    /// when every message sent is answered (acked or refused).
    side: bool,
}

impl Run {
    /// Connects `users` (pairs: 0 with 1, 2 with 3, ...) and starts sending per `plan`
    /// about a second later. Sending stops at `stop_s` unless changed.
    pub(crate) async fn start(target: &Target, users: &[User], plan: Plan, stop_s: u64) -> Self {
        let conns: Vec<(User, Option<String>)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), Some(users[i ^ 1].id.clone())))
            .collect();
        Self::launch(target, &conns, plan, stop_s, None).await
    }

    /// A side group on the clock of a run started at `t0` (see [`Run::t0`]), with a
    /// recorder of its own: connects every `(user, to)` and, for those with a `to`,
    /// sends to it per `plan` (the rate spread over the senders). Readers only record.
    /// Unlike a pair, a sender stops at `stop_s` even with messages still due: a
    /// disturbance that the server slows down does not spill into later windows.
    pub(crate) async fn start_side(
        target: &Target,
        conns: &[(User, Option<String>)],
        plan: Plan,
        stop_s: u64,
        t0: Instant,
    ) -> Self {
        Self::launch(target, conns, plan, stop_s, Some(t0)).await
    }

    async fn launch(
        target: &Target,
        users: &[(User, Option<String>)],
        plan: Plan,
        stop_s: u64,
        side_t0: Option<Instant>,
    ) -> Self {
        let system = target.system;
        let mut connect_errors = BTreeMap::new();
        let mut conns: Vec<Option<Ws>> = Vec::with_capacity(users.len());
        // On a cluster each user has its node (`Target::addr_of`); else one address.
        let results = futures_util::stream::iter(
            users
                .iter()
                .enumerate()
                .map(|(i, u)| (target.addr_of(i), u.0.clone())),
        )
        .map(|(addr, u)| async move { client::connect(system, addr, &u, None).await })
        .buffered(64)
        .collect::<Vec<_>>()
        .await;
        for r in results {
            match r {
                Ok(ws) => conns.push(Some(ws)),
                Err(e) => {
                    *connect_errors
                        .entry(e.split(':').next().unwrap_or("connect").to_owned())
                        .or_default() += 1;
                    conns.push(None);
                }
            }
        }
        let connected = conns.iter().filter(|c| c.is_some()).count();
        let t0 = side_t0.unwrap_or_else(|| Instant::now() + Duration::from_millis(1000));
        let rec = Arc::new(Recorder::new(t0));
        let stop_ns = Arc::new(AtomicU64::new(stop_s * NS));
        let plan = Arc::new(plan);
        // The rate is spread over the senders, numbered in order for their phases.
        let senders = users.iter().filter(|u| u.1.is_some()).count();
        let mut sender = 0;
        let mut tasks = Vec::new();
        for (conn, (_, to)) in conns.into_iter().zip(users) {
            let Some(to) = to.clone() else {
                if let Some(ws) = conn {
                    let (_sink, stream) = ws.split();
                    let (ctrl_tx, _ctrl_rx) = mpsc::unbounded_channel();
                    tasks.push(tokio::spawn(read_loop(
                        system,
                        stream,
                        rec.clone(),
                        ctrl_tx,
                    )));
                }
                continue;
            };
            let me = sender;
            sender += 1;
            let Some(ws) = conn else { continue };
            let (sink, stream) = ws.split();
            let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
            tasks.push(tokio::spawn(read_loop(
                system,
                stream,
                rec.clone(),
                ctrl_tx,
            )));
            let writer = Writer {
                system,
                me,
                users: senders,
                to,
                plan: plan.clone(),
                rec: rec.clone(),
                stop_ns: stop_ns.clone(),
                hard_stop: side_t0.is_some(),
            };
            tasks.push(tokio::spawn(writer.run(sink, ctrl_rx)));
        }
        if side_t0.is_none() {
            tasks.push(tokio::spawn(sample_loop(
                rec.clone(),
                target.server_pids(),
                target.store_pid,
            )));
        }
        Self {
            rec,
            stop_ns,
            tasks,
            connect_errors,
            connected,
            side: side_t0.is_some(),
        }
    }

    /// When the run's second 0 is (for side groups on its clock).
    pub(crate) fn t0(&self) -> Instant {
        self.rec.t0
    }

    /// Seconds since the run's start.
    pub(crate) fn elapsed_s(&self) -> f64 {
        self.rec.now_ns() as f64 / NS as f64
    }

    /// Sleeps until `s` seconds after the start.
    pub(crate) async fn sleep_until_s(&self, s: f64) {
        let at = self.rec.t0 + Duration::from_secs_f64(s);
        tokio::time::sleep_until(at.into()).await;
    }

    /// Stops sending at second `s` (or now, if that has passed).
    pub(crate) fn stop_at(&self, s: u64) {
        self.stop_ns.store(s * NS, Ordering::Relaxed);
    }

    /// Waits until sending has stopped and every message sent is acked and delivered,
    /// or `drain` has passed since sending stopped; then closes every connection.
    pub(crate) async fn finish(self, drain: Duration) -> Arc<Recorder> {
        let stop = self.stop_ns.load(Ordering::Relaxed);
        // A little past the stop, so that the process stats are sampled at it.
        self.sleep_until_s(stop as f64 / NS as f64 + 0.2).await;
        let deadline = Instant::now() + drain;
        loop {
            let (sent, acked, delivered, refused) = self.rec.totals();
            let done = if self.side {
                acked + refused >= sent
            } else {
                acked >= sent && delivered >= sent
            };
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for t in &self.tasks {
            t.abort();
        }
        self.rec
    }
}

/// Samples every second: the server (all of a cluster's nodes, summed), this process,
/// the machine and the store's process.
async fn sample_loop(rec: Arc<Recorder>, servers: Vec<u32>, store_pid: Option<u32>) {
    let mut s = 0u64;
    loop {
        let at = rec.t0 + Duration::from_secs(s);
        tokio::time::sleep_until(at.into()).await;
        let server = (!servers.is_empty())
            .then(|| procstat::sample_sum(&servers))
            .flatten();
        let me = procstat::sample(None);
        let machine = procstat::machine();
        let store = store_pid.and_then(|p| procstat::sample(Some(p)));
        lock(&rec.samples).push((s, server, me, machine, store));
        s += 1;
    }
}

async fn read_loop(
    system: System,
    mut stream: SplitStream<Ws>,
    rec: Arc<Recorder>,
    ctrl: mpsc::UnboundedSender<()>,
) {
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(Message::Text(t)) => {
                let now = rec.now_ns();
                match client::classify(system, t.as_str()) {
                    Incoming::Ack(Some(ts)) => rec.ack(ts, now),
                    Incoming::Delivery(Some(ts)) => rec.delivered(ts, now),
                    Incoming::Ack(None) | Incoming::Delivery(None) => rec.error("unparsable_body"),
                    Incoming::Error(code) => rec.refused(code),
                    Incoming::Ping => {
                        let _ = ctrl.send(());
                    }
                    Incoming::Synced { .. } | Incoming::Other => {}
                }
            }
            Ok(Message::Close(_)) => {
                rec.error("closed_by_server");
                return;
            }
            Ok(_) => {}
            Err(_) => {
                rec.error("read_error");
                return;
            }
        }
    }
    rec.error("connection_ended");
}

struct Writer {
    system: System,
    me: usize,
    users: usize,
    to: String,
    plan: Arc<Plan>,
    rec: Arc<Recorder>,
    stop_ns: Arc<AtomicU64>,
    /// Stop at the stop time even with messages still due.
    hard_stop: bool,
}

impl Writer {
    fn interval_ns(&self, at: u64) -> u64 {
        let rate = self.plan.rate_at(at);
        if rate <= 0.0 {
            return NS;
        }
        (self.users as f64 / rate * NS as f64) as u64
    }

    async fn run(self, mut sink: SplitSink<Ws, Message>, mut ctrl: mpsc::UnboundedReceiver<()>) {
        let first = self.plan.steps.first().map_or(0, |s| s.0 * NS);
        let mut next = first + self.interval_ns(first) * self.me as u64 / self.users as u64;
        let mut count = 0u64;
        loop {
            let stop = self.stop_ns.load(Ordering::Relaxed);
            if next >= stop {
                break;
            }
            if self.plan.rate_at(next) <= 0.0 {
                next += self.interval_ns(next);
                continue;
            }
            let at = self.rec.t0 + Duration::from_nanos(next);
            tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {}
                Some(()) = ctrl.recv() => {
                    if sink.send(Message::text("3")).await.is_err() {
                        return self.rec.error("write_error");
                    }
                    continue;
                }
            }
            let now = self.rec.now_ns();
            if self.hard_stop && now >= stop {
                break;
            }
            let mut n = 0;
            while next <= now && next < stop {
                count += 1;
                let body = client::body(next, self.plan.body_bytes);
                let client_id = format!("{}-{count}", self.me);
                let frame = client::send_frame(self.system, &self.to, &body, &client_id, count);
                if sink.feed(Message::text(frame)).await.is_err() {
                    return self.rec.error("write_error");
                }
                self.rec.sent(next, now);
                n += 1;
                next += self.interval_ns(next);
            }
            if n > 0 && sink.flush().await.is_err() {
                return self.rec.error("write_error");
            }
        }
        // Keep answering Engine.IO pings until the run ends.
        while ctrl.recv().await.is_some() {
            if sink.send(Message::text("3")).await.is_err() {
                return;
            }
        }
    }
}
