//! The scenarios: connect, chat, ramp, catchup, login-storm (slow-consumer and flood are
//! in `isolation`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::chat::{Latency, Plan, Run, Window};
use crate::client::{self, Incoming, Ws};
use crate::procstat;
use crate::report::{self, Table, f0, f1, f2, lat, opt1};
use crate::target::{StartOptions, System, Target, User};
use crate::{CatchupArgs, ChatArgs, ConnectArgs, CostArgs, RampArgs, StormArgs};

/// Waits for the machine to be quiet (see `Common::quiet_limit`); returns the other
/// processes' CPU use then, in percent of one core.
pub(crate) async fn settle(target: &Target, common: &crate::Common) -> f64 {
    if common.quiet_wait == 0 {
        return 0.0;
    }
    let ours: Vec<u32> = target.pid.into_iter().chain(target.store_pid).collect();
    procstat::wait_quiet(
        &ours,
        common.quiet_limit,
        Duration::from_secs(common.quiet_wait),
    )
    .await
}

pub(crate) fn port(opts: &StartOptions, i: usize) -> u16 {
    opts.base_port + i as u16
}

/// Starts the `i`th system of a scenario with `users` accounts, or records why it did
/// not start in `results`.
pub(crate) async fn start(
    system: System,
    common: &crate::Common,
    i: usize,
    users: usize,
    results: &mut Vec<Value>,
) -> Option<Target> {
    match Target::start(system, &common.start, port(&common.start, i), users).await {
        Ok(t) => Some(t),
        Err(e) => {
            results.push(fail(system, &e));
            None
        }
    }
}

/// Takes the server's pid out of the picture for a system that failed to start.
pub(crate) fn fail(system: System, e: &str) -> Value {
    eprintln!("{system}: {e}");
    json!({"system": system, "error": e})
}

// ---------------------------------------------------------------------------------------
// connect

#[derive(Serialize, Default)]
struct ConnectResult {
    system: String,
    requested: usize,
    connected: usize,
    errors: BTreeMap<String, u64>,
    processes: usize,
    connect_secs: f64,
    connects_per_s: f64,
    server_cpu_percent_while_connecting: Option<f64>,
    server_rss_before_mib: f64,
    server_rss_after_mib: f64,
    server_rss_per_connection_kib: f64,
    server_rss_peak_mib: f64,
    server_threads: u64,
    generator_rss_mib: f64,
}

/// Holds one idle connection open, answering pings, until aborted.
async fn hold(mut ws: Ws) {
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = &m
            && t.as_str() == "2"
            && ws.send(Message::text("3")).await.is_err()
        {
            return;
        }
    }
}

/// Connects `users` from `source` with at most `concurrency` handshakes at once. Returns
/// the holder tasks and the errors by kind.
pub(crate) async fn connect_slice(
    system: System,
    addr: SocketAddr,
    users: Vec<User>,
    source: Option<Ipv4Addr>,
    concurrency: usize,
) -> (Vec<JoinHandle<()>>, BTreeMap<String, u64>) {
    let results = futures_util::stream::iter(users)
        .map(|u| async move { client::connect(system, addr, &u, source).await })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut holders = Vec::new();
    let mut errors = BTreeMap::new();
    for r in results {
        match r {
            Ok(ws) => holders.push(tokio::spawn(hold(ws))),
            Err(e) => {
                let kind = e.split(':').next().unwrap_or("connect").to_owned();
                *errors.entry(kind).or_default() += 1;
            }
        }
    }
    (holders, errors)
}

/// `connect-worker`: connects a slice in a child process (for more sockets than one
/// process may open), reports, and holds until its stdin closes.
pub(crate) async fn connect_worker(
    system: System,
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    users_file: PathBuf,
    concurrency: usize,
) {
    let text = std::fs::read_to_string(&users_file).unwrap_or_default();
    let users: Vec<User> = serde_json::from_str(&text).unwrap_or_default();
    let started = Instant::now();
    let (holders, errors) = connect_slice(system, addr, users, source, concurrency).await;
    let line = json!({
        "connected": holders.len(),
        "errors": errors,
        "secs": started.elapsed().as_secs_f64(),
        "rss_kib": procstat::sample(None).map_or(0, |s| s.rss_kib),
    });
    println!("{line}");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    for h in holders {
        h.abort();
    }
}

