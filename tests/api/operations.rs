//! What operators see: `/metrics` counters moving by exactly the traffic, the admin
//! inspection route and its guard, `parley admin stats`, the JSON supervision log after
//! an injected panic, and no secret or message body in any log line.
//!
//! Metrics go to one recorder per process, and this binary runs many servers at once,
//! so a counter here moves with every test's traffic. The test that checks exact
//! amounts therefore runs itself again in a child process of this binary, filtered to
//! that one test ([`in_own_process`]): there, the only traffic is its own, and counters
//! read before and after differ by exactly what it did.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use parley::config::Secret;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};
use crate::server::Server;

const ADMIN: &str = "admin-token-for-tests-0123456789";

/// Runs the calling test in a process of its own. In the parent: starts this test
/// binary again, filtered to exactly `name`, asserts it ran one test and passed, and
/// returns false (the caller returns). In that child: returns true (the caller runs).
async fn in_own_process(name: &str) -> bool {
    const MARK: &str = "PARLEY_TEST_OWN_PROCESS";
    if std::env::var(MARK).is_ok_and(|v| v == name) {
        return true;
    }
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(MARK, name)
        .output()
        .await
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process:\n{stdout}\n{stderr}"
    );
    false
}

type Labels<'a> = &'a [(&'a str, &'a str)];

/// One scrape of `/metrics`, by series (`name` plus sorted labels).
struct Scrape(HashMap<String, f64>);

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut map = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (key, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let (name, labels) = match key.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
                None => (key, Vec::new()),
            };
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            map.insert(series(name, &labels), value.parse().expect("a number"));
        }
        Self(map)
    }

    /// The value of a series; 0 when it was never recorded.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0.get(&series(name, labels)).copied().unwrap_or(0.0)
    }
}

