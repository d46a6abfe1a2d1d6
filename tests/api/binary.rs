//! The real `parley serve` binary as a child process, with every line it writes: what
//! the tests of signals, start-up and the supervision log read.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `parley serve` child process with every line it writes (stderr's marked
/// `stderr: `), killed when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    /// Starts `parley serve` on a free loopback port with a JSON log at `rust_log`, and
    /// waits for its `listening` line.
    pub fn start(dir: &std::path::Path, rust_log: &str, extra: &[&str]) -> Self {
        Self::start_with(dir, rust_log, extra, |_| {})
    }

    /// [`Server::start`], with the command adjusted by `adjust` first (to set the
    /// child's umask, say).
    pub fn start_with(
        dir: &std::path::Path,
        rust_log: &str,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
        adjust(&mut command);
        let mut child = command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(dir)
            .args(extra)
            .env_remove("PARLEY_JWT_SECRET")
            .env_remove("PARLEY_ADMIN_TOKEN")
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("parley starts");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        let mut server = Self {
            child,
            addr: String::new(),
            lines,
            seen: Vec::new(),
        };
        let listening = server.wait_for(|l| l["message"] == "listening");
        server.addr = listening["addr"]
            .as_str()
            .expect("listening line has the address")
            .to_owned();
        server
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (10 s at most) for a JSON line matching `pred`; returns it.
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().filter_map(|l| parsed(l)).find(|v| pred(v)) {
            return found;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = self.next_line(deadline, "log line not seen");
            if let Some(v) = parsed(&line).filter(|v| pred(v)) {
                return v;
            }
        }
    }

    /// Waits (10 s at most) until `n` JSON lines match `pred`.
    pub fn wait_count(&mut self, pred: impl Fn(&Value) -> bool, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .seen
            .iter()
            .filter_map(|l| parsed(l))
            .filter(|v| pred(v))
            .count()
            < n
        {
            self.next_line(deadline, "too few matching lines");
        }
    }

    /// Everything written so far (waits a moment for stragglers).
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Sends signal `sig` (`TERM`, `INT`, ...) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits (20 s at most) for the process to exit; its exit code.
    pub fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status.code().expect("exited, not killed");
            }
            assert!(Instant::now() < deadline, "server did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn next_line(&mut self, deadline: Instant, what: &str) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what}; saw {:#?}", self.seen));
        self.seen.push(line.clone());
        line
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parsed(line: &str) -> Option<Value> {
    serde_json::from_str(line).ok()
}