pub(crate) async fn connect(args: ConnectArgs) {
    let systems = args.common.systems_or(&[
        System::Parley,
        System::Relay,
        System::Socketio,
        System::ParleySocketio,
    ]);
    let mut results = Vec::new();
    let mut table = Table::new(&[
        "system",
        "connected",
        "errors",
        "connect/s",
        "server CPU % (connecting)",
        "RSS before MiB",
        "RSS after MiB",
        "RSS/conn KiB",
    ]);
    for (i, &system) in systems.iter().enumerate() {
        let Some(mut target) = start(system, &args.common, i, args.connections, &mut results).await
        else {
            continue;
        };
        settle(&target, &args.common).await;
        let r = connect_one(&target, &args).await;
        table.row(vec![
            system.to_string(),
            format!("{}/{}", r.connected, r.requested),
            r.errors.values().sum::<u64>().to_string(),
            f0(r.connects_per_s),
            opt1(r.server_cpu_percent_while_connecting),
            f1(r.server_rss_before_mib),
            f1(r.server_rss_after_mib),
            f2(r.server_rss_per_connection_kib),
        ]);
        if r.connected < r.requested {
            eprintln!("{system}: server log tail:\n{}", target.log_tail());
        }
        results.push(serde_json::to_value(&r).unwrap_or_default());
        target.stop();
    }
    println!(
        "\nconnect: {} idle authenticated connections ({} per user), held {} s",
        args.connections, args.sessions_per_user, args.hold
    );
    table.print();
    let path = report::write(
        "connect",
        json!({"params": {"connections": args.connections, "concurrency": args.concurrency,
                "sessions_per_user": args.sessions_per_user,
                "hold_s": args.hold, "per_process": args.per_process}, "results": results}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}

async fn connect_one(target: &Target, args: &ConnectArgs) -> ConnectResult {
    let system = target.system;
    let n = args.connections.min(target.users.len());
    let k = args.sessions_per_user.max(1);
    let users: Vec<User> = target.users[..n.div_ceil(k)]
        .iter()
        .flat_map(|u| std::iter::repeat_n(u.clone(), k))
        .take(n)
        .collect();
    // Let the server settle before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = target.pid.and_then(|p| procstat::sample(Some(p)));
    let started = Instant::now();
    let per = args.per_process.max(1);
    let slices: Vec<Vec<User>> = users.chunks(per).map(<[User]>::to_vec).collect();
    let processes = slices.len();
    let concurrency = (args.concurrency / processes).max(1);
    let mut workers = Vec::new();
    let mut own = None;
    let exe = std::env::current_exe().ok();
    for (k, slice) in slices.into_iter().enumerate() {
        if k == 0 {
            own = Some(slice);
            continue;
        }
        // Each further process gets its own source address: 127.0.0.2, .3, ...
        let source = Ipv4Addr::new(127, 0, 0, 1 + k as u8);
        let file = crate::target::scratch_dir().join(format!("connect-slice-{k}.json"));
        let _ = std::fs::create_dir_all(crate::target::scratch_dir());
        let _ = std::fs::write(&file, serde_json::to_string(&slice).unwrap_or_default());
        let Some(exe) = &exe else { break };
        let child = tokio::process::Command::new(exe)
            .arg("connect-worker")
            .arg(format!("--system={system}"))
            .arg(format!("--addr={}", target.addr))
            .arg(format!("--source-ip={source}"))
            .arg(format!("--concurrency={concurrency}"))
            .arg("--users-file")
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(c) => workers.push(c),
            Err(e) => eprintln!("cannot start a connect worker: {e}"),
        }
    }
    let (holders, mut errors) = connect_slice(
        system,
        target.addr,
        own.unwrap_or_default(),
        None,
        concurrency,
    )
    .await;
    let mut connected = holders.len();
    for w in &mut workers {
        let Some(out) = w.stdout.take() else { continue };
        let mut lines = BufReader::new(out).lines();
        if let Ok(Some(line)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            connected += v["connected"].as_u64().unwrap_or(0) as usize;
            if let Some(map) = v["errors"].as_object() {
                for (k, c) in map {
                    *errors.entry(k.clone()).or_default() += c.as_u64().unwrap_or(0);
                }
            }
        } else {
            *errors.entry("worker_failed".into()).or_default() += 1;
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let during = target.pid.and_then(|p| procstat::sample(Some(p)));
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let after = target.pid.and_then(|p| procstat::sample(Some(p)));
    let me = procstat::sample(None);
    for h in holders {
        h.abort();
    }
    for mut w in workers {
        drop(w.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(10), w.wait()).await;
    }
    let mib = |s: &Option<procstat::Sample>| s.as_ref().map_or(0.0, |s| s.rss_kib as f64 / 1024.0);
    let rss_delta_kib = match (&before, &after) {
        (Some(b), Some(a)) => a.rss_kib as f64 - b.rss_kib as f64,
        _ => 0.0,
    };
    ConnectResult {
        system: system.to_string(),
        requested: n,
        connected,
        errors,
        processes,
        connect_secs,
        connects_per_s: connected as f64 / connect_secs,
        server_cpu_percent_while_connecting: match (&before, &during) {
            (Some(b), Some(d)) => Some(procstat::cpu_percent(b, d)),
            _ => None,
        },
        server_rss_before_mib: mib(&before),
        server_rss_after_mib: mib(&after),
        server_rss_per_connection_kib: if connected > 0 {
            rss_delta_kib / connected as f64
        } else {
            0.0
        },
        server_rss_peak_mib: after.as_ref().map_or(0.0, |s| s.hwm_kib as f64 / 1024.0),
        server_threads: after.map_or(0, |s| s.threads),
        generator_rss_mib: mib(&me),
    }
}

// ---------------------------------------------------------------------------------------
// chat

pub(crate) async fn chat(args: ChatArgs) {
    let systems = args.common.systems_or(&[
        System::Parley,
        System::Relay,
        System::Socketio,
        System::ParleySocketio,
    ]);
    let mut results = Vec::new();
    let mut rows = Vec::new();
    for (i, &system) in systems.iter().enumerate() {
        let Some(target) = start(system, &args.common, i, args.users, &mut results).await else {
            continue;
        };
        let plan = Plan {
            steps: vec![(0, args.rate)],
            body_bytes: args.common.body_bytes,
        };
        let stop = args.warmup + args.duration;
        settle(&target, &args.common).await;
        let run = Run::start(&target, &target.users[..args.users], plan, stop).await;
        let connect_errors = run.connect_errors.clone();
        let connected = run.connected;
        // Parley's own count of group commits over the measured window.
        let mut commits = None;
        if system.is_parley() {
            run.sleep_until_s(args.warmup as f64).await;
            let a = scrape_commits(target.addr).await;
            run.sleep_until_s(stop as f64).await;
            let b = scrape_commits(target.addr).await;
            if let (Some(a), Some(b)) = (a, b) {
                let n = b.1 - a.1;
                commits = Some(json!({
                    "commits_per_s": n / args.duration as f64,
                    "mean_batch": if n > 0.0 { (b.0 - a.0) / n } else { 0.0 },
                }));
            }
        }
        let rec = run.finish(Duration::from_secs(args.drain)).await;
        if let Some(c) = &commits {
            println!("{system}: group commits in the window: {c}");
        }
        let w = rec.window(args.warmup, stop);
        let timeline = rec.timeline(0, stop);
        if args.timeline {
            let mut t = Table::new(report::WINDOW_HEAD);
            for (s, x) in timeline.iter().enumerate() {
                t.row(report::window_row(&format!("{system} s{s}"), x));
            }
            t.print();
        }
        if w.error_count() > 0 {
            eprintln!("{system}: server log tail:\n{}", target.log_tail());
        }
        rows.push((system, w.clone()));
        results.push(json!({
            "system": system, "connected": connected, "connect_errors": connect_errors,
            "window": w, "timeline": timeline, "group_commits": commits,
        }));
        drop(target);
    }
    println!(
        "\nchat: {} users in {} pairs, {} msg/s offered, {} B bodies, {} s warm-up excluded, {} s measured",
        args.users,
        args.users / 2,
        args.rate,
        args.common.body_bytes,
        args.warmup,
        args.duration
    );
    let mut table = Table::new(report::WINDOW_HEAD);
    for (s, w) in &rows {
        table.row(report::window_row(&s.to_string(), w));
    }
    table.print();
    let ratios = ratios(&rows, |w| w.delivered_per_s);
    print_ratios("delivered/s", &ratios);
    let path = report::write(
        "chat",
        json!({"params": {"users": args.users, "rate": args.rate, "warmup_s": args.warmup,
               "duration_s": args.duration, "body_bytes": args.common.body_bytes},
               "results": results, "ratios_delivered_per_s": ratios}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}

/// Parley's `/metrics` page, or `None` if it cannot be read.
pub(crate) async fn metrics_text(addr: SocketAddr) -> Option<String> {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// `(sum, count)` of Parley's `parley_persistence_batch_size` histogram, from `/metrics`.
async fn scrape_commits(addr: SocketAddr) -> Option<(f64, f64)> {
    let text = metrics_text(addr).await?;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((
        value("parley_persistence_batch_size_sum")?,
        value("parley_persistence_batch_size_count")?,
    ))
}

fn ratios(rows: &[(System, Window)], f: impl Fn(&Window) -> f64) -> Value {
    let get = |s: System| rows.iter().find(|r| r.0 == s).map(|r| f(&r.1));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    json!({
        "parley_over_relay": ratio(get(System::Parley), get(System::Relay)),
        "parley_over_socketio": ratio(get(System::Parley), get(System::Socketio)),
        "parley_socketio_over_socketio": ratio(get(System::ParleySocketio), get(System::Socketio)),
        "parley_scylla_over_parley": ratio(get(System::ParleyScylla), get(System::Parley)),
    })
}

fn print_ratios(what: &str, ratios: &Value) {
    let show = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.2}"));
    println!(
        "ratios of {what}: parley/relay {}, parley/socketio {}, parley-socketio/socketio {}, parley-scylla/parley {}",
        show(&ratios["parley_over_relay"]),
        show(&ratios["parley_over_socketio"]),
        show(&ratios["parley_socketio_over_socketio"]),
        show(&ratios["parley_scylla_over_parley"])
    );
}

// ---------------------------------------------------------------------------------------
// socketio-cost

/// Parley over Socket.IO beside the Node.js Socket.IO peer, driven the same way
/// (`register`, then `sendMessage` with an ack): on one server per system, the RSS per
/// idle connection (connections opened, held, closed), then the server's CPU per
/// message under chat.
pub(crate) async fn socketio_cost(args: CostArgs) {
    let chat = &args.chat;
    let common = &chat.common;
    let systems = common.systems_or(&[System::ParleySocketio, System::Socketio]);
    let mut results = Vec::new();
    let mut table = Table::new(&[
        "system",
        "connected",
        "RSS/idle conn KiB",
        "delivered/s",
        "errors",
        "server CPU µs/msg",
        "e2e ms p50/p99",
        "other CPU %",
        "persists",
    ]);
    for (i, &system) in systems.iter().enumerate() {
        let users = args.connections.max(chat.users);
        let Some(target) = start(system, common, i, users, &mut results).await else {
            continue;
        };
        settle(&target, common).await;
        let connect_args = ConnectArgs {
            common: common.clone(),
            connections: args.connections,
            concurrency: args.concurrency,
            hold: args.hold,
            per_process: args.connections.max(1),
            sessions_per_user: 1,
        };
        let idle = connect_one(&target, &connect_args).await;
        // The idle sockets are closed; let the server notice before the chat starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle(&target, common).await;
        let plan = Plan {
            steps: vec![(0, chat.rate)],
            body_bytes: common.body_bytes,
        };
        let stop = chat.warmup + chat.duration;
        let run = Run::start(&target, &target.users[..chat.users], plan, stop).await;
        let rec = run.finish(Duration::from_secs(chat.drain)).await;
        let w = rec.window(chat.warmup, stop);
        if w.error_count() > 0 || idle.connected < idle.requested {
            eprintln!("{system}: server log tail:\n{}", target.log_tail());
        }
        table.row(vec![
            system.to_string(),
            format!("{}/{}", idle.connected, idle.requested),
            f2(idle.server_rss_per_connection_kib),
            f0(w.delivered_per_s),
            w.error_count().to_string(),
            opt1(w.server_cpu_us_per_message),
            format!("{}/{}", f2(w.e2e.p50_ms), f2(w.e2e.p99_ms)),
            opt1(w.other_cpu_percent),
            if system.is_parley() {
                "every message, fsynced"
            } else {
                "nothing"
            }
            .to_owned(),
        ]);
        results.push(json!({"system": system, "idle": idle, "chat": w}));
        drop(target);
    }
    println!(
        "\nsocketio-cost: {} idle connections held {} s, then {} users in pairs at {} msg/s, {} s measured",
        args.connections, args.hold, chat.users, chat.rate, chat.duration
    );
    table.print();
    let path = report::write(
        "socketio-cost",
        json!({"params": {"connections": args.connections, "hold_s": args.hold,
               "users": chat.users, "rate": chat.rate, "warmup_s": chat.warmup,
               "duration_s": chat.duration, "body_bytes": common.body_bytes},
               "results": results}),
        common.out.clone(),
    );
    println!("results: {}", path.display());
}

// ---------------------------------------------------------------------------------------
// ramp

#[derive(Serialize, Clone)]
struct Step {
    rate: f64,
    passed: bool,
    window: Window,
}

pub(crate) async fn ramp(args: RampArgs) {
    let systems = args.common.systems_or(&[
        System::Parley,
        System::Relay,
        System::Socketio,
        System::ParleySocketio,
    ]);
    let mut results = Vec::new();
    let mut summary = Vec::new();
    for (i, &system) in systems.iter().enumerate() {
        let Some(target) = start(system, &args.common, i, args.users, &mut results).await else {
            continue;
        };
        settle(&target, &args.common).await;
        let (steps, max) = ramp_one(&target, &args).await;
        for s in &steps {
            let mut row = report::window_row(&format!("{system} @{}", f0(s.rate)), &s.window);
            row.push(if s.passed { "pass" } else { "FAIL" }.into());
            summary.push((system, row));
        }
        let best = max.clone();
        results.push(json!({
            "system": system,
            "max_sustainable_rate": best.as_ref().map(|s| s.rate),
            "max_sustainable_delivered_per_s": best.as_ref().map(|s| s.window.delivered_per_s),
            "steps": steps,
        }));
        drop(target);
    }
    println!(
        "\nramp: {} users, steps of {} s ({} s warm-up excluded each), x{} from {}/s; pass = e2e and ack p99 <= {} ms, no errors, nothing lost",
        args.users,
        args.step_secs,
        args.step_warmup,
        args.factor,
        args.start_rate,
        args.p99_limit_ms
    );
    let mut head = report::WINDOW_HEAD.to_vec();
    head.push("step");
    let mut table = Table::new(&head);
    for (_, row) in summary {
        table.row(row);
    }
    table.print();
    let mut best = Table::new(&["system", "max sustainable offered/s", "delivered/s at it"]);
    let mut rows = Vec::new();
    for r in &results {
        let rate = r["max_sustainable_rate"].as_f64();
        let delivered = r["max_sustainable_delivered_per_s"].as_f64();
        best.row(vec![
            r["system"].as_str().unwrap_or("?").to_owned(),
            rate.map_or("none".into(), f0),
            delivered.map_or("-".into(), f0),
        ]);
        if let (Some(s), Some(d)) = (r["system"].as_str(), delivered) {
            let system = match s {
                "parley" => System::Parley,
                "parley-socketio" => System::ParleySocketio,
                "parley-scylla" => System::ParleyScylla,
                "parley-cluster-same" => System::ParleyClusterSame,
                "parley-cluster-split" => System::ParleyClusterSplit,
                "relay" => System::Relay,
                _ => System::Socketio,
            };
            rows.push((
                system,
                Window {
                    delivered_per_s: d,
                    ..Window::default()
                },
            ));
        }
    }
    println!();
    best.print();
    let ratios = ratios(&rows, |w| w.delivered_per_s);
    print_ratios("max sustainable delivered/s", &ratios);
    let path = report::write(
        "ramp",
        json!({"params": {"users": args.users, "start_rate": args.start_rate, "factor": args.factor,
               "step_s": args.step_secs, "step_warmup_s": args.step_warmup,
               "p99_limit_ms": args.p99_limit_ms, "body_bytes": args.common.body_bytes},
               "results": results, "ratios_max_delivered_per_s": ratios}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}

fn step_passes(w: &Window, limit_ms: f64) -> bool {
    w.sent > 0 && w.e2e.p99_ms <= limit_ms && w.ack.p99_ms <= limit_ms && w.error_count() == 0
}

async fn ramp_one(target: &Target, args: &RampArgs) -> (Vec<Step>, Option<Step>) {
    let s = args.step_secs;
    let rates: Vec<f64> = (0..args.max_steps)
        .map(|i| (args.start_rate * args.factor.powi(i as i32)).round())
        .collect();
    let plan = Plan {
        steps: rates
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u64 * s, *r))
            .collect(),
        body_bytes: args.common.body_bytes,
    };
    let total = args.max_steps as u64 * s;
    let run = Run::start(target, &target.users[..args.users], plan, total).await;
    let mut ran = 0;
    for i in 0..args.max_steps {
        ran = i + 1;
        let end = (i as u64 + 1) * s;
        run.sleep_until_s(end as f64 + 1.5).await;
        let w = run.rec.window(i as u64 * s + args.step_warmup, end);
        let pass = step_passes(&w, args.p99_limit_ms);
        eprintln!(
            "{} step {}: offered {}/s delivered {}/s e2e p99 {} ms ack p99 {} ms errors {} -> {}",
            target.system,
            i,
            f0(w.offered_per_s),
            f0(w.delivered_per_s),
            f2(w.e2e.p99_ms),
            f2(w.ack.p99_ms),
            w.error_count(),
            if pass { "pass" } else { "fail" }
        );
        if !pass {
            run.stop_at(run.elapsed_s().ceil() as u64);
            break;
        }
    }
    let rec = run.finish(Duration::from_secs(args.drain)).await;
    let mut steps = Vec::new();
    let mut best = None;
    let mut failed = false;
    for (i, rate) in rates.iter().take(ran).enumerate() {
        let w = rec.window(i as u64 * s + args.step_warmup, (i as u64 + 1) * s);
        let passed = step_passes(&w, args.p99_limit_ms);
        let step = Step {
            rate: *rate,
            passed,
            window: w,
        };
        if passed && !failed {
            best = Some(step.clone());
        } else {
            failed = true;
        }
        steps.push(step);
    }
    (steps, best)
}

// ---------------------------------------------------------------------------------------
// catchup

#[derive(Serialize)]
struct Catchup {
    messages_sent: usize,
    fill_secs: f64,
    connect_ms: f64,
    synced_ms: f64,
    sync_rounds: usize,
    messages_replayed: usize,
}

pub(crate) async fn catchup(args: CatchupArgs) {
    let systems = args.common.systems_or(&[System::Parley]);
    let mut results = Vec::new();
    let mut table = Table::new(&[
        "system",
        "run",
        "missed",
        "replayed",
        "sync rounds",
        "connect ms",
        "to synced ms",
    ]);
    for (i, &system) in systems.iter().enumerate() {
        if !system.is_parley() {
            println!("{system}: catchup does not apply (no history, no sync)");
            results.push(json!({"system": system, "skipped": "no persistence, no sync"}));
            continue;
        }
        let Some(target) = start(system, &args.common, i, 2 * args.repeats, &mut results).await
        else {
            continue;
        };
        let mut runs = Vec::new();
        for r in 0..args.repeats {
            settle(&target, &args.common).await;
            match catchup_one(&target, &args, r).await {
                Ok(c) => {
                    table.row(vec![
                        system.to_string(),
                        r.to_string(),
                        c.messages_sent.to_string(),
                        c.messages_replayed.to_string(),
                        c.sync_rounds.to_string(),
                        f1(c.connect_ms),
                        f1(c.synced_ms),
                    ]);
                    runs.push(serde_json::to_value(&c).unwrap_or_default());
                }
                Err(e) => {
                    eprintln!("{system} catchup run {r}: {e}\n{}", target.log_tail());
                    runs.push(json!({"error": e}));
                }
            }
        }
        results.push(json!({"system": system, "runs": runs}));
    }
    println!(
        "\ncatchup: a user offline while {} messages arrive; time from reconnect to the last synced (more=false)",
        args.messages
    );
    table.print();
    let path = report::write(
        "catchup",
        json!({"params": {"messages": args.messages, "repeats": args.repeats,
               "body_bytes": args.common.body_bytes}, "results": results}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}

async fn catchup_one(target: &Target, args: &CatchupArgs, r: usize) -> Result<Catchup, String> {
    let (sender, receiver) = (&target.users[2 * r], &target.users[2 * r + 1]);
    let mut ws = client::connect(target.system, target.addr, sender, None).await?;
    let started = Instant::now();
    let (mut sent, mut acked) = (0usize, 0usize);
    while acked < args.messages {
        while sent < args.messages && sent - acked < args.window {
            sent += 1;
            let body = client::body(sent as u64, args.common.body_bytes);
            let frame =
                client::send_frame(target.system, &receiver.id, &body, &format!("f{sent}"), 0);
            ws.feed(Message::text(frame))
                .await
                .map_err(|e| e.to_string())?;
        }
        ws.flush().await.map_err(|e| e.to_string())?;
        let text = client::next_text(&mut ws).await?;
        match client::classify(target.system, &text) {
            Incoming::Ack(_) => acked += 1,
            Incoming::Error(code) => return Err(format!("send refused: {code}")),
            _ => {}
        }
    }
    let fill_secs = started.elapsed().as_secs_f64();
    let _ = ws.close(None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let mut ws = client::connect(target.system, target.addr, receiver, None).await?;
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut cursors = json!({});
    let mut rounds = 0;
    let mut replayed = 0;
    loop {
        rounds += 1;
        let sync = json!({"type": "sync", "cursors": cursors}).to_string();
        ws.send(Message::text(sync))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let text = client::next_text(&mut ws).await?;
            match client::classify(target.system, &text) {
                Incoming::Delivery(_) => replayed += 1,
                Incoming::Synced { more } => {
                    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    cursors = v["cursors"].clone();
                    if more {
                        break;
                    }
                    let synced_ms = started.elapsed().as_secs_f64() * 1000.0;
                    return Ok(Catchup {
                        messages_sent: args.messages,
                        fill_secs,
                        connect_ms,
                        synced_ms,
                        sync_rounds: rounds,
                        messages_replayed: replayed,
                    });
                }
                Incoming::Error(code) => return Err(format!("sync refused: {code}")),
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// login-storm

pub(crate) async fn login_storm(args: StormArgs) {
    let systems = args.common.systems_or(&[System::Parley]);
    let mut results = Vec::new();
    let mut table = Table::new(report::WINDOW_HEAD);
    let mut logins_table = Table::new(&[
        "system",
        "logins ok",
        "failed",
        "storm s",
        "logins/s",
        "login ms p50/p99/p99.9/max",
        "chat p99 during / before",
    ]);
    for (i, &system) in systems.iter().enumerate() {
        if !system.is_parley() {
            println!("{system}: login-storm does not apply (no login)");
            results.push(json!({"system": system, "skipped": "no login endpoint"}));
            continue;
        }
        let Some(target) = start(
            system,
            &args.common,
            i,
            args.users + args.logins,
            &mut results,
        )
        .await
        else {
            continue;
        };
        let plan = Plan {
            steps: vec![(0, args.rate)],
            body_bytes: args.common.body_bytes,
        };
        settle(&target, &args.common).await;
        let run = Run::start(&target, &target.users[..args.users], plan, 3600).await;
        let storm_at = args.warmup + args.before;
        run.sleep_until_s(storm_at as f64).await;
        let storm_users = target.users[args.users..args.users + args.logins].to_vec();
        let (hist, ok, failures, storm_secs) =
            storm(target.addr, storm_users, args.login_concurrency).await;
        let storm_end = run.elapsed_s().ceil() as u64;
        let stop = storm_end + args.after;
        run.stop_at(stop);
        let rec = run.finish(Duration::from_secs(args.drain)).await;
        let before = rec.window(args.warmup, storm_at);
        let during = rec.window(storm_at, storm_end.max(storm_at + 1));
        let after = rec.window(storm_end, stop);
        table.row(report::window_row("before", &before));
        table.row(report::window_row("during storm", &during));
        table.row(report::window_row("after", &after));
        if args.timeline {
            let mut head = report::WINDOW_HEAD.to_vec();
            head[0] = "second";
            let mut t = Table::new(&head);
            for s in args.warmup..stop {
                let label = format!("{:+}", s as i64 - storm_at as i64);
                t.row(report::window_row(&label, &rec.window(s, s + 1)));
            }
            println!("\nlogin-storm timeline (second 0 is the storm's start):");
            t.print();
        }
        let login = Latency::of(&hist);
        let ratio = if before.e2e.p99_ms > 0.0 {
            during.e2e.p99_ms / before.e2e.p99_ms
        } else {
            0.0
        };
        logins_table.row(vec![
            system.to_string(),
            ok.to_string(),
            failures.values().sum::<u64>().to_string(),
            f1(storm_secs),
            f0(ok as f64 / storm_secs),
            lat(&login),
            format!("{:.2}x", ratio),
        ]);
        results.push(json!({
            "system": system, "before": before, "during": during, "after": after,
            "logins_ok": ok, "login_failures": failures, "storm_secs": storm_secs,
            "login_latency": login, "chat_e2e_p99_ratio_during_over_before": ratio,
        }));
    }
    println!(
        "\nlogin-storm: chat of {} users at {} msg/s; {} logins at once (concurrency {}) after {} s",
        args.users,
        args.rate,
        args.logins,
        args.login_concurrency,
        args.warmup + args.before
    );
    table.print();
    println!();
    logins_table.print();
    let path = report::write(
        "login-storm",
        json!({"params": {"users": args.users, "rate": args.rate, "logins": args.logins,
               "login_concurrency": args.login_concurrency, "warmup_s": args.warmup,
               "before_s": args.before, "after_s": args.after,
               "body_bytes": args.common.body_bytes},
               "results": results}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}

async fn storm(
    addr: SocketAddr,
    users: Vec<User>,
    concurrency: usize,
) -> (Histogram<u64>, usize, BTreeMap<String, u64>, f64) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap_or_default();
    let url = format!("http://{addr}/api/auth/login");
    let started = Instant::now();
    let results = futures_util::stream::iter(users)
        .map(|u| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .json(&json!({"email": u.email, "password": "parley-load-password"}))
                    .send()
                    .await;
                let us = t.elapsed().as_micros() as u64;
                match res {
                    Ok(r) if r.status().is_success() => (us, Ok(())),
                    Ok(r) => (us, Err(format!("http_{}", r.status().as_u16()))),
                    Err(e) => (
                        us,
                        Err(if e.is_timeout() {
                            "timeout"
                        } else {
                            "request_error"
                        }
                        .to_owned()),
                    ),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut hist = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
    let mut ok = 0;
    let mut failures = BTreeMap::new();
    for (us, r) in results {
        hist.saturating_record(us.max(1));
        match r {
            Ok(()) => ok += 1,
            Err(e) => *failures.entry(e).or_default() += 1,
        }
    }
    (hist, ok, failures, secs)
}
