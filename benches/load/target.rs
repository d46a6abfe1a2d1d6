//! The systems under test: Parley (on its embedded store, or on ScyllaDB as
//! `parley-scylla`), the bare relay and the Socket.IO server. The harness starts each as
//! a child process (so its CPU and memory can be read from /proc), or attaches to one
//! already running (`--addr`, `--pid`, `--users-file`). `parley-scylla` runs on the CQL
//! node of `--scylla-uri` (default `SCYLLA_URI`), in a fresh keyspace per start; the
//! node is the caller's (`scripts/cql-node start`), and `--scylla-pid` lets the harness
//! report its CPU beside the server's.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A system the harness can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum System {
    /// This server, on its embedded store, over its native WebSocket protocol.
    Parley,
    /// This server, over Socket.IO (`/socket.io/`), driven exactly as the Node.js
    /// Socket.IO peer is: `register`, then `sendMessage` with an ack callback.
    ParleySocketio,
    /// This server on ScyllaDB (`--store scylla`), against the node of `--scylla-uri`.
    #[serde(rename = "parley-scylla")]
    ParleyScylla,
    /// Two Parley nodes in a cluster (`--cluster-nats`, ScyllaDB, one nats-server), each
    /// pair's two users on the same node (pairs alternate between the nodes).
    #[serde(rename = "parley-cluster-same")]
    ParleyClusterSame,
    /// The same cluster, each pair's users on different nodes: every message crosses
    /// nodes (a forwarded send or a published delivery).
    #[serde(rename = "parley-cluster-split")]
    ParleyClusterSplit,
    /// The bare tokio-tungstenite relay in `benches/peers/relay.rs`.
    Relay,
    /// The Node.js Socket.IO server in `benches/peers/socketio`.
    Socketio,
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Parley => "parley",
            Self::ParleySocketio => "parley-socketio",
            Self::ParleyScylla => "parley-scylla",
            Self::ParleyClusterSame => "parley-cluster-same",
            Self::ParleyClusterSplit => "parley-cluster-split",
            Self::Relay => "relay",
            Self::Socketio => "socketio",
        })
    }
}

impl System {
    /// Parley, whatever its store or protocol: its login, its history.
    pub(crate) fn is_parley(self) -> bool {
        matches!(
            self,
            Self::Parley
                | Self::ParleySocketio
                | Self::ParleyScylla
                | Self::ParleyClusterSame
                | Self::ParleyClusterSplit
        )
    }

    /// Parley on ScyllaDB: one node, or a cluster of two.
    pub(crate) fn on_scylla(self) -> bool {
        matches!(
            self,
            Self::ParleyScylla | Self::ParleyClusterSame | Self::ParleyClusterSplit
        )
    }
}

/// A user account the generator can connect as.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub(crate) struct User {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) email: String,
    pub(crate) token: String,
}

/// How to start (or find) the systems.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StartOptions {
    /// The parley binary (built by `cargo bench` in the same profile).
    #[arg(long, default_value = env!("CARGO_BIN_EXE_parley"))]
    pub(crate) parley_bin: PathBuf,
    /// An extra argument for `parley serve` (repeatable), e.g. `--parley-arg=--sync-batch=10000`.
    /// One naming a flag the harness sets under load (`--send-rate`, `--send-burst`,
    /// `--session-queue`, ...) replaces the harness's value.
    #[arg(long = "parley-arg", allow_hyphen_values = true)]
    pub(crate) parley_args: Vec<String>,
    /// The relay's read buffer and write buffer target in bytes (0: tungstenite's
    /// defaults, 128 KiB each, which cost a 128 KiB zero-fill per read and 128 KiB of
    /// RSS per connection; the floor is meant to be the best a bare relay does). The
    /// default is Parley's own read buffer, so both pay the same per connection.
    #[arg(long, default_value_t = 2048)]
    pub(crate) relay_read_buffer: usize,
    /// The `node` executable.
    #[arg(long, default_value = "node")]
    pub(crate) node: PathBuf,
    /// First port to listen on; each system started takes the next one.
    #[arg(long, default_value_t = 19_100)]
    pub(crate) base_port: u16,
    /// Measure a server that is already running here instead of starting one (with
    /// exactly one system).
    #[arg(long)]
    pub(crate) addr: Option<SocketAddr>,
    /// With `--addr`: the server's pid, for CPU and memory.
    #[arg(long)]
    pub(crate) pid: Option<u32>,
    /// With `--addr` and parley: the output of `parley admin seed-users`.
    #[arg(long)]
    pub(crate) users_file: Option<PathBuf>,
    /// The CQL node `parley-scylla` runs on.
    #[arg(long, env = "SCYLLA_URI")]
    pub(crate) scylla_uri: Option<String>,
    /// The CQL node's pid, to report its CPU (`cat /tmp/parley-cql-node/pid`).
    #[arg(long)]
    pub(crate) scylla_pid: Option<u32>,
    /// Load flags (`--send-rate`, ...) a scenario leaves out, so that Parley's own
    /// defaults apply (set by the scenario, not on the command line).
    #[arg(skip)]
    pub(crate) without_load_flags: Vec<&'static str>,
}

