//! The `group` scenario: one group of N members, every member connected, one member
//! sending into it at a fixed rate (open loop): events delivered per second across the
//! members, and the server's CPU time per delivered event, for Parley (every message
//! sequenced and fsynced once, then fanned out) and for the bare relay fanning out the
//! same frames (nothing stored, the frame encoded once). Sizes 10, 100 and 1,000 by
//! default, one fresh server per system and size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Incoming};
use crate::procstat;
use crate::report::{self, Table, f0, f1, f2};
use crate::scenarios::{settle, start};
use crate::target::{System, Target};

#[derive(Args, Clone)]
pub(crate) struct GroupArgs {
    #[command(flatten)]
    pub(crate) common: crate::Common,
    /// Group sizes to measure (members, the sender included).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100, 1000])]
    sizes: Vec<usize>,
    /// Messages per second into the group.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Seconds of sending before measuring.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
}

/// One measured run.
struct Measured {
    delivered_per_s: f64,
    server_cpu_us_per_delivered: Option<f64>,
    server_cpu_percent: Option<f64>,
    errors: u64,
}

pub(crate) async fn group(args: GroupArgs) {
    let systems = args.common.systems_or(&[System::Parley, System::Relay]);
    let mut results = Vec::new();
    let mut table = Table::new(&[
        "system",
        "members",
        "msgs/s in",
        "delivered/s",
        "expected/s",
        "server CPU µs/delivered",
        "server CPU %",
        "errors",
    ]);
    let mut i = 0;
    for &size in &args.sizes {
        for &system in &systems {
            let Some(target) = start(system, &args.common, i, size, &mut results).await else {
                continue;
            };
            i += 1;
            settle(&target, &args.common).await;
            match run(&target, system, size, &args).await {
                Ok(m) => {
                    let expected = f64::from(args.rate) * (size - 1) as f64;
                    table.row(vec![
                        system.to_string(),
                        size.to_string(),
                        args.rate.to_string(),
                        f0(m.delivered_per_s),
                        f0(expected),
                        m.server_cpu_us_per_delivered.map_or("-".into(), f2),
                        m.server_cpu_percent.map_or("-".into(), f1),
                        m.errors.to_string(),
                    ]);
                    results.push(json!({
                        "system": system, "members": size, "rate": args.rate,
                        "delivered_per_s": m.delivered_per_s, "expected_per_s": expected,
                        "server_cpu_us_per_delivered": m.server_cpu_us_per_delivered,
                        "server_cpu_percent": m.server_cpu_percent, "errors": m.errors,
                    }));
                }
                Err(e) => {
                    eprintln!("{system} with {size} members: {e}");
                    results.push(json!({"system": system, "members": size, "error": e}));
                }
            }
            drop(target);
        }
    }
    table.print();
    let path = report::write(
        "group",
        json!({"results": results}),
        args.common.out.clone(),
    );
    println!("results: {}", path.display());
}

async fn run(
    target: &Target,
    system: System,
    size: usize,
    args: &GroupArgs,
) -> Result<Measured, String> {
    let users = &target.users[..size];
    let group = if system.is_parley() {
        create_group(target, size).await?
    } else {
        format!("group-{size}")
    };
    let measuring = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    // Every member but the sender reads; connections opened a few at a time.
    let mut readers = Vec::new();
    for chunk in users[1..].chunks(64) {
        let mut opened = Vec::new();
        for user in chunk {
            opened.push(client::connect(system, target.addr, user, None));
        }
        for ws in futures_util::future::join_all(opened).await {
            let mut ws = ws?;
            let (measuring, delivered) = (measuring.clone(), delivered.clone());
            readers.push(tokio::spawn(async move {
                while let Ok(text) = client::next_text(&mut ws).await {
                    if let Incoming::Delivery(_) = client::classify(system, &text)
                        && measuring.load(Ordering::Relaxed)
                    {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    let sender = client::connect(system, target.addr, &users[0], None).await?;
    let (mut sink, mut stream) = sender.split();
    if !system.is_parley() {
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        let frame = json!({"type": "group", "conversationId": group, "memberIds": ids});
        sink.send(Message::text(frame.to_string()))
            .await
            .map_err(|e| format!("registering the group: {e}"))?;
    }
    let errors = Arc::new(AtomicU64::new(0));
    let acks = {
        let errors = errors.clone();
        tokio::spawn(async move {
            while let Some(Ok(Message::Text(text))) = stream.next().await {
                if let Incoming::Error(code) = client::classify(system, text.as_str()) {
                    eprintln!("sender error: {code}");
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let body_bytes = args.common.body_bytes;
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let stop_at = Instant::now() + Duration::from_secs(args.warmup + args.duration);
    let sending = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        let mut n = 0u64;
        while Instant::now() < stop_at {
            tick.tick().await;
            n += 1;
            let body = client::body(n, body_bytes);
            let frame = format!(
                r#"{{"type":"send","conversationId":"{group}","content":"{body}","clientId":"g-{n}"}}"#
            );
            if sink.send(Message::text(frame)).await.is_err() {
                break;
            }
        }
        sink
    });
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let cpu_a = procstat::sample(target.pid);
    let t0 = Instant::now();
    let c0 = delivered.load(Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let c1 = delivered.load(Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu_b = procstat::sample(target.pid);
    measuring.store(false, Ordering::Relaxed);
    let _ = sending.await;
    acks.abort();
    for r in readers {
        r.abort();
    }
    let count = (c1 - c0) as f64;
    let cpu_percent = match (cpu_a, cpu_b) {
        (Some(a), Some(b)) => Some(procstat::cpu_percent(&a, &b)),
        _ => None,
    };
    Ok(Measured {
        delivered_per_s: count / elapsed,
        server_cpu_us_per_delivered: cpu_percent
            .filter(|_| count > 0.0)
            .map(|p| p / 100.0 * elapsed * 1e6 / count),
        server_cpu_percent: cpu_percent,
        errors: errors.load(Ordering::Relaxed),
    })
}

/// Ids per request: a request body holds at most 16 KiB, about 400 ids.
const IDS_PER_REQUEST: usize = 300;

/// Creates the group over REST as the first user, then adds every other user, a few
/// hundred ids per request.
async fn create_group(target: &Target, size: usize) -> Result<String, String> {
    let users = &target.users[..size];
    let ids: Vec<&str> = users[1..].iter().map(|u| u.id.as_str()).collect();
    let mut chunks = ids.chunks(IDS_PER_REQUEST);
    let first = chunks.next().unwrap_or_default();
    let http = reqwest::Client::new();
    let body = post(
        &http,
        target,
        "/api/conversations",
        json!({"name": format!("load {size}"), "memberIds": first}),
    )
    .await?;
    let id = body["conversation"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("creating the group: no id in {body}"))?;
    for chunk in chunks {
        let path = format!("/api/conversations/{id}/members");
        post(&http, target, &path, json!({"userIds": chunk})).await?;
    }
    Ok(id)
}

/// POSTs `body` as the first user; the answer's body when it is a 201.
async fn post(
    http: &reqwest::Client,
    target: &Target,
    path: &str,
    body: Value,
) -> Result<Value, String> {
    let res = http
        .post(format!("http://{}{path}", target.addr))
        .bearer_auth(&target.users[0].token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = res.status();
    let answer: Value = res.json().await.map_err(|e| format!("POST {path}: {e}"))?;
    if status.as_u16() != 201 {
        return Err(format!("POST {path}: {status} {answer}"));
    }
    Ok(answer)
}
