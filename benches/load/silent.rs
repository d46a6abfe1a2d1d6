//! `silent`: many TCP connections that never send a byte, the cheapest way to hold a
//! server's descriptors. Worker processes (each from its own source address, since one
//! process may hold only so many descriptors) open the sockets and wait for the server
//! to close them; meanwhile the harness samples the server's descriptors and memory and
//! asks `GET /healthz` on a fresh connection every half second.
//!
//! What Parley should do: hold at most `--max-http-connections`, answer the rest 503
//! `too_many_connections` at once, close every silent socket after
//! `--idle-connection-timeout`, and answer `/healthz` again once they are gone.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;

use crate::SilentArgs;
use crate::procstat;
use crate::report::{self, Table, f1};
use crate::target::{System, Target};

/// What one worker saw of its sockets.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct WorkerReport {
    requested: usize,
    connected: usize,
    connect_errors: BTreeMap<String, u64>,
    /// Answered 503 `too_many_connections`.
    refused: usize,
    /// Seconds from connecting to the 503, the slowest.
    refused_max_secs: f64,
    /// Closed by the server without a byte (EOF or reset).
    closed: usize,
    /// Seconds from connecting to the close: sorted, for percentiles.
    close_secs: Vec<f64>,
    /// Answered something else.
    other: usize,
    /// Still open when the worker gave up waiting.
    still_open: usize,
}

enum Outcome {
    Refused(Duration),
    Closed(Duration),
    Other,
    StillOpen,
}

/// `silent-worker`: opens `count` silent sockets from `source` and reports how each
/// ended, as one JSON line.
pub(crate) async fn worker(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    count: usize,
    concurrency: usize,
    wait: Duration,
) {
    let connecting = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let connecting = connecting.clone();
        tasks.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.ok();
            let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
            if let Some(ip) = source {
                socket
                    .bind((ip, 0).into())
                    .map_err(|e| format!("bind: {e}"))?;
            }
            let mut stream = tokio::time::timeout(Duration::from_secs(30), socket.connect(addr))
                .await
                .map_err(|_| "connect_timeout".to_owned())?
                .map_err(|e| format!("connect: {}", e.kind()))?;
            let connected = Instant::now();
            drop(permit);
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(wait, async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            Ok::<_, String>(match read {
                Err(_) => Outcome::StillOpen,
                Ok(()) if got.is_empty() => Outcome::Closed(connected.elapsed()),
                Ok(()) if got.starts_with(b"HTTP/1.1 503") => Outcome::Refused(connected.elapsed()),
                Ok(()) => Outcome::Other,
            })
        }));
    }
    let mut report = WorkerReport {
        requested: count,
        ..WorkerReport::default()
    };
    for task in tasks {
        match task.await {
            Ok(Ok(outcome)) => {
                report.connected += 1;
                match outcome {
                    Outcome::Refused(after) => {
                        report.refused += 1;
                        report.refused_max_secs = report.refused_max_secs.max(after.as_secs_f64());
                    }
                    Outcome::Closed(after) => {
                        report.closed += 1;
                        report.close_secs.push(after.as_secs_f64());
                    }
                    Outcome::Other => report.other += 1,
                    Outcome::StillOpen => report.still_open += 1,
                }
            }
            Ok(Err(e)) => {
                let kind = e.split(':').next().unwrap_or("connect").to_owned();
                *report.connect_errors.entry(kind).or_default() += 1;
            }
            Err(_) => *report.connect_errors.entry("panic".into()).or_default() += 1,
        }
    }
    report.close_secs.sort_by(f64::total_cmp);
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
}

/// One look at the server: its descriptors, memory and `/healthz`.
#[derive(Debug, Serialize)]
struct Point {
    secs: f64,
    fds: usize,
    rss_mib: f64,
    healthz: Option<u16>,
    healthz_ms: f64,
}