/// The name of a flag (`--send-rate` of `--send-rate=50`); `None` for a value.
fn flag_name(arg: &str) -> Option<&str> {
    arg.starts_with("--")
        .then(|| arg.split_once('=').map_or(arg, |(name, _)| name))
}

/// The flags `parley serve` gets besides `--data-dir` and `--listen`: the load flags,
/// less those the scenario leaves out and those `--parley-arg` gives again (clap refuses
/// a flag given twice, so a `--parley-arg` replaces the load default), then every
/// `--parley-arg`.
pub(crate) fn parley_flags(opts: &StartOptions) -> Vec<String> {
    let given: Vec<&str> = opts
        .parley_args
        .iter()
        .filter_map(|a| flag_name(a))
        .collect();
    PARLEY_LOAD_FLAGS
        .iter()
        .filter(|f| {
            let name = flag_name(f).unwrap_or(f);
            !given.contains(&name) && !opts.without_load_flags.contains(&name)
        })
        .map(|f| (*f).to_owned())
        .chain(opts.parley_args.iter().cloned())
        .collect()
}

/// A running system.
pub(crate) struct Target {
    pub(crate) system: System,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: Option<u32>,
    /// The store's own process (the CQL node), when it has one.
    pub(crate) store_pid: Option<u32>,
    pub(crate) users: Vec<User>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    log: Option<PathBuf>,
    /// A cluster's nodes (empty for one server): user `i` connects to [`Self::addr_of`].
    nodes: Vec<SocketAddr>,
    /// A cluster's other processes: its second node.
    others: Vec<Child>,
    /// A cluster's nats-server directory (scripts/nats-node).
    nats_dir: Option<PathBuf>,
}

impl Target {
    /// The server's processes: its one process, or every node of a cluster.
    pub(crate) fn server_pids(&self) -> Vec<u32> {
        self.pid
            .into_iter()
            .chain(self.others.iter().map(Child::id))
            .collect()
    }
}

/// Where scratch data goes: a directory cargo gives benchmarks inside the target dir.
pub(crate) fn scratch_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("load")
}

/// The flags `parley serve` gets under load: rate limits and queues out of the way of
/// a generator that sends from few users at high rates, quiet logs.
const PARLEY_LOAD_FLAGS: &[&str] = &[
    "--log-format=json",
    "--send-rate=1000000",
    "--send-burst=1000000",
    "--session-queue=65536",
    "--auth-per-address-per-minute=1000000",
    "--login-per-email-per-minute=1000",
];

fn err(e: impl fmt::Display) -> String {
    e.to_string()
}