/// `a="x",b="y"` (values here never hold quotes or commas).
fn parse_labels(raw: &str) -> Vec<(String, String)> {
    raw.split("\",")
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("label=value");
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

async fn scrape(app: &TestApp) -> Scrape {
    let res = app.get("/metrics", None).await;
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    Scrape::parse(&res.text().await.unwrap())
}

#[tokio::test]
async fn a_scripted_conversation_moves_the_counters_by_exactly_its_own_traffic() {
    if !in_own_process(
        "operations::a_scripted_conversation_moves_the_counters_by_exactly_its_own_traffic",
    )
    .await
    {
        return;
    }
    // Ada's eight sends fit the burst; Cy's ninth does not.
    let app = spawn_app_with(|c| {
        c.send_rate_per_second = 1;
        c.send_burst = 8;
    })
    .await;
    let before = scrape(&app).await;
    let mut scrapes = 1;

    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let (mut a, mut b, mut c) = (
        app.connect(&ada.token).await,
        app.connect(&bob.token).await,
        app.connect(&cy.token).await,
    );
    // Five sends over WebSocket, each acked and delivered to Bob.
    for i in 1..=5 {
        a.send_to(&bob.id, &format!("message {i}"), &format!("m{i}"))
            .await;
        assert_eq!(a.recv().await["type"], "ack");
        assert_eq!(b.recv().await["type"], "message");
    }
    // A retry: acked as a duplicate, stored and delivered once only.
    a.send_to(&bob.id, "message 3", "m3").await;
    assert_eq!(a.recv().await["duplicate"], true);
    // To herself: refused.
    a.send_to(&ada.id, "note to self", "self").await;
    assert_eq!(a.recv().await["code"], "cannot_message_self");
    // Over REST: delivered to Bob and to Ada's own session.
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"receiverId": bob.id, "content": "by REST"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(b.recv().await["message"]["content"], "by REST");
    assert_eq!(a.recv().await["message"]["content"], "by REST");
    // Cy pipelines nine sends: eight reach the core (and are refused), one is rate limited.
    for i in 0..9 {
        c.send_to(&cy.id, "hi me", &format!("c{i}")).await;
    }
    let mut codes = BTreeMap::new();
    for _ in 0..9 {
        *codes
            .entry(c.recv().await["code"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(
        codes,
        BTreeMap::from([
            ("cannot_message_self".to_owned(), 8),
            ("rate_limited".to_owned(), 1)
        ])
    );
    // Ada leaves; her session's end is counted once the server has seen the close.
    a.ws.close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = scrape(&app).await;
        scrapes += 1;
        let closed = now.get(
            "parley_sessions_closed_total",
            &[("reason", "client_close")],
        ) - before.get(
            "parley_sessions_closed_total",
            &[("reason", "client_close")],
        );
        if closed >= 1.0 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let expected: &[(&str, Labels, f64)] = &[
        (
            "parley_messages_received_total",
            &[("transport", "ws")],
            15.0,
        ),
        (
            "parley_messages_received_total",
            &[("transport", "rest")],
            1.0,
        ),
        ("parley_messages_acked_total", &[("transport", "ws")], 6.0),
        ("parley_messages_acked_total", &[("transport", "rest")], 1.0),
        ("parley_messages_duplicate_total", &[], 1.0),
        (
            "parley_messages_rejected_total",
            &[("code", "cannot_message_self")],
            9.0,
        ),
        ("parley_rate_limit_hits_total", &[("limiter", "sends")], 1.0),
        ("parley_send_latency_seconds_count", &[], 16.0),
        // Bob got six live messages, Ada one (the REST send).
        ("parley_messages_delivered_total", &[], 7.0),
        ("parley_delivery_latency_seconds_count", &[], 7.0),
        ("parley_messages_replayed_total", &[], 0.0),
        // Six messages stored (the duplicate is not), in however many commits.
        ("parley_persistence_batch_size_sum", &[], 6.0),
        ("parley_persistence_commit_failures_total", &[], 0.0),
        ("parley_sessions_opened_total", &[], 3.0),
        (
            "parley_sessions_closed_total",
            &[("reason", "client_close")],
            1.0,
        ),
        ("parley_slow_consumer_disconnects_total", &[], 0.0),
        (
            "parley_actor_failures_total",
            &[("kind", "conversation")],
            0.0,
        ),
        (
            "parley_actor_restarts_total",
            &[("kind", "conversation")],
            0.0,
        ),
        (
            "parley_http_requests_total",
            &[("route", "/api/auth/register"), ("status", "201")],
            3.0,
        ),
        (
            "parley_http_requests_total",
            &[("route", "/ws"), ("status", "101")],
            3.0,
        ),
        (
            "parley_http_requests_total",
            &[("route", "/api/messages/send"), ("status", "201")],
            1.0,
        ),
        // Every scrape but the last is counted by the last.
        (
            "parley_http_requests_total",
            &[("route", "/metrics"), ("status", "200")],
            f64::from(scrapes - 1),
        ),
        (
            "parley_http_request_duration_seconds_count",
            &[("route", "/api/auth/register")],
            3.0,
        ),
    ];
    for (name, labels, want) in expected {
        assert_eq!(delta(name, labels), *want, "{}", series(name, labels));
    }
    let commits = delta("parley_persistence_batch_size_count", &[]);
    assert!((1.0..=6.0).contains(&commits), "commits: {commits}");
    assert_eq!(
        delta("parley_persistence_commit_seconds_count", &[]),
        commits
    );
    // Gauges are this server's own, sampled at the scrape.
    assert_eq!(after.get("parley_sessions_open", &[]), 2.0);
    assert_eq!(after.get("parley_actors_alive", &[("kind", "user")]), 3.0);
    assert_eq!(
        after.get("parley_actors_alive", &[("kind", "conversation")]),
        1.0
    );
    assert_eq!(after.get("parley_persistence_queue_messages", &[]), 0.0);
    app.stop().await;
}

#[tokio::test]
async fn admin_actors_refuses_a_missing_or_wrong_token_and_shows_the_live_tree_with_the_right_one()
{
    let app = spawn_app_with(|c| c.admin_token = Some(Secret(ADMIN.into()))).await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    for i in 0..3 {
        a.send_to(&bob.id, "hello", &format!("h{i}")).await;
        assert_eq!(a.recv().await["type"], "ack");
        assert_eq!(b.recv().await["type"], "message");
    }
    let ack = {
        a.send_to(&bob.id, "one more", "h3").await;
        a.recv().await
    };
    let conversation = ack["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_error(app.get("/admin/actors", None).await, 401, "unauthorized").await;
    let wrong = format!("{}x", &ADMIN[..ADMIN.len() - 1]);
    assert_error(
        app.get("/admin/actors", Some(&wrong)).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        app.get("/admin/actors", Some("short")).await,
        401,
        "unauthorized",
    )
    .await;
    // A user's token is not an admin token.
    assert_error(
        app.get("/admin/actors", Some(&ada.token)).await,
        401,
        "unauthorized",
    )
    .await;

    // A single node is in no cluster, and says so to the same check a cluster answers.
    let res = app.get("/admin/cluster", Some(ADMIN)).await;
    assert_eq!(res.status(), 200);
    let cluster: Value = res.json().await.unwrap();
    assert_eq!(
        cluster,
        json!({"node": null, "degraded": false, "nodes": []})
    );
    assert_error(app.get("/admin/cluster", None).await, 401, "unauthorized").await;

    let res = app.get("/admin/actors", Some(ADMIN)).await;
    assert_eq!(res.status(), 200);
    let tree: Value = res.json().await.unwrap();
    assert_eq!(
        tree["counts"],
        json!({"user": 2, "conversation": 1}),
        "{tree}"
    );
    assert_eq!(tree["sessions"], 2);
    let busiest = tree["busiest"].as_array().unwrap();
    let find = |id: &str| {
        busiest
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed: {tree}"))
            .clone()
    };
    let conv = find(&conversation);
    assert_eq!(conv["kind"], "conversation");
    assert_eq!(conv["handled"], 4);
    assert_eq!(conv["queueDepth"], 0);
    assert_eq!(conv["restarts"], 0);
    assert!(conv["ageMs"].as_u64().unwrap() >= conv["idleMs"].as_u64().unwrap());
    for user in [&ada, &bob] {
        let u = find(&user.id);
        assert_eq!(
            (u["kind"].as_str(), u["sessions"].as_u64()),
            (Some("user"), Some(1))
        );
    }
    // Bob received four deliveries; Ada's own sends are acks, not deliveries.
    assert_eq!(find(&bob.id)["handled"], 4);
    let res = app.get("/admin/actors?limit=1", Some(ADMIN)).await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["busiest"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The same, as a table, from the command line.
    // (tokio's Command: the server runs on this test's thread.)
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "admin",
            "stats",
            "--server",
            &app.base,
            "--admin-token",
            ADMIN,
        ])
        .env_remove("PARLEY_ADMIN_TOKEN")
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("user 2  conversation 1"), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains(&conversation))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.starts_with("conversation"), "{row}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["admin", "stats", "--server", &app.base])
        .env("PARLEY_ADMIN_TOKEN", &wrong)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the admin token"));
    app.stop().await;
}

#[tokio::test]
async fn without_an_admin_token_the_admin_route_does_not_exist() {
    let app = spawn_app().await;
    assert_error(app.get("/admin/actors", None).await, 404, "not_found").await;
    assert_error(
        app.get("/admin/actors", Some(ADMIN)).await,
        404,
        "not_found",
    )
    .await;
    let res = app.post("/admin/actors", Some(ADMIN), &json!({})).await;
    assert_error(res, 404, "not_found").await;
    // Metrics need no token: keep them off the public side of the proxy.
    assert_eq!(app.get("/metrics", None).await.status(), 200);
    app.stop().await;
}

#[test]
fn an_admin_token_shorter_than_16_characters_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("PARLEY_ADMIN_TOKEN", "short-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
    assert!(
        !stderr.contains("short-token"),
        "the token itself is never printed: {stderr}"
    );
}

async fn register(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
) -> (String, String) {
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"name": name, "email": format!("{name}@example.com"), "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

async fn send_rest(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    to: &str,
    body: &str,
) -> reqwest::Response {
    http.post(format!("{base}/api/messages/send"))
        .bearer_auth(token)
        .json(&json!({"receiverId": to, "content": body}))
        .send()
        .await
        .unwrap()
}

#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn after_an_injected_panic_the_json_log_holds_actor_failed_and_actor_restarted_for_that_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "info", &["--admin-token", ADMIN]).await;
    let (http, base) = (reqwest::Client::new(), server.base());
    let (_, ada) = register(&http, &base, "ada", "correct horse battery").await;
    let (bob_id, _) = register(&http, &base, "bob", "correct horse battery").await;
    let first = send_rest(&http, &base, &ada, &bob_id, "first").await;
    assert_eq!(first.status(), 201);
    let conv = first.json::<Value>().await.unwrap()["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = send_rest(
        &http,
        &base,
        &ada,
        &bob_id,
        actors::fault::PANIC_CONVERSATION,
    )
    .await;
    assert_error(res, 503, "conversation_failed").await;

    let about = |event: &'static str, conv: String| {
        move |l: &Value| {
            l["message"] == event
                && l["actor_kind"] == "conversation"
                && l["actor_id"] == conv.as_str()
        }
    };
    let failed = server.wait_for(about("actor_failed", conv.clone())).await;
    assert_eq!(failed["target"], "parley::supervision");
    assert_eq!(failed["level"], "ERROR");
    assert!(
        failed["error"].as_str().unwrap().contains("injected fault"),
        "{failed}"
    );
    let restarted = server
        .wait_for(about("actor_restarted", conv.clone()))
        .await;
    assert_eq!(restarted["restart_count"], 1);
    assert_eq!(restarted["level"], "WARN");
    // The panic itself is one JSON line too.
    let panic = server.wait_for(|l| l["target"] == "parley::panic").await;
    assert!(
        panic["panic_message"]
            .as_str()
            .unwrap()
            .contains("injected fault"),
        "{panic}"
    );

    // The restarted conversation works, and inspection counts the restart.
    assert_eq!(
        send_rest(&http, &base, &ada, &bob_id, "after")
            .await
            .status(),
        201
    );
    let tree: Value = http
        .get(format!("{base}/admin/actors"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = tree["busiest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == conv.as_str())
        .cloned();
    assert_eq!(entry.expect("listed")["restarts"], 1, "{tree}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = Scrape::parse(&metrics);
    assert_eq!(
        scrape.get("parley_actor_failures_total", &[("kind", "conversation")]),
        1.0
    );
    assert_eq!(
        scrape.get("parley_actor_restarts_total", &[("kind", "conversation")]),
        1.0
    );
    assert_eq!(
        scrape.get(
            "parley_messages_rejected_total",
            &[("code", "conversation_failed")]
        ),
        1.0
    );

    // Filtering the log by the conversation id tells its whole life, in order.
    let life: Vec<String> = server
        .lines()
        .await
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["actor_id"] == conv.as_str())
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        life,
        [
            "actor_started",
            "actor_failed",
            "actor_started",
            "actor_restarted"
        ]
    );
    for line in server.lines().await {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}

#[tokio::test]
async fn no_password_token_or_message_body_reaches_the_log_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    // Even asking for the WebSocket library's frame dumps explicitly.
    let mut server = Server::start(dir.path(), "trace,tungstenite::protocol=trace", &[]).await;
    let (http, base) = (reqwest::Client::new(), server.base());
    let password = "pw-MARKER-7f3a-correct-horse";
    let body = "body-MARKER-91c2 the secret plan";
    let (_, ada) = register(&http, &base, "ada", password).await;
    let (bob_id, bob) = register(&http, &base, "bob", "correct horse battery").await;
    let login = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    let login: Value = login.json().await.unwrap();
    let ada2 = login["token"].as_str().unwrap().to_owned();
    // Refresh tokens: one traded, then replayed (a reuse, which is logged as such).
    let refresh = login["refreshToken"].as_str().unwrap().to_owned();
    let traded = http
        .post(format!("{base}/api/auth/refresh"))
        .json(&json!({"refreshToken": refresh}))
        .send()
        .await
        .unwrap();
    let traded: Value = traded.json().await.unwrap();
    let refresh2 = traded["refreshToken"].as_str().unwrap().to_owned();
    let reused = http
        .post(format!("{base}/api/auth/refresh"))
        .json(&json!({"refreshToken": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 401);
    // A password change names both passwords in its body; neither is logged.
    let new_password = "pw-MARKER-new-9d1e-passphrase";
    let changed = http
        .post(format!("{base}/api/auth/password"))
        .bearer_auth(&ada)
        .json(&json!({"currentPassword": password, "newPassword": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    // A wrong password is not logged either.
    let wrong = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": "pw-MARKER-wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        send_rest(&http, &base, &ada, &bob_id, body).await.status(),
        201
    );

    // A browser-style session: the token in the query string.
    let url = format!("ws://{}/ws?token={bob}", server.addr);
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    let mut b = crate::helpers::WsClient { ws };
    assert_eq!(b.recv().await["type"], "ready");
    b.send(json!({"type": "send", "receiverId": server_user(&http, &base, &ada).await, "content": body, "clientId": "k"}))
        .await;
    assert_eq!(b.recv().await["type"], "ack");
    b.send(json!({"type": "sync", "cursors": {}})).await;
    b.recv_until("synced").await;
    b.ws.send(WsMessage::Close(None)).await.unwrap();
    server.wait_for(|l| l["message"] == "session_closed").await;
    let _ = http
        .post(format!("{base}/api/auth/logout"))
        .bearer_auth(&ada2)
        .send()
        .await
        .unwrap();

    let lines = server.lines().await.to_vec();
    assert!(lines.len() > 20, "trace level logs plenty: {lines:#?}");
    let ws_request = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "request" && l["route"] == "/ws")
        .expect("the upgrade is logged");
    assert_eq!(ws_request["status"], 101, "{ws_request}");
    server
        .wait_for(|l| l["message"] == "refresh token reused: signing its login out")
        .await;
    // A refresh token's secret is its last 64 hex digits (the rest are ids).
    let secrets = [
        &refresh[refresh.len() - 64..],
        &refresh2[refresh2.len() - 64..],
    ];
    for secret in [
        "MARKER",
        &ada,
        &ada2,
        &bob,
        password,
        new_password,
        &refresh,
        &refresh2,
    ]
    .into_iter()
    .chain(secrets)
    {
        let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} leaked into the log: {leaks:#?}");
    }
}

#[tokio::test]
async fn the_request_log_names_the_forwarded_client_only_behind_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "info", &["--trusted-proxy", "127.0.0.1"]).await;
    let from = |n: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, n]))
            .build()
            .unwrap()
    };
    for n in [1, 2] {
        let res = from(n)
            .get(format!("{}/healthz", server.base()))
            .header("x-forwarded-for", "198.51.100.7")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    server
        .wait_count(|l| l["message"] == "request" && l["route"] == "/healthz", 2)
        .await;
    let clients: Vec<Value> = server
        .lines()
        .await
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "request" && l["route"] == "/healthz")
        .map(|l| l["client"].clone())
        .collect();
    // Through the trusted proxy, the forwarded client; from 127.0.0.2, the peer itself.
    assert_eq!(clients, [json!("198.51.100.7"), json!("127.0.0.2")]);
}

/// The id of the token's user.
async fn server_user(http: &reqwest::Client, base: &str, token: &str) -> String {
    let me: Value = http
        .get(format!("{base}/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_owned()
}
