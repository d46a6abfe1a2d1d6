//! The isolation scenarios (issue #6): does everyone else's chat latency move while one
//! client misbehaves?
//!
//! - `slow-consumer`: clients that stop reading while others send to them as fast as
//!   they can. Parley should close each with 4008 once its queue overflows, and the
//!   pairs' latency and the server's memory should not move beyond the extra load.
//! - `flood`: clients sending far above the send rate limit (Parley's default one in
//!   force). They should get `rate_limited` errors, and the pairs should not notice.
//!
//! Both run the chat engine's pairs (see `chat`) through a warm-up, a window before the
//! disturbance, the disturbance and a window after, and summarise the pairs per window,
//! like `login-storm`. The disturbance runs as a side group on the same clock with a
//! recorder of its own, so its messages never count in the pairs' figures. Parley
//! only: the peers have neither a slow-consumer policy nor rate limits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::chat::{Plan, Run, Window};
use crate::client::{self, Ws};
use crate::report::{self, Table, f0, f1, f2, lat, opt1};
use crate::scenarios::{fail, port, settle};
use crate::target::{self, StartOptions, System, Target, User};
use crate::{Common, FloodArgs, Phases, SlowArgs};

/// Refuses `--systems` other than parley (exits).
fn parley_only(scenario: &str, common: &Common, why: &str) {
    let others: Vec<String> = common
        .systems
        .iter()
        .filter(|s| !s.is_parley())
        .map(ToString::to_string)
        .collect();
    if !others.is_empty() {
        eprintln!(
            "{scenario} applies to parley only ({why}): refusing --systems {}",
            others.join(",")
        );
        std::process::exit(2);
    }
}

/// The settings the server started by the harness runs with (parsed by Parley's own
/// parser); `None` for a server started elsewhere (`--addr`).
fn effective(opts: &StartOptions) -> Option<parley::config::Config> {
    if opts.addr.is_some() {
        return None;
    }
    parley::config::Config::from_args(target::parley_flags(opts)).ok()
}

/// Users in pairs: an even count.
fn even(users: usize) -> usize {
    users - users % 2
}

/// The windows of the pairs: before, during and after the disturbance.
struct Windows {
    before: Window,
    during: Window,
    after: Window,
    /// Each second from the warm-up's end to the after window's end.
    timeline: Vec<Window>,
    /// Where the disturbance starts in `timeline`.
    disturbance_at: usize,
    /// The server's RSS at the warm-up's end.
    rss_at_start: Option<f64>,
}

impl Windows {
    fn of(rec: &crate::chat::Recorder, p: &Phases) -> Self {
        let d = p.warmup + p.before;
        Self {
            before: rec.window(p.warmup, d),
            during: rec.window(d, d + p.during),
            after: rec.window(d + p.during, d + p.during + p.after),
            timeline: rec.timeline(p.warmup, d + p.during + p.after),
            disturbance_at: p.before as usize,
            rss_at_start: rec
                .window(p.warmup.saturating_sub(1), p.warmup)
                .server_rss_mib,
        }
    }

    fn table(&self, during: &str) -> Table {
        let mut head = report::WINDOW_HEAD.to_vec();
        head[0] = "window";
        head.push("server RSS max MiB");
        let mut t = Table::new(&head);
        for (label, w) in [
            ("before", &self.before),
            (during, &self.during),
            ("after", &self.after),
        ] {
            let mut row = report::window_row(label, w);
            row.push(opt1(w.server_rss_max_mib));
            t.row(row);
        }
        t
    }