/// `GET /healthz` on a fresh connection: the status (None: no answer in 2 s).
async fn healthz(addr: SocketAddr) -> (Option<u16>, f64) {
    let started = Instant::now();
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: parley\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.ok()?;
        line.split(' ').nth(1)?.parse::<u16>().ok()
    };
    let status = tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten();
    (status, started.elapsed().as_secs_f64() * 1000.0)
}

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) async fn silent(args: SilentArgs) {
    let mut target = match Target::start(
        System::Parley,
        &args.common.start,
        args.common.start.base_port,
        1,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("parley: {e}");
            std::process::exit(1);
        }
    };
    let pid = target.pid.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline_fds = descriptors(pid);
    let exe = std::env::current_exe().expect("the harness's own path");
    let per = args.per_process.max(1);
    let mut workers = Vec::new();
    let started = Instant::now();
    let mut left = args.sockets;
    let mut k = 0u8;
    while left > 0 {
        let count = left.min(per);
        left -= count;
        k += 1;
        // Each worker from its own source address: 127.0.0.2, .3, ...
        let source = Ipv4Addr::new(127, 0, 0, 1 + k);
        let child = tokio::process::Command::new(&exe)
            .arg("silent-worker")
            .arg(format!("--addr={}", target.addr))
            .arg(format!("--source-ip={source}"))
            .arg(format!("--count={count}"))
            .arg(format!("--concurrency={}", args.concurrency))
            .arg(format!("--wait={}", args.wait))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("a worker process");
        workers.push(tokio::spawn(async move {
            let out = child.wait_with_output().await.ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            serde_json::from_str::<WorkerReport>(text.lines().last()?).ok()
        }));
    }
    let mut points = Vec::new();
    while workers.iter().any(|w| !w.is_finished()) {
        let (status, ms) = healthz(target.addr).await;
        let point = Point {
            secs: started.elapsed().as_secs_f64(),
            fds: descriptors(pid),
            rss_mib: procstat::sample(Some(pid)).map_or(0.0, |s| s.rss_kib as f64 / 1024.0),
            healthz: status,
            healthz_ms: ms,
        };
        if args.timeline {
            println!(
                "{:6.1} s  fds {:6}  rss {:6.1} MiB  healthz {:?} in {:.1} ms",
                point.secs, point.fds, point.rss_mib, point.healthz, point.healthz_ms
            );
        }
        points.push(point);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut total = WorkerReport::default();
    for w in workers {
        let Ok(Some(r)) = w.await else {
            eprintln!("a worker failed to report");
            continue;
        };
        total.requested += r.requested;
        total.connected += r.connected;
        for (k, v) in r.connect_errors {
            *total.connect_errors.entry(k).or_default() += v;
        }
        total.refused += r.refused;
        total.refused_max_secs = total.refused_max_secs.max(r.refused_max_secs);
        total.closed += r.closed;
        total.close_secs.extend(r.close_secs);
        total.other += r.other;
        total.still_open += r.still_open;
    }
    total.close_secs.sort_by(f64::total_cmp);
    let peak_fds = points.iter().map(|p| p.fds).max().unwrap_or(0);
    let peak_rss = points.iter().map(|p| p.rss_mib).fold(0.0, f64::max);
    let mut healthz_by_status: BTreeMap<String, u64> = BTreeMap::new();
    for p in &points {
        let key = p.healthz.map_or("no answer".to_owned(), |s| s.to_string());
        *healthz_by_status.entry(key).or_default() += 1;
    }
    let healthz_max_ms = points.iter().map(|p| p.healthz_ms).fold(0.0, f64::max);
    // The first `/healthz` answered 200 again after the server was full.
    let full_at = points.iter().position(|p| p.healthz == Some(503));
    let back_at = full_at.and_then(|i| {
        points[i..]
            .iter()
            .find(|p| p.healthz == Some(200))
            .map(|p| p.secs)
    });
    let closes = &total.close_secs;
    let mut table = Table::new(&["figure", "value"]);
    let mut row = |k: &str, v: String| table.row(vec![k.to_owned(), v]);
    row(
        "silent sockets opened",
        format!("{}/{}", total.connected, total.requested),
    );
    row("connect errors", format!("{:?}", total.connect_errors));
    row("held, then closed by the server", total.closed.to_string());
    row(
        "refused with 503 too_many_connections",
        total.refused.to_string(),
    );
    row(
        "slowest 503",
        format!("{:.2} s after connecting", total.refused_max_secs),
    );
    row(
        "other answers / still open at the end",
        format!("{} / {}", total.other, total.still_open),
    );
    row(
        "time to close (from connect): min / p50 / p99 / max",
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1} s",
            percentile(closes, 0.0),
            percentile(closes, 0.5),
            percentile(closes, 0.99),
            percentile(closes, 1.0)
        ),
    );
    row(
        "server descriptors: before / peak",
        format!("{baseline_fds} / {peak_fds}"),
    );
    row("server RSS peak", format!("{} MiB", f1(peak_rss)));
    row(
        "healthz answers during the run",
        format!("{healthz_by_status:?}"),
    );
    row("healthz slowest answer", format!("{healthz_max_ms:.1} ms"));
    row(
        "healthz 200 again (after the 503s) at",
        back_at.map_or("-".into(), |s| format!("{s:.1} s")),
    );
    println!(
        "\nsilent: {} sockets that send nothing, {} per process",
        args.sockets, per
    );
    table.print();
    let path = report::write(
        "silent",
        json!({"params": {"sockets": args.sockets, "per_process": per,
                "concurrency": args.concurrency, "wait_s": args.wait,
                "parley_args": args.common.start.parley_args},
               "result": {"workers": total, "baseline_fds": baseline_fds, "peak_fds": peak_fds,
                "peak_rss_mib": peak_rss, "healthz": healthz_by_status,
                "healthz_max_ms": healthz_max_ms, "healthz_back_at_s": back_at},
               "timeline": points}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
    target.stop();
}
