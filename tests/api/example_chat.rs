//! The terminal chat example as a new user runs it: it rides out a server restart
//! (reconnects, syncs, prints nothing twice), and a mistyped `--to` ends with a sentence,
//! not a wait forever or a Debug dump. Skipped when the example is not built (`cargo
//! test --all-targets`, the README's test command, builds it).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// `target/<profile>/examples/chat`, next to this test binary's `deps/`.
fn example() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples/chat");
    path.exists().then_some(path)
}

/// A child whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the `n`th line (counting earlier ones) containing `text`.
    fn wait_for(&mut self, text: &str, n: usize) {
        while self.seen.iter().filter(|l| l.contains(text)).count() < n {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("{text:?} (x{n}) not seen; saw {:#?}", self.seen),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path, addr: &str) -> Running {
    let mut server = Running::spawn(
        Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(["serve", "--listen", addr, "--data-dir"])
            .arg(dir)
            .env_remove("PARLEY_JWT_SECRET")
            .env("RUST_LOG", "info"),
    );
    server.wait_for("listening", 1);
    server
}

fn chat(example: &PathBuf, base: &str, email: &str, to: &str) -> Running {
    Running::spawn(Command::new(example).args([
        "--server",
        base,
        "--email",
        email,
        "--password",
        "correct horse battery",
        "--to",
        to,
    ]))
}

#[tokio::test]
async fn the_chat_example_rides_out_a_server_restart_without_printing_anything_twice() {
    let Some(example) = example() else {
        eprintln!("skipped: examples/chat is not built");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let base = format!("http://{addr}");
    let mut server = serve(dir.path(), &addr);
    let http = reqwest::Client::new();
    for (name, email) in [("Ada", "ada@example.com"), ("Bob", "bob@example.com")] {
        let res = http
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"name": name, "email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let mut ada = chat(&example, &base, "ada@example.com", "bob@example.com");
    let mut bob = chat(&example, &base, "bob@example.com", "ada@example.com");
    ada.wait_for("* up to date", 1);
    bob.wait_for("* up to date", 1);
    ada.type_line("before the restart");
    bob.wait_for("[1] Ada: before the restart", 1);

    // SIGTERM, then the same server again on the same address and data dir.
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(server.child.wait().unwrap().success());
    drop(server);
    ada.wait_for("reconnecting", 1);
    let _server = serve(dir.path(), &addr);
    ada.wait_for("* up to date", 2);
    bob.wait_for("* up to date", 2);
    ada.type_line("after the restart");
    bob.wait_for("[2] Ada: after the restart", 1);
    let printed = bob.seen.iter().filter(|l| l.starts_with("[1] ")).count();
    assert_eq!(
        printed, 1,
        "the replay after the restart is not printed again"
    );
}

#[test]
fn a_mistyped_to_ends_with_a_sentence_after_the_wait() {
    let Some(example) = example() else {
        eprintln!("skipped: examples/chat is not built");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), "127.0.0.1:0");
    let addr = server
        .seen
        .iter()
        .find_map(|l| l.split("addr=").nth(1))
        .expect("the listening line has the address")
        .trim()
        .to_owned();
    let out = Command::new(&example)
        .args([
            "--server",
            &format!("http://{addr}"),
            "--register",
            "--name",
            "Ada",
        ])
        .args([
            "--email",
            "ada@example.com",
            "--password",
            "correct horse battery",
        ])
        .args(["--to", "bbo@example.com", "--wait", "1s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "chat: no account has the email bbo@example.com (waited 1s); check --to"
    );
}
