//! The Socket.IO endpoint against the real socket.io-client v4: starts the real
//! `parley serve` on a free port and runs the Node tests in `tests/socketio/` against
//! it (`node --test`). Installs the client first, exactly as locked
//! (`tests/socketio/install.sh`, idempotent). Without Node.js, the test says so in one
//! line and passes: CI has Node.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the Node tests may take in all.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);

/// The directory of the Node tests.
fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/socketio")
}

/// A `parley serve` child process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(dir.path())
            // Every test registers its own users from one address, quickly.
            .args([
                "--auth-per-address-per-minute",
                "100000",
                "--login-per-email-per-minute",
                "1000",
            ])
            .env_remove("PARLEY_JWT_SECRET")
            .env_remove("PARLEY_ADMIN_TOKEN")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("parley starts");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).expect("parley logs `listening`");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["fields"]["message"] == "listening" || v["message"] == "listening" {
                let addr = v["fields"]["addr"].as_str().or(v["addr"].as_str());
                break addr.expect("the listening line has the address").to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Self {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `node` runs.
fn have_node() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn socket_io_clients_work_against_the_real_server() {
    if !have_node() {
        eprintln!("skipped: node is not installed (the Socket.IO tests need Node.js >= 18)");
        return;
    }
    let dir = suite_dir();
    let install = Command::new("sh")
        .arg(dir.join("install.sh"))
        .status()
        .expect("runs install.sh");
    assert!(
        install.success(),
        "tests/socketio/install.sh failed: socket.io-client could not be installed"
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/socketio exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test.mjs in {}", dir.display());

    let server = Server::start();
    let out = tempfile::tempdir().expect("temp dir");
    let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
    let mut node = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .args(&files)
        .current_dir(&dir)
        .env("PARLEY_URL", format!("http://{}", server.addr))
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("node runs");
    let deadline = Instant::now() + NODE_TIMEOUT;
    let status = loop {
        if let Some(status) = node.try_wait().expect("node can be waited for") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            let _ = node.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Shown by the test harness with `--nocapture`, or when the test fails.
    println!("{}", std::fs::read_to_string(&stdout).unwrap_or_default());
    eprintln!("{}", std::fs::read_to_string(&stderr).unwrap_or_default());
    let status = status.unwrap_or_else(|| panic!("the Node tests took over {NODE_TIMEOUT:?}"));
    assert!(status.success(), "the Node Socket.IO tests failed (above)");
}