impl Target {
    /// Starts `system` on `port` with `users` accounts (or attaches per `opts`).
    pub(crate) async fn start(
        system: System,
        opts: &StartOptions,
        port: u16,
        users: usize,
    ) -> Result<Self, String> {
        if let Some(addr) = opts.addr {
            return Self::external(system, opts, addr, users);
        }
        if matches!(
            system,
            System::ParleyClusterSame | System::ParleyClusterSplit
        ) {
            return cluster::start(system, opts, port, users).await;
        }
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let scratch = scratch_dir();
        std::fs::create_dir_all(&scratch).map_err(err)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{system}-"))
            .tempdir_in(&scratch)
            .map_err(err)?;
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).map_err(err)?;
        let (child, accounts) = match system {
            System::Parley
            | System::ParleySocketio
            | System::ParleyScylla
            | System::ParleyClusterSame
            | System::ParleyClusterSplit => {
                let store = store_flags(system, opts)?;
                let accounts = seed_parley(&opts.parley_bin, dir.path(), users, &store)?;
                let mut cmd = Command::new(&opts.parley_bin);
                cmd.arg("serve")
                    .arg("--data-dir")
                    .arg(dir.path())
                    .arg(format!("--listen={addr}"))
                    .args(&store)
                    .args(parley_flags(opts))
                    .env(
                        "RUST_LOG",
                        std::env::var("PARLEY_LOAD_RUST_LOG").unwrap_or("warn".into()),
                    );
                (spawn(cmd, log_file)?, accounts)
            }
            System::Relay => {
                let exe = std::env::current_exe().map_err(err)?;
                let mut cmd = Command::new(exe);
                cmd.arg("serve-relay").arg(format!("--listen={addr}"));
                if opts.relay_read_buffer > 0 {
                    cmd.arg(format!("--read-buffer={}", opts.relay_read_buffer));
                }
                (spawn(cmd, log_file)?, anonymous_users(users))
            }
            System::Socketio => {
                let peer = socketio_dir();
                if !peer.join("node_modules/socket.io").is_dir() {
                    return Err(format!(
                        "the Socket.IO peer is not installed: run {}",
                        peer.join("install.sh").display()
                    ));
                }
                let mut cmd = Command::new(&opts.node);
                cmd.arg(peer.join("server.js"))
                    .arg("--port")
                    .arg(port.to_string())
                    .current_dir(&peer);
                (spawn(cmd, log_file)?, anonymous_users(users))
            }
        };
        let mut target = Self {
            system,
            addr,
            pid: Some(child.id()),
            store_pid: opts.scylla_pid.filter(|_| system == System::ParleyScylla),
            users: accounts,
            child: Some(child),
            _dir: Some(dir),
            log: Some(log),
            nodes: Vec::new(),
            others: Vec::new(),
            nats_dir: None,
        };
        if let Err(e) = target.wait_ready().await {
            let log = target.log_tail();
            target.stop();
            return Err(format!("{system} did not start: {e}\n{log}"));
        }
        Ok(target)
    }

    fn external(
        system: System,
        opts: &StartOptions,
        addr: SocketAddr,
        users: usize,
    ) -> Result<Self, String> {
        let accounts = match (system.is_parley(), &opts.users_file) {
            (true, Some(file)) => read_users(file)?,
            (true, None) => return Err("--addr with parley needs --users-file".into()),
            _ => anonymous_users(users),
        };
        if accounts.len() < users {
            return Err(format!(
                "{} users in the users file, {users} needed",
                accounts.len()
            ));
        }
        Ok(Self {
            system,
            addr,
            pid: opts.pid,
            store_pid: opts.scylla_pid.filter(|_| system == System::ParleyScylla),
            users: accounts,
            child: None,
            _dir: None,
            log: None,
            nodes: Vec::new(),
            others: Vec::new(),
            nats_dir: None,
        })
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("exited with {status}"));
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("no listener after 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of the server's log.
    pub(crate) fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Where the client of user `i` (of pairs `i`, `i ^ 1`) connects.
    pub(crate) fn addr_of(&self, i: usize) -> SocketAddr {
        match (self.system, self.nodes.len()) {
            (_, 0) => self.addr,
            (System::ParleyClusterSplit, n) => self.nodes[i % n],
            (_, n) => self.nodes[(i / 2) % n],
        }
    }

    /// Stops a server this harness started (SIGTERM, then SIGKILL after 20 s).
    pub(crate) fn stop(&mut self) {
        for child in std::mem::take(&mut self.others) {
            stop_child(child);
        }
        if let Some(dir) = self.nats_dir.take() {
            cluster::stop_nats(&dir);
        }
        let Some(child) = self.child.take() else {
            return;
        };
        stop_child(child);
    }
}

/// SIGTERM, then SIGKILL after 20 s.
fn stop_child(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

mod cluster;

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(mut cmd: Command, log: std::fs::File) -> Result<Child, String> {
    let stderr = log.try_clone().map_err(err)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))
}

/// The store flags of `parley serve` and `seed-users`: none on the embedded store; on
/// ScyllaDB, the node and a keyspace of this start's own (`parley_bench_<secs>_<n>`).
fn store_flags(system: System, opts: &StartOptions) -> Result<Vec<String>, String> {
    if !system.on_scylla() {
        return Ok(Vec::new());
    }
    let uri = opts
        .scylla_uri
        .clone()
        .ok_or("parley-scylla needs --scylla-uri or SCYLLA_URI (scripts/cql-node start)")?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Numbered too: two systems started within one second get a keyspace each.
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let keyspace = format!("parley_bench_{secs}_{}_{n}", std::process::id());
    Ok(vec![
        "--store=scylla".into(),
        format!("--scylla-uri={uri}"),
        format!("--scylla-keyspace={keyspace}"),
    ])
}

/// `parley admin seed-users`: accounts sharing one argon2 hash, tokens minted with the
/// data dir's secret.
fn seed_parley(
    bin: &Path,
    dir: &Path,
    count: usize,
    store: &[String],
) -> Result<Vec<User>, String> {
    let out = dir.join("users.json");
    let status = Command::new(bin)
        .args(["admin", "seed-users", "--prefix", "load"])
        .args(store)
        .arg("--data-dir")
        .arg(dir)
        .arg(format!("--count={count}"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !status.success() {
        return Err(format!("parley admin seed-users failed: {status}"));
    }
    read_users(&out)
}

fn read_users(file: &Path) -> Result<Vec<User>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// Users of the peers: a fresh id each, and the id as the token.
fn anonymous_users(n: usize) -> Vec<User> {
    (0..n)
        .map(|_| {
            let id = uuid::Uuid::new_v4().to_string();
            User {
                email: String::new(),
                token: id.clone(),
                id,
            }
        })
        .collect()
}

/// `benches/peers/socketio`.
pub(crate) fn socketio_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/socketio")
}
