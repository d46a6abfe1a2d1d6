//! The real binary as an operator runs it: start-up checks, signals, and the
//! supervision log.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::Server;

/// `parley serve` at the `info` level.
async fn serve(dir: &std::path::Path, extra: &[&str]) -> Server {
    Server::start(dir, "info", extra).await
}

async fn register(http: &reqwest::Client, base: &str, name: &str) -> (String, String) {
    let email = format!("{name}@example.com");
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"name": name, "email": email, "password": "correct horse battery"}))
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

async fn connect(addr: &str, token: &str) -> crate::helpers::WsClient {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket connects");
    let mut client = crate::helpers::WsClient { ws };
    assert_eq!(client.recv().await["type"], "ready");
    client
}

#[tokio::test]
async fn sigterm_closes_sessions_with_1001_flushes_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let (ada_id, ada) = register(&http, &server.base(), "ada").await;
    let (bob_id, _) = register(&http, &server.base(), "bob").await;
    let mut ws = connect(&server.addr, &ada).await;
    ws.send_to(&bob_id, "before the signal", "s1").await;
    assert_eq!(ws.recv().await["type"], "ack");

    server.signal("TERM");
    assert_eq!(
        ws.closed().await.0,
        1001,
        "sessions are told the server is going away"
    );
    assert_eq!(server.exit_code().await, 0);
    server.wait_for(|l| l["message"] == "stopped").await;

    // Everything acked before the signal is there after a restart.
    let server = serve(dir.path(), &[]).await;
    let res = http
        .post(format!("{}/api/auth/login", server.base()))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let page: Value = http
        .get(format!("{}/api/messages/{bob_id}", server.base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["messages"][0]["content"], "before the signal");
    assert_eq!(page["messages"][0]["sender"], ada_id.as_str());
}

#[tokio::test]
async fn sigint_also_stops_the_server_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]).await;
    server.signal("INT");
    assert_eq!(server.exit_code().await, 0);
}

#[test]
fn a_configured_secret_shorter_than_32_bytes_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("PARLEY_JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32 bytes"), "stderr: {stderr}");
    assert!(
        !stderr.contains("too-short"),
        "the secret itself is never printed"
    );
}

/// Every entry under `dir` (and `dir` itself) with its permission bits and whether it
/// is a dir.
fn tree_modes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32, bool)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let mut all = vec![(dir.to_path_buf(), meta.mode() & 0o777, meta.is_dir())];
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            all.extend(tree_modes(&entry.unwrap().path()));
        }
    }
    all
}

#[tokio::test]
async fn under_umask_022_the_data_dir_is_private_to_its_owner() {
    use std::os::unix::process::CommandExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("parley-data");
    // The umask most shells have: files 0644 and dirs 0755 unless Parley says otherwise.
    let server = Server::start_with(&dir, "info", &[], |command| {
        // SAFETY: umask(2) is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
    })
    .await;
    let http = reqwest::Client::new();
    let (_, ada) = register(&http, &server.base(), "ada").await;
    let (bob_id, _) = register(&http, &server.base(), "bob").await;
    let res = http
        .post(format!("{}/api/messages/send", server.base()))
        .bearer_auth(&ada)
        .json(&json!({"receiverId": bob_id, "content": "private", "clientId": "p1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut server = server;
    server.signal("TERM");
    assert_eq!(server.exit_code().await, 0);

    let tree = tree_modes(&dir);
    let files = tree.iter().filter(|(_, _, is_dir)| !is_dir).count();
    assert!(
        files >= 5,
        "the store and the secret were written: {tree:#?}"
    );
    for (path, mode, is_dir) in &tree {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:03o}", path.display());
    }
}

/// Runs `parley serve` on `dir`, expecting it to refuse to start: its exit code and
/// standard error. A server that starts anyway is killed after 10 s (exit code `None`).
fn serve_once(dir: &std::path::Path) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("PARLEY_JWT_SECRET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (code, stderr)
}

#[test]
fn a_data_dir_that_group_or_others_can_write_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o770, 0o757, 0o777] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let (code, stderr) = serve_once(dir.path());
        assert_eq!(code, Some(1), "mode {mode:o}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("group or others can write") && stderr.contains("chmod 700"),
            "the reason and the fix: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing was written there"
        );
    }
}

#[test]
fn a_data_dir_owned_by_another_user_is_refused_at_start() {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a dir to another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // nobody:nogroup
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let (code, stderr) = serve_once(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("owned by uid 65534"), "{stderr}");
}