    /// During over before, of the pairs' p99s and the server's largest RSS.
    fn ratios(&self) -> Value {
        let ratio = |a: f64, b: f64| if b > 0.0 { Some(a / b) } else { None };
        json!({
            "e2e_p99_during_over_before": ratio(self.during.e2e.p99_ms, self.before.e2e.p99_ms),
            "ack_p99_during_over_before": ratio(self.during.ack.p99_ms, self.before.ack.p99_ms),
            "e2e_p99_after_over_before": ratio(self.after.e2e.p99_ms, self.before.e2e.p99_ms),
            "server_rss_growth_mib_per_s": {
                "before": self.rss_growth().0,
                "during": self.rss_growth().1,
                "after": self.rss_growth().2,
            },
            "server_rss_max_during_minus_before_mib": match (self.during.server_rss_max_mib, self.before.server_rss_max_mib) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            },
        })
    }

    fn print_summary(&self) {
        let x = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "-".into()
            }
        };
        println!(
            "pairs' p99 during/before: e2e {} ({} -> {} ms), ack {} ({} -> {} ms); after/before: e2e {}",
            x(self.during.e2e.p99_ms, self.before.e2e.p99_ms),
            f2(self.before.e2e.p99_ms),
            f2(self.during.e2e.p99_ms),
            x(self.during.ack.p99_ms, self.before.ack.p99_ms),
            f2(self.before.ack.p99_ms),
            f2(self.during.ack.p99_ms),
            x(self.after.e2e.p99_ms, self.before.e2e.p99_ms),
        );
        println!(
            "server RSS max per window: before {} MiB, during {} MiB, after {} MiB; growth {} / {} / {} MiB/s",
            opt1(self.before.server_rss_max_mib),
            opt1(self.during.server_rss_max_mib),
            opt1(self.after.server_rss_max_mib),
            opt1(self.rss_growth().0),
            opt1(self.rss_growth().1),
            opt1(self.rss_growth().2),
        );
    }

    /// How fast the server's RSS grew in each window, MiB/s (it grows with every
    /// message stored, so compare it with the messages per second).
    fn rss_growth(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let growth = |from: Option<f64>, w: &Window| {
            let secs = w.to_s.saturating_sub(w.from_s).max(1) as f64;
            Some((w.server_rss_mib? - from?) / secs)
        };
        (
            growth(self.rss_at_start, &self.before),
            growth(self.before.server_rss_mib, &self.during),
            growth(self.during.server_rss_mib, &self.after),
        )
    }

    fn json(&self) -> Value {
        json!({"before": self.before, "during": self.during, "after": self.after,
               "ratios": self.ratios(), "timeline": self.timeline})
    }

    /// One row per second, numbered from the disturbance's start.
    fn print_timeline(&self) {
        let mut head = report::WINDOW_HEAD.to_vec();
        head[0] = "second";
        head.push("server RSS max MiB");
        let mut t = Table::new(&head);
        for (i, w) in self.timeline.iter().enumerate() {
            let s = i as i64 - self.disturbance_at as i64;
            let mut row = report::window_row(&format!("{s:+}"), w);
            row.push(opt1(w.server_rss_max_mib));
            t.row(row);
        }
        t.print();
    }
}

// ---------------------------------------------------------------------------------------
// The server's counters

/// The counters of Parley's `/metrics` these scenarios watch.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Counters {
    /// Sessions kicked because their queue overflowed (counted at the kick).
    slow_consumer_kicks: f64,
    /// Sessions closed as slow consumers (counted when the session has ended: after its
    /// Close was written, or after the server gave up writing it).
    sessions_closed_slow_consumer: f64,
    /// Sends refused by the per-user rate limit.
    rate_limit_hits_sends: f64,
}

