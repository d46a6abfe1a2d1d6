//! The sync storm of issue #17, measured: four sessions of one user looping connect and
//! a full sync (every `more: true` followed) for 15 s against the real binary, counting
//! the bytes of what the server sends them (WebSocket text payloads, and the bodies of
//! refused handshakes; not HTTP headers or WebSocket framing), once with the default
//! per-user limits and once with them lifted (what the server did before they existed).
//!
//! A measurement, not a check, and 30 s long: run it by hand (RELIABILITY.md's row):
//!
//! ```text
//! cargo test --test api sync_storm -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::server::Server;

/// Messages in the history every full sync replays.
const HISTORY: usize = 2_000;
/// Characters in each.
const BODY_CHARS: usize = 400;
const SESSIONS: usize = 4;
const STORM: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Tally {
    bytes: AtomicU64,
    connects: AtomicU64,
    refused_connects: AtomicU64,
    full_syncs: AtomicU64,
    refused_syncs: AtomicU64,
}

async fn register(http: &reqwest::Client, base: &str, name: &str) -> (String, String) {
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"name": name, "email": format!("{name}@example.com"), "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

/// A session, or the size of the refusal's body (a 429 envelope) when refused.
async fn open(addr: &str, token: &str) -> Result<crate::helpers::WsClient, usize> {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(crate::helpers::WsClient { ws }),
        Err(WsError::Http(response)) => Err(response.body().as_ref().map_or(0, Vec::len)),
        Err(_) => Err(0),
    }
}

/// One misbehaving client: connect, sync everything, disconnect, again, until `end`.
async fn storm(addr: String, token: String, end: Instant, tally: Arc<Tally>) {
    while Instant::now() < end {
        let mut client = match open(&addr, &token).await {
            Ok(client) => client,
            Err(body) => {
                tally.refused_connects.fetch_add(1, Ordering::Relaxed);
                tally.bytes.fetch_add(body as u64, Ordering::Relaxed);
                continue;
            }
        };
        tally.connects.fetch_add(1, Ordering::Relaxed);
        let mut cursors = json!({});
        'session: loop {
            if client
                .ws
                .send(WsMessage::text(
                    json!({"type": "sync", "cursors": cursors}).to_string(),
                ))
                .await
                .is_err()
            {
                break;
            }
            loop {
                let Ok(Some(Ok(frame))) =
                    tokio::time::timeout_at(end.into(), client.ws.next()).await
                else {
                    break 'session;
                };
                let WsMessage::Text(text) = frame else {
                    continue;
                };
                tally.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                let frame: Value = serde_json::from_str(&text).unwrap();
                match frame["type"].as_str() {
                    Some("synced") if frame["more"] == true => {
                        cursors = frame["cursors"].clone();
                        continue 'session;
                    }
                    Some("synced") => {
                        tally.full_syncs.fetch_add(1, Ordering::Relaxed);
                        break 'session;
                    }
                    Some("error") => {
                        tally.refused_syncs.fetch_add(1, Ordering::Relaxed);
                        break 'session;
                    }
                    _ => {}
                }
            }
        }
        let _ = client.ws.close(None).await;
    }
}

async fn measure(limits: &[&str]) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    // Writing the history fast needs the send limit lifted; it is not what is measured.
    let mut flags = vec!["--send-rate", "100000", "--send-burst", "100000"];
    flags.extend_from_slice(limits);
    let server = Server::start(dir.path(), "info", &flags).await;
    let (http, base) = (reqwest::Client::new(), server.base());
    let (_, ada) = register(&http, &base, "ada").await;
    let (bob_id, bob) = register(&http, &base, "bob").await;
    // The history: Ada writes to Bob over one session, many sends in flight.
    let mut writer = open(&server.addr, &ada).await.expect("a session");
    assert_eq!(writer.recv().await["type"], "ready");
    let body = "x".repeat(BODY_CHARS);
    for i in 0..HISTORY {
        writer
            .send(json!({"type": "send", "receiverId": bob_id, "content": body, "clientId": format!("h{i}")}))
            .await;
        if i % 200 == 199 {
            let mut acked = 0;
            while acked < 200 {
                if writer.recv().await["type"] == "ack" {
                    acked += 1;
                }
            }
        }
    }
    drop(writer);

    let tally = Arc::new(Tally::default());
    let end = Instant::now() + STORM;
    let storms: Vec<_> = (0..SESSIONS)
        .map(|_| tokio::spawn(storm(server.addr.clone(), bob.clone(), end, tally.clone())))
        .collect();
    for s in storms {
        s.await.unwrap();
    }
    Arc::into_inner(tally).unwrap()
}

fn report(what: &str, t: &Tally) {
    let mb = t.bytes.load(Ordering::Relaxed) as f64 / 1e6;
    eprintln!(
        "{what}: {mb:.1} MB sent in {}s to {SESSIONS} sessions; {} connects ({} refused), \
         {} full syncs, {} syncs refused",
        STORM.as_secs(),
        t.connects.load(Ordering::Relaxed),
        t.refused_connects.load(Ordering::Relaxed),
        t.full_syncs.load(Ordering::Relaxed),
        t.refused_syncs.load(Ordering::Relaxed),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 30 s measurement for RELIABILITY.md; run with --ignored --nocapture"]
async fn sync_storm_bytes_sent_with_and_without_the_per_user_limits() {
    let limited = measure(&[]).await;
    report(
        "default limits (60 syncs and 60 opens per user per minute)",
        &limited,
    );
    let unlimited = measure(&[
        "--syncs-per-minute",
        "1000000",
        "--session-opens-per-minute",
        "1000000",
    ])
    .await;
    report("limits lifted", &unlimited);
    assert!(
        limited.bytes.load(Ordering::Relaxed) < unlimited.bytes.load(Ordering::Relaxed),
        "the limits bound what a storm gets"
    );
}
