//! The real `parley serve` binary as a child process, with every line it writes: what
//! the tests of start-up, signals, the JSON log, graceful shutdown and crash safety
//! read. `tests/api` and `tests/chaos.rs` both include this file; each uses part of it.
//!
//! Waits are async (they sleep on the test's runtime, never block it), so client tasks
//! keep running while a test waits for a log line or for the process to exit.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

/// How long an awaited log line may take.
const LOG_WAIT: Duration = Duration::from_secs(10);
/// How long start-up may take: a restart after a kill replays the journal first, which
/// grows with the data a long chaos run leaves behind.
const START_WAIT: Duration = Duration::from_secs(60);
/// How long [`Server::exit_code`] waits for the process to exit.
const EXIT_WAIT: Duration = Duration::from_secs(20);
/// After the exit: how long the rest of the output may take to arrive.
const TAIL_WAIT: Duration = Duration::from_secs(5);
/// [`Server::lines`] returns once the server has written nothing for this long.
const QUIET: Duration = Duration::from_millis(300);
/// How often [`Server::wait_exit`] looks at the process.
const POLL: Duration = Duration::from_millis(10);
/// The start of a line the server wrote to stderr.
const STDERR: &str = "stderr: ";

/// A `parley serve` child process with every line it writes (stderr's marked
/// `stderr: `), killed when dropped.
pub(crate) struct Server {
    child: Child,
    /// The address it listens on, from its `listening` line.
    pub(crate) addr: String,
    incoming: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Server {
    /// Starts `parley serve` on a free loopback port, with its data in `data_dir`, a JSON
    /// log at `rust_log` and the `extra` flags (no secret or admin token from the
    /// environment), and waits (60 s at most) for its `listening` line.
    pub(crate) async fn start(data_dir: &Path, rust_log: &str, extra: &[&str]) -> Self {
        Self::start_with(data_dir, rust_log, extra, |_| {}).await
    }

    /// [`Server::start`], with the command adjusted by `adjust` first (to set the
    /// child's umask, say).
    pub(crate) async fn start_with(
        data_dir: &Path,
        rust_log: &str,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Self {
        Self::start_at("127.0.0.1:0", data_dir, rust_log, extra, adjust).await
    }

    /// [`Server::start_with`] listening on `listen` (a cluster's nodes each take their
    /// own loopback address); `adjust` runs last, so it may set the secret.
    pub(crate) async fn start_at(
        listen: &str,
        data_dir: &Path,
        rust_log: &str,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
        command
            .env_remove("PARLEY_JWT_SECRET")
            .env_remove("PARLEY_ADMIN_TOKEN");
        adjust(&mut command);
        let mut child = command
            .args([
                "serve",
                "--listen",
                listen,
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("parley starts");
        let (tx, incoming) = mpsc::unbounded_channel();
        forward(child.stdout.take().expect("piped stdout"), "", tx.clone());
        forward(child.stderr.take().expect("piped stderr"), STDERR, tx);
        let mut server = Self {
            child,
            addr: String::new(),
            incoming,
            seen: Vec::new(),
        };
        let listening = server
            .wait_for_within(START_WAIT, |l| l["message"] == "listening")
            .await;
        server.addr = listening["addr"]
            .as_str()
            .expect("the listening line has the address")
            .to_owned();
        server
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (10 s at most) for a JSON line matching `pred`, earlier lines included;
    /// returns it.
    pub(crate) async fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(LOG_WAIT, pred).await
    }

    async fn wait_for_within(&mut self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.json().find(|v| pred(v)) {
            return found;
        }
        let deadline = Instant::now() + limit;
        loop {
            let line = self.next_line(deadline, "log line not seen").await;
            if let Some(v) = parsed(&line).filter(|v| pred(v)) {
                return v;
            }
        }
    }

    /// Waits (10 s at most) until `n` JSON lines match `pred`.
    pub(crate) async fn wait_count(&mut self, pred: impl Fn(&Value) -> bool, n: usize) {
        let deadline = Instant::now() + LOG_WAIT;
        while self.json().filter(|v| pred(v)).count() < n {
            self.next_line(deadline, "too few matching lines").await;
        }
    }

    /// Every line written so far, once the server has been quiet for a moment.
    pub(crate) async fn lines(&mut self) -> &[String] {
        while let Ok(Some(line)) = tokio::time::timeout(QUIET, self.incoming.recv()).await {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Whether a JSON line so far has this `message`.
    pub(crate) fn saw(&mut self, message: &str) -> bool {
        self.collect();
        self.json().any(|l| l["message"] == message)
    }

    /// The WARN and ERROR lines so far.
    pub(crate) fn warnings(&mut self) -> Vec<String> {
        self.collect();
        self.json()
            .filter(|l| matches!(l["level"].as_str(), Some("WARN" | "ERROR")))
            .map(|l| l.to_string())
            .collect()
    }

    /// Everything written to stderr so far.
    pub(crate) fn stderr(&mut self) -> String {
        self.collect();
        let lines: Vec<&str> = self
            .seen
            .iter()
            .filter_map(|l| l.strip_prefix(STDERR))
            .collect();
        lines.join("\n")
    }

    /// Sends signal `name` (`TERM`, `INT`, ...) to the process.
    pub(crate) fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill9(&mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped")
    }

    /// Waits up to `limit` for the process to exit, then for the rest of its output.
    /// Its status (None: still running) and how long the exit took.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> (Option<ExitStatus>, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let took = start.elapsed();
                // The readers stop at EOF; take every line they read.
                let (incoming, seen) = (&mut self.incoming, &mut self.seen);
                let rest = async {
                    while let Some(line) = incoming.recv().await {
                        seen.push(line);
                    }
                };
                let _ = tokio::time::timeout(TAIL_WAIT, rest).await;
                return (Some(status), took);
            }
            if start.elapsed() > limit {
                return (None, start.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (20 s at most) for the process to exit; its exit code.
    pub(crate) async fn exit_code(&mut self) -> i32 {
        let (status, _) = self.wait_exit(EXIT_WAIT).await;
        status
            .expect("server did not exit in time")
            .code()
            .expect("exited, not killed")
    }

    /// The JSON lines so far.
    fn json(&self) -> impl Iterator<Item = Value> + '_ {
        self.seen.iter().filter_map(|l| parsed(l))
    }

    /// Takes the lines that have arrived, without waiting.
    fn collect(&mut self) {
        while let Ok(line) = self.incoming.try_recv() {
            self.seen.push(line);
        }
    }

    /// The next line, read by `deadline`; panics saying `what` was not seen otherwise.
    async fn next_line(&mut self, deadline: Instant, what: &str) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.incoming.recv()).await {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                line
            }
            Ok(None) => panic!(
                "{what}: the server closed its output (exit: {:?}); saw {:#?}",
                self.child.try_wait(),
                self.seen
            ),
            Err(_) => panic!("{what} in {LOG_WAIT:?}; saw {:#?}", self.seen),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A thread that sends each line of `pipe`, after `mark`, until EOF. It reads on after
/// the receiver is gone, so the child never blocks on a full pipe.
fn forward(
    pipe: impl Read + Send + 'static,
    mark: &'static str,
    to: mpsc::UnboundedSender<String>,
) {
    std::thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            let _ = to.send(format!("{mark}{}", text.trim_end_matches(['\n', '\r'])));
            line.clear();
        }
    });
}

fn parsed(line: &str) -> Option<Value> {
    serde_json::from_str(line).ok()
}