async fn counters(addr: SocketAddr) -> Option<Counters> {
    let text = crate::scenarios::metrics_text(addr).await?;
    Some(Counters {
        slow_consumer_kicks: sample(&text, actors::metrics::SLOW_CONSUMER_DISCONNECTS, None),
        sessions_closed_slow_consumer: sample(
            &text,
            parley::metrics::SESSIONS_CLOSED,
            Some(r#"reason="slow_consumer""#),
        ),
        rate_limit_hits_sends: sample(
            &text,
            parley::metrics::RATE_LIMIT_HITS,
            Some(r#"limiter="sends""#),
        ),
    })
}

/// The sum of the samples of `name` (those with `label`, if given) in a Prometheus
/// text page; 0 when there are none.
fn sample(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let wanted = match label {
                None => rest.starts_with(' ') || rest.starts_with('{'),
                Some(label) => rest.starts_with('{') && rest.contains(label),
            };
            if !wanted {
                return None;
            }
            rest.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// When the server's counters moved during a disturbance.
#[derive(Debug, Default, Serialize)]
struct Watch {
    /// When the count of slow-consumer kicks reached 1, 2, ... over its value at the
    /// start, in seconds since the disturbance started (scraped every 100 ms).
    kicks_at_s: Vec<f64>,
    /// When the count of sessions closed as slow consumers reached 1, 2, ...
    closed_at_s: Vec<f64>,
    /// The counters just before the disturbance, and at the end.
    start: Counters,
    end: Counters,
    failed_scrapes: u64,
}

/// Scrapes `/metrics` every 100 ms from `origin` to `until`.
async fn watch(addr: SocketAddr, origin: Instant, until: Instant, start: Counters) -> Watch {
    let mut w = Watch {
        start,
        end: start,
        ..Watch::default()
    };
    tokio::time::sleep_until(origin.into()).await;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < until {
        tick.tick().await;
        let Some(c) = counters(addr).await else {
            w.failed_scrapes += 1;
            continue;
        };
        let at = Instant::now()
            .saturating_duration_since(origin)
            .as_secs_f64();
        let kicks = (c.slow_consumer_kicks - start.slow_consumer_kicks).max(0.0) as usize;
        while w.kicks_at_s.len() < kicks {
            w.kicks_at_s.push(at);
        }
        let closed = (c.sessions_closed_slow_consumer - start.sessions_closed_slow_consumer)
            .max(0.0) as usize;
        while w.closed_at_s.len() < closed {
            w.closed_at_s.push(at);
        }
        w.end = c;
    }
    w
}

fn times(v: &[f64]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(|t| format!("{t:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The errors of a window as `code:count,...` (or 0).
fn errors(w: &Window) -> String {
    if w.errors.is_empty() {
        "0".into()
    } else {
        w.errors
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A side group's window with `lost` counting the sends never answered (neither acked
/// nor refused): its messages are not delivered to anyone the group reads.
fn unanswered(mut w: Window) -> Window {
    w.lost = w
        .sent
        .saturating_sub(w.acked + w.errors.values().sum::<u64>());
    w
}

/// Writes the report of a scenario that could not run, and says where.
fn failed(scenario: &str, params: Value, result: Value, out: Option<std::path::PathBuf>) {
    let path = report::write(
        scenario,
        json!({"params": params, "results": [result]}),
        out,
    );
    println!("results: {}", path.display());
}

// ---------------------------------------------------------------------------------------
// slow-consumer

/// How a slow consumer's connection ended, as the client saw it.
#[derive(Debug, Serialize)]
struct SlowEnd {
    user: String,
    /// Seconds after the disturbance started when it started reading again.
    read_from_s: f64,
    /// Text frames read from then on (the backlog the kernel and the server held).
    frames_read: u64,
    bytes_read: u64,
    /// `close frame`, `ended without a Close (1006)`, `read error: ...` or `still open`.
    end: String,
    close_code: Option<u16>,
    close_reason: Option<String>,
    /// Seconds after the disturbance started when the client saw the end.
    end_at_s: Option<f64>,
}

/// Holds `ws` unread until `resume`, then reads it to its end (or to `deadline`).
async fn read_late(
    mut ws: Ws,
    user: String,
    origin: Instant,
    resume: Instant,
    deadline: Instant,
) -> SlowEnd {
    // Nothing polls the socket until then: the kernel's receive buffer fills, then the
    // server's send buffer, then the session's queue.
    tokio::time::sleep_until(resume.into()).await;
    let since = |t: Instant| t.saturating_duration_since(origin).as_secs_f64();
    let mut end = SlowEnd {
        user,
        read_from_s: since(Instant::now()),
        frames_read: 0,
        bytes_read: 0,
        end: "still open".into(),
        close_code: None,
        close_reason: None,
        end_at_s: None,
    };
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline.into(), ws.next()).await else {
            return end;
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                end.frames_read += 1;
                end.bytes_read += t.len() as u64;
            }
            Some(Ok(Message::Close(frame))) => {
                end.end = "close frame".into();
                end.close_code = frame.as_ref().map(|f| u16::from(f.code));
                end.close_reason = frame.map(|f| f.reason.as_str().to_owned());
                end.end_at_s = Some(since(Instant::now()));
                // Sends the Close reply (queued by tungstenite) and reads to the end.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while ws.next().await.is_some() {}
                })
                .await;
                return end;
            }
            Some(Ok(_)) => {}
            // What tungstenite says of a connection that ends without a Close frame.
            Some(Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))) => {
                end.end = "ended without a Close (1006)".into();
                end.end_at_s = Some(since(Instant::now()));
                return end;
            }
            Some(Err(e)) => {
                end.end = format!("read error: {e}");
                end.end_at_s = Some(since(Instant::now()));
                return end;
            }
            None => {
                end.end = "ended without a Close (1006)".into();
                end.end_at_s = Some(since(Instant::now()));
                return end;
            }
        }
    }
}

pub(crate) async fn slow_consumer(args: SlowArgs) {
    parley_only(
        "slow-consumer",
        &args.common,
        "the relay and Socket.IO peers have no slow-consumer policy",
    );
    let p = &args.phases;
    let mut start = args.common.start.clone();
    // Parley's own session queue, not the harness's 65536 (unless --parley-arg sets one).
    start.without_load_flags.push("--session-queue");
    let config = effective(&start);
    let session_queue = config.as_ref().map(|c| c.session_queue);
    let n = even(args.users);
    let (k, s) = (args.slow.max(1), args.senders_per_slow.max(1));
    let d = p.warmup + p.before;
    let (during_end, stop) = (d + p.during, d + p.during + p.after);
    let params = json!({
        "users": n, "rate": args.rate, "slow": k, "senders_per_slow": s,
        "sender_rate": args.sender_rate, "stall_s": args.stall, "warmup_s": p.warmup,
        "before_s": p.before, "during_s": p.during, "after_s": p.after,
        "body_bytes": args.common.body_bytes, "session_queue": session_queue,
        "parley_flags": target::parley_flags(&start),
    });
    let system = System::Parley;
    let target = match Target::start(system, &start, port(&start, 0), n + k * (1 + s)).await {
        Ok(t) => t,
        Err(e) => return failed("slow-consumer", params, fail(system, &e), args.common.out),
    };
    settle(&target, &args.common).await;
    let plan = Plan {
        steps: vec![(0, args.rate)],
        body_bytes: args.common.body_bytes,
    };
    let run = Run::start(&target, &target.users[..n], plan, stop).await;
    let t0 = run.t0();
    let origin = t0 + Duration::from_secs(d);
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    let resume = origin + secs(args.stall);
    let deadline = (t0 + Duration::from_secs(stop)).max(resume + Duration::from_secs(15));
    // The slow consumers connect now, in the warm-up (reading nothing but `ready`).
    let slow_users: Vec<User> = target.users[n..n + k].to_vec();
    let mut readers: Vec<JoinHandle<SlowEnd>> = Vec::new();
    let mut connect_errors: BTreeMap<String, u64> = BTreeMap::new();
    for u in &slow_users {
        match client::connect(system, target.addr, u, None).await {
            Ok(ws) => readers.push(tokio::spawn(read_late(
                ws,
                u.id.clone(),
                origin,
                resume,
                deadline,
            ))),
            Err(e) => {
                eprintln!("slow consumer {}: {e}", u.id);
                *connect_errors.entry(e).or_default() += 1;
            }
        }
    }
    // Their senders, on the pairs' clock, from the disturbance's start to its end.
    let conns: Vec<(User, Option<String>)> = (0..k * s)
        .map(|j| {
            (
                target.users[n + k + j].clone(),
                Some(slow_users[j / s].id.clone()),
            )
        })
        .collect();
    let senders_plan = Plan {
        steps: vec![(d, (k * s) as f64 * args.sender_rate)],
        body_bytes: args.common.body_bytes,
    };
    let senders = Run::start_side(&target, &conns, senders_plan, during_end, t0).await;
    for (e, c) in &senders.connect_errors {
        *connect_errors.entry(e.clone()).or_default() += c;
    }
    run.sleep_until_s(d as f64 - 0.5).await;
    let base = counters(target.addr).await.unwrap_or_default();
    let watcher = tokio::spawn(watch(
        target.addr,
        origin,
        t0 + Duration::from_secs(stop) + Duration::from_secs(2),
        base,
    ));
    let rec = run.finish(Duration::from_secs(p.drain)).await;
    let side = senders.finish(Duration::from_secs(2)).await;
    let watched = watcher.await.unwrap_or_default();
    let mut ends = Vec::new();
    for r in readers {
        if let Ok(end) = r.await {
            ends.push(end);
        }
    }
    let windows = Windows::of(&rec, p);
    // Everything the senders did (answers may come after the disturbance's end).
    let sw = unanswered(side.window(d, stop + p.drain + 5));
    let sent_per_s = sw.sent as f64 / p.during.max(1) as f64;

    println!(
        "\nslow-consumer: chat of {n} users in pairs at {} msg/s; after {d} s, {k} slow consumer(s), each sent {s} x {} msg/s for {} s and not read for {} s; session queue {} (Parley's default unless --parley-arg set it)",
        args.rate,
        args.sender_rate,
        p.during,
        args.stall,
        session_queue.map_or("unknown".into(), |q| q.to_string()),
    );
    if p.timeline {
        windows.print_timeline();
        println!();
    }
    windows.table("during").print();
    println!();
    let mut senders_table = Table::new(&[
        "senders",
        "offered/s",
        "sent/s",
        "sent",
        "acked",
        "ack ms p50/p99/p99.9/max",
        "send lag ms p50/p99",
        "errors",
        "unanswered",
    ]);
    senders_table.row(vec![
        format!("{} to {k} slow", k * s),
        f0((k * s) as f64 * args.sender_rate),
        f0(sent_per_s),
        sw.sent.to_string(),
        sw.acked.to_string(),
        lat(&sw.ack),
        format!("{}/{}", f2(sw.send_lag.p50_ms), f2(sw.send_lag.p99_ms)),
        errors(&sw),
        sw.lost.to_string(),
    ]);
    senders_table.print();
    println!();
    let mut slow_table = Table::new(&[
        "slow consumer",
        "read again at s",
        "frames read",
        "KiB read",
        "end seen by the client",
        "close code",
        "at s",
    ]);
    for e in &ends {
        slow_table.row(vec![
            e.user.chars().take(8).collect(),
            f1(e.read_from_s),
            e.frames_read.to_string(),
            f0(e.bytes_read as f64 / 1024.0),
            e.end.clone(),
            e.close_code.map_or("-".into(), |c| c.to_string()),
            e.end_at_s.map_or("-".into(), f1),
        ]);
    }
    slow_table.print();
    println!(
        "server (from /metrics, times since the disturbance started): slow-consumer kicks at {}; sessions closed as slow consumers at {}",
        times(&watched.kicks_at_s),
        times(&watched.closed_at_s),
    );
    println!(
        "(the kick is the server's decision; its Close reaches the client after the backlog, once the client reads again: within the server's 10 s close grace it gets 4008, later the connection just ends)"
    );
    let closed_4008 = ends
        .iter()
        .filter(|e| e.close_code == Some(parley::realtime::protocol::close::SLOW_CONSUMER))
        .count();
    if closed_4008 < k {
        println!(
            "NOTE: {} of {k} slow consumer(s) saw the 4008 Close. With a kick but no 4008, the client read again too late (see above: lower --stall). Without a kick, its queue never overflowed: raise --sender-rate or --senders-per-slow.",
            closed_4008
        );
    }
    windows.print_summary();
    if !connect_errors.is_empty() {
        println!("connect errors: {connect_errors:?}");
    }
    let result = json!({
        "system": system, "pairs": windows.json(), "senders": sw,
        "senders_sent_per_s": sent_per_s, "slow_consumers": ends,
        "server_counters": watched, "connect_errors": connect_errors,
    });
    let path = report::write(
        "slow-consumer",
        json!({"params": params, "results": [result]}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}

// ---------------------------------------------------------------------------------------
// flood

pub(crate) async fn flood(args: FloodArgs) {
    parley_only(
        "flood",
        &args.common,
        "the relay and Socket.IO peers have no rate limits",
    );
    let p = &args.phases;
    let mut start = args.common.start.clone();
    // Parley's own send rate limit, not the harness's 1,000,000/s.
    start
        .without_load_flags
        .extend(["--send-rate", "--send-burst"]);
    let config = effective(&start);
    let limit = config
        .as_ref()
        .map(|c| (c.send_rate_per_second, c.send_burst));
    let n = even(args.users);
    let f = args.flooders.max(1);
    let d = p.warmup + p.before;
    let (during_end, stop) = (d + p.during, d + p.during + p.after);
    // The pairs must stay under the limit, or they would be refused too.
    let mut rate = args.rate;
    let mut note = None;
    if let Some((per_s, _)) = limit {
        let most = 0.9 * f64::from(per_s) * n as f64;
        if rate > most {
            note = Some(format!(
                "chat rate lowered from {} to {} msg/s: {:.1} msg/s per user is above 90 % of the send rate limit ({per_s} msg/s per user)",
                args.rate,
                f0(most),
                args.rate / n as f64,
            ));
            rate = most;
        }
    }
    if let Some(note) = &note {
        eprintln!("flood: {note}");
    }
    let params = json!({
        "users": n, "rate": rate, "rate_asked": args.rate, "flooders": f,
        "flood_rate": args.flood_rate, "warmup_s": p.warmup, "before_s": p.before,
        "during_s": p.during, "after_s": p.after, "body_bytes": args.common.body_bytes,
        "send_rate_limit": limit.map(|l| l.0), "send_burst": limit.map(|l| l.1),
        "parley_flags": target::parley_flags(&start), "note": note,
    });
    let system = System::Parley;
    let target = match Target::start(system, &start, port(&start, 0), n + 2 * f).await {
        Ok(t) => t,
        Err(e) => return failed("flood", params, fail(system, &e), args.common.out),
    };
    settle(&target, &args.common).await;
    let plan = Plan {
        steps: vec![(0, rate)],
        body_bytes: args.common.body_bytes,
    };
    let run = Run::start(&target, &target.users[..n], plan, stop).await;
    // Each flooder sends to a partner of its own, who only reads.
    let conns: Vec<(User, Option<String>)> = (0..f)
        .flat_map(|i| {
            let (flooder, partner) = (&target.users[n + 2 * i], &target.users[n + 2 * i + 1]);
            [
                (flooder.clone(), Some(partner.id.clone())),
                (partner.clone(), None),
            ]
        })
        .collect();
    let flood_plan = Plan {
        steps: vec![(d, f as f64 * args.flood_rate)],
        body_bytes: args.common.body_bytes,
    };
    let flooders = Run::start_side(&target, &conns, flood_plan, during_end, run.t0()).await;
    let connect_errors = flooders.connect_errors.clone();
    run.sleep_until_s(d as f64 - 0.5).await;
    let base = counters(target.addr).await;
    let rec = run.finish(Duration::from_secs(p.drain)).await;
    let side = flooders.finish(Duration::from_secs(2)).await;
    let end = counters(target.addr).await;
    let windows = Windows::of(&rec, p);
    let fw = unanswered(side.window(d, stop + p.drain + 5));
    let rate_limited = fw.errors.get("rate_limited").copied().unwrap_or(0);
    let other_errors = fw.errors.values().sum::<u64>() - rate_limited;
    let hits = match (base, end) {
        (Some(a), Some(b)) => Some(b.rate_limit_hits_sends - a.rate_limit_hits_sends),
        _ => None,
    };
    let during_s = p.during.max(1) as f64;

    println!(
        "\nflood: chat of {n} users in pairs at {} msg/s ({:.1} per user); after {d} s, {f} flooder(s) at {} msg/s each for {} s; send rate limit {}",
        f0(rate),
        rate / n as f64,
        args.flood_rate,
        p.during,
        limit.map_or("unknown".into(), |(r, b)| format!(
            "{r} msg/s per user, burst {b} (Parley's default unless --parley-arg set it)"
        )),
    );
    if let Some(note) = &note {
        println!("NOTE: {note}");
    }
    if p.timeline {
        windows.print_timeline();
        println!();
    }
    windows.table("during").print();
    println!();
    let mut flood_table = Table::new(&[
        "flooders",
        "offered/s",
        "sent",
        "sent/s",
        "acked",
        "acked/s",
        "rate_limited",
        "other errors",
        "unanswered",
        "server rate-limit hits",
        "delivered to partner",
        "ack ms p50/p99/p99.9/max",
        "send lag ms p50/p99",
    ]);
    flood_table.row(vec![
        f.to_string(),
        f0(f as f64 * args.flood_rate),
        fw.sent.to_string(),
        f0(fw.sent as f64 / during_s),
        fw.acked.to_string(),
        f1(fw.acked as f64 / during_s),
        rate_limited.to_string(),
        if other_errors == 0 {
            "0".into()
        } else {
            errors(&fw)
        },
        fw.lost.to_string(),
        hits.map_or("-".into(), f0),
        fw.delivered.to_string(),
        lat(&fw.ack),
        format!("{}/{}", f2(fw.send_lag.p50_ms), f2(fw.send_lag.p99_ms)),
    ]);
    flood_table.print();
    if rate_limited == 0 {
        println!("NOTE: the flooders got no rate_limited error: is the limit in force?");
    }
    windows.print_summary();
    if !connect_errors.is_empty() {
        println!("connect errors: {connect_errors:?}");
    }
    let result = json!({
        "system": system, "pairs": windows.json(), "flooders": fw,
        "flooder_sent_per_s": fw.sent as f64 / during_s,
        "flooder_rate_limited": rate_limited, "flooder_other_errors": other_errors,
        "server_rate_limit_hits": hits, "connect_errors": connect_errors,
    });
    let path = report::write(
        "flood",
        json!({"params": params, "results": [result]}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}