#[tokio::test]
async fn idle_actors_stop_and_start_again_on_demand_as_the_log_shows() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &["--actor-idle-timeout", "200ms"]).await;
    let http = reqwest::Client::new();
    let (_, ada) = register(&http, &server.base(), "ada").await;
    let (bob_id, _) = register(&http, &server.base(), "bob").await;
    let base = server.base();
    let send = |body: &'static str| {
        let (http, base, ada, bob_id) = (http.clone(), base.clone(), ada.clone(), bob_id.clone());
        async move {
            let res = http
                .post(format!("{base}/api/messages/send"))
                .bearer_auth(&ada)
                .json(&json!({"receiverId": bob_id, "content": body}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()
        }
    };
    let first = send("one").await;
    let conv = first["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let is = |event: &'static str, conv: String| {
        move |l: &Value| {
            l["message"] == event
                && l["actor_kind"] == "conversation"
                && l["actor_id"] == conv.as_str()
        }
    };
    server.wait_for(is("actor_started", conv.clone())).await;
    let stopped = server.wait_for(is("actor_stopped", conv.clone())).await;
    assert_eq!(stopped["reason"], "idle");
    assert_eq!(stopped["target"], "parley::supervision");
    // Back on demand, state reloaded from the store: seq continues.
    let second = send("two").await;
    assert_eq!(second["message"]["seq"], 2);
    server
        .wait_count(is("actor_started", conv.clone()), 2)
        .await;
}

#[tokio::test]
async fn on_sigterm_every_committed_send_is_acked_before_the_close() {
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(
        dir.path(),
        &["--send-rate", "100000", "--send-burst", "100000"],
    )
    .await;
    let http = reqwest::Client::new();
    let (_, ada) = register(&http, &server.base(), "ada").await;
    let (bob_id, _) = register(&http, &server.base(), "bob").await;
    let mut ws = connect(&server.addr, &ada).await;
    for i in 0..200 {
        ws.send_to(&bob_id, &format!("m{i}"), &format!("c{i}"))
            .await;
    }
    server.signal("TERM");
    let mut acked = BTreeSet::new();
    loop {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        match tokio::time::timeout(Duration::from_secs(20), ws.ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(WsMessage::Text(t))) => {
                let f: Value = serde_json::from_str(t.as_str()).unwrap();
                if f["type"] == "ack" {
                    acked.insert(f["clientId"].as_str().unwrap().to_owned());
                }
            }
            Some(Ok(WsMessage::Close(frame))) => {
                assert_eq!(u16::from(frame.expect("close frame").code), 1001);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }
    assert_eq!(server.exit_code().await, 0);

    let server = serve(dir.path(), &[]).await;
    let login: Value = http
        .post(format!("{}/api/auth/login", server.base()))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let mut stored = BTreeSet::new();
    let mut before = String::new();
    loop {
        let page: Value = http
            .get(format!(
                "{}/api/messages/{bob_id}?limit=100{before}",
                server.base()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for m in page["messages"].as_array().unwrap() {
            stored.insert(m["clientId"].as_str().unwrap().to_owned());
        }
        match page["nextBefore"].as_u64() {
            Some(b) => before = format!("&before={b}"),
            None => break,
        }
    }
    assert!(!stored.is_empty(), "some sends were committed");
    assert_eq!(
        stored, acked,
        "every committed send was acked, and every ack is in history"
    );
}

#[test]
fn seed_users_shows_its_progress_on_stderr_and_writes_only_json_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "admin",
            "seed-users",
            "--count",
            "40",
            "--out",
            "-",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("PARLEY_JWT_SECRET")
        .output()
        .expect("seed-users runs");
    assert!(out.status.success());
    let users: Vec<Value> = serde_json::from_slice(&out.stdout).expect("stdout is the JSON");
    assert_eq!(users.len(), 40);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("seeding accounts: "))
        .collect();
    // Not a terminal: one line per tenth at most, and the last one says it is done.
    assert!(lines.len() >= 2 && lines.len() <= 11, "{stderr}");
    assert_eq!(lines.last(), Some(&"seeding accounts: 40/40 (100%)"));
}

fn parley() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
    command
        .env_remove("PARLEY_JWT_SECRET")
        .env_remove("PARLEY_ADMIN_TOKEN")
        .env_remove("RUST_LOG");
    command
}

#[test]
fn serve_help_names_the_jwt_secret_variable_and_the_heartbeat_rule_of_the_docs() {
    let out = parley().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("PARLEY_JWT_SECRET"), "{help}");
    // The same rule as README and docs/protocol.md: closed after 1.5 silent intervals.
    assert!(help.contains("silent for 1.5 intervals"), "{help}");
    assert!(help.contains("5 s past its expiry"), "{help}");
}

#[test]
fn a_failed_bind_leaves_no_data_dir_or_secret_and_says_so_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let out = parley()
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!data.exists(), "nothing is created before the bind");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = format!("{stdout}{stderr}");
    assert_eq!(said.matches("cannot listen on").count(), 1, "{said}");
}

#[tokio::test]
async fn a_second_server_on_a_data_dir_in_use_names_the_process_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), &[]).await;
    let out = parley()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("in use by process {} (", first.pid())),
        "{stderr}"
    );
    assert!(!stderr.contains("Locked"), "{stderr}");
}

#[test]
fn the_default_log_has_no_storage_engine_chatter_and_no_colour_codes_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = parley()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let done = line.contains("listening");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.last().is_some_and(|l| l.contains("listening")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains('\x1b')), "{lines:#?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("fjall") || l.contains("lsm_tree")),
        "{lines:#?}"
    );
}
