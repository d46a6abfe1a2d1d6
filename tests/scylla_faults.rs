//! The ScyllaDB store when its cluster is not there.
//!
//! - At start: the real binary, pointed at a port nobody listens on, prints one line and
//!   exits 1 (needs no CQL node, so it always runs).
//! - While running: a CQL node of the test's own (started with `scripts/cql-node` on
//!   free ports in a temp dir, so the shared node is not disturbed) is stopped under a
//!   running server and started again. Needs Java, so it runs when `SCYLLA_URI` is set,
//!   as the other live tests do.

// Test modules share helpers with `pub`; the lint is for library APIs.
#![allow(unreachable_pub)]

#[path = "api/helpers.rs"]
mod helpers;
#[path = "support/live_cql.rs"]
mod live_cql;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use helpers::{TestApp, WsClient, spawn_app_with};

const BIN: &str = env!("CARGO_BIN_EXE_parley");

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn an_unreachable_cql_node_at_start_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let node = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["serve", "--store", "scylla", "--scylla-uri", &node])
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("PARLEY_JWT_SECRET")
        .output()
        .expect("parley runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    assert!(
        lines[0].starts_with(&format!("parley: cannot reach {node}")),
        "{stderr}"
    );
    assert!(lines[0].contains("Connection refused"), "{stderr}");
}

/// A CQL node of this test's own, stopped when dropped.
struct Node {
    dir: PathBuf,
    ports: (u16, u16),
}

/// Runs `scripts/cql-node COMMAND DIR` for a node on `(native, storage)` ports.
fn cql_node(command: &str, dir: &Path, (port, storage_port): (u16, u16)) -> String {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cql-node"))
        .arg(command)
        .arg(dir)
        .env("CQL_PORT", port.to_string())
        .env("CQL_STORAGE_PORT", storage_port.to_string())
        .env("CQL_HEAP", "384m")
        .output()
        .expect("cql-node runs");
    assert!(
        out.status.success(),
        "cql-node {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Node {
    /// Starts it (again); its contact point.
    async fn start(&self) -> String {
        let (dir, ports) = (self.dir.clone(), self.ports);
        tokio::task::spawn_blocking(move || cql_node("start", &dir, ports))
            .await
            .unwrap()
    }

    async fn stop(&self) {
        let (dir, ports) = (self.dir.clone(), self.ports);
        tokio::task::spawn_blocking(move || cql_node("stop", &dir, ports))
            .await
            .unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cql-node");
        let _ = Command::new(script).arg("stop").arg(&self.dir).output();
    }
}

/// The next frame that is not a delivery of someone else's message.
async fn answer(ws: &mut WsClient) -> Value {
    loop {
        let frame = ws.recv().await;
        if frame["type"] != "message" {
            return frame;
        }
    }
}

async fn history(app: &TestApp, token: &str, with: &str) -> reqwest::Response {
    app.get(&format!("/api/messages/{with}?limit=100"), Some(token))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_under_load_fails_sends_cleanly_and_parley_recovers_when_it_is_back() {
    if live_cql::uri().is_none() {
        live_cql::say_skipped("the CQL node stop-and-start test");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let node = Node {
        dir: scratch.path().join("node"),
        ports: (free_port(), free_port()),
    };
    let uri = node.start().await;
    let keyspace = live_cql::unique_keyspace();
    let app = spawn_app_with(|c| {
        c.store.kind = parley::config::StoreKind::Scylla;
        c.store.scylla_uri = Some(uri.parse().unwrap());
        c.store.scylla_keyspace = keyspace.parse().unwrap();
        c.store.scylla_request_timeout = Duration::from_secs(3);
    })
    .await;
    let (ada, bob, cyd) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cyd").await,
    );
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    a.send_to(&bob.id, "before", "c1").await;
    let ack = answer(&mut a).await;
    assert_eq!(
        (ack["type"].as_str(), ack["message"]["seq"].as_u64()),
        (Some("ack"), Some(1))
    );
    assert_eq!(b.recv().await["message"]["content"], "before");

    node.stop().await;

    // A send to a live conversation: its commit fails, and says so.
    a.send_to(&bob.id, "during", "c2").await;
    let refused = answer(&mut a).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "store_unavailable", "{refused}");
    assert_eq!(refused["clientId"], "c2");
    // A send that needs the store before it reaches a conversation: the same.
    a.send_to(&cyd.id, "to someone new", "n1").await;
    let refused = answer(&mut a).await;
    assert_eq!(refused["code"], "store_unavailable", "{refused}");
    // Over REST, a send and a read fail with an error envelope.
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"receiverId": bob.id, "content": "rest during", "clientId": "r1"}),
        )
        .await;
    helpers::assert_error(res, 503, "store_unavailable").await;
    let res = history(&app, &ada.token, &bob.id).await;
    assert!(res.status().is_server_error(), "{}", res.status());
    let body: Value = res.json().await.expect("an error envelope");
    assert!(body["error"]["code"].is_string(), "{body}");
    // Nothing of it reached Bob.
    assert!(b.try_recv(Duration::from_millis(500)).await.is_none());

    node.start().await;
    let back = Instant::now();

    // The driver reconnects by itself (its back-off is at most 10 s); the client retries
    // with the same client id until the store takes it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ack = loop {
        a.send_to(&bob.id, "during", "c2").await;
        let frame = answer(&mut a).await;
        if frame["type"] == "ack" {
            break frame;
        }
        assert_eq!(frame["code"], "store_unavailable", "{frame}");
        assert!(Instant::now() < deadline, "no recovery within 60 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "the first send after the node came back was acked after {:?}",
        back.elapsed()
    );
    assert_eq!(ack["message"]["seq"], 2, "no gap, no reuse: {ack}");
    assert_eq!(b.recv().await["message"]["content"], "during");
    a.send_to(&cyd.id, "to someone new", "n1").await;
    assert_eq!(answer(&mut a).await["type"], "ack");

    // History holds exactly what was acked, once each.
    let res = history(&app, &bob.token, &ada.id).await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    let bodies: Vec<(u64, &str)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(bodies, [(1, "before"), (2, "during")]);

    app.stop().await;
    drop(node);
}
