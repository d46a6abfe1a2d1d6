//! Crash safety and graceful shutdown of the real binary, under load.
//!
//! `sigkill_mid_load_loses_and_duplicates_nothing` runs real WebSocket clients in pairs,
//! each sending to its partner continuously with unique `clientId`s, and SIGKILLs the
//! server several times mid-load. Each time the server restarts on the same data dir
//! (on a new port); clients reconnect, `sync` from their cursors and retry every unacked
//! send with the same `clientId`. At the end it checks every conversation's history
//! against what the clients sent and saw: nothing acked is lost, nothing is stored
//! twice, seqs are gapless, every client's view matches history, nothing appears that
//! no client sent.
//!
//! `sigterm_under_load_closes_1001_exits_0_and_loses_nothing_acked` sends SIGTERM at
//! load: sessions get 1001, the process exits 0 within the deadline, and after a
//! restart everything acked is there.
//!
//! Scale with environment variables (defaults fit CI):
//!
//! | variable         | default | meaning                                          |
//! |------------------|---------|--------------------------------------------------|
//! | `CHAOS_CLIENTS`  | 20      | WebSocket clients (users), in pairs              |
//! | `CHAOS_KILLS`    | 3       | SIGKILLs during the load                         |
//! | `CHAOS_SECONDS`  | 15      | length of the kill test, load is ~70% of it      |
//! | `CHAOS_WINDOW`   | 8       | unacked sends a client keeps in flight           |
//! | `CHAOS_SEED`     | random  | seed of kill times and bodies (printed)          |
//!
//! The long run: `scripts/chaos.sh`, or
//! `CHAOS_KILLS=10 CHAOS_SECONDS=120 cargo test --release --test chaos -- --nocapture`.
//!
//! The kill test runs once more on the ScyllaDB store when `SCYLLA_URI` names a live CQL
//! node (in a fresh keyspace); otherwise that run returns at once and says so.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[path = "common/server.rs"]
mod server;
use server::Server;
#[path = "support/live_cql.rs"]
mod live_cql;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const BIN: &str = env!("CARGO_BIN_EXE_parley");
/// A connection that has sends outstanding and hears nothing for this long is dropped
/// (and counted as a stall).
const STALL: Duration = Duration::from_secs(10);
/// Rates high enough that the limiter never refuses a chaos client.
const UNLIMITED: &[&str] = &["--send-rate", "100000", "--send-burst", "100000"];

/// The two tests share the machine's cores; run them one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ----------------------------------------------------------------------------------
// The server process
// ----------------------------------------------------------------------------------

/// `parley serve` on `dir/data`, with the chaos flags `extra`, logging at `info`.
async fn serve(dir: &Path, extra: &[&str]) -> Server {
    Server::start(&dir.join("data"), "info", extra).await
}

/// Samples the resident set of whichever server process is current.
struct RssSampler {
    pid: Arc<AtomicU32>,
    peak_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let pid = Arc::new(AtomicU32::new(pid));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let task = {
            let (pid, peak_kib) = (pid.clone(), peak_kib.clone());
            tokio::spawn(async move {
                loop {
                    if let Some(kib) = rss_kib(pid.load(Ordering::Relaxed)) {
                        peak_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Self {
            pid,
            peak_kib,
            task,
        }
    }

    fn follow(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `parley admin seed-users` on the (stopped) data dir and `store` flags: `(id, token)`
/// of each account.
fn seed_users(dir: &Path, count: usize, store: &[&str]) -> Vec<(String, String)> {
    let out = dir.join("users.json");
    let output = Command::new(BIN)
        .args(["admin", "seed-users", "--data-dir"])
        .arg(dir.join("data"))
        .args(store)
        .args(["--count", &count.to_string(), "--prefix", "chaos", "--out"])
        .arg(&out)
        .env_remove("PARLEY_JWT_SECRET")
        .output()
        .expect("seed-users runs");
    assert!(
        output.status.success(),
        "seed-users failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let users: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&out).expect("users.json")).expect("JSON");
    assert_eq!(users.len(), count);
    users
        .iter()
        .map(|u| {
            (
                u["id"].as_str().expect("id").to_owned(),
                u["token"].as_str().expect("token").to_owned(),
            )
        })
        .collect()
}

// ----------------------------------------------------------------------------------
// The clients
// ----------------------------------------------------------------------------------

/// What every client task reads: where the server is and what to do.
struct Control {
    addr: RwLock<String>,
    /// Make new sends (otherwise only retry the unacked ones, then leave).
    sending: AtomicBool,
    /// Reconnect when a connection ends (otherwise leave).
    reconnect: AtomicBool,
    window: usize,
    /// Acks received, all clients.
    acked: AtomicU64,
    /// Sends made and not yet acked, all clients.
    unacked: AtomicI64,
}

impl Control {
    fn new(addr: &str, window: usize) -> Arc<Self> {
        Arc::new(Self {
            addr: RwLock::new(addr.to_owned()),
            sending: AtomicBool::new(true),
            reconnect: AtomicBool::new(true),
            window,
            acked: AtomicU64::new(0),
            unacked: AtomicI64::new(0),
        })
    }

    fn set_addr(&self, addr: &str) {
        *self.addr.write().expect("lock") = addr.to_owned();
    }

    fn addr(&self) -> String {
        self.addr.read().expect("lock").clone()
    }
}

/// A message as a client saw it (ack, live delivery or sync replay).
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: String,
    from: String,
    body: String,
    client_id: Option<String>,
}

impl Seen {
    fn of(m: &Value) -> Self {
        Self {
            id: m["id"].as_str().unwrap_or("").to_owned(),
            from: m["sender"].as_str().unwrap_or("").to_owned(),
            body: m["content"].as_str().unwrap_or("").to_owned(),
            client_id: m["clientId"].as_str().map(str::to_owned),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Stats {
    /// Distinct sends (client ids) made.
    sent: u64,
    /// Send frames written, retries included.
    frames: u64,
    /// Send frames that repeated a client id already sent.
    retried: u64,
    /// Client ids acked.
    acked: u64,
    /// Acks with `duplicate: true`.
    duplicates_returned: u64,
    connections: u64,
    stalls: u64,
    /// `message` frames for a seq this connection had already written.
    redelivered: u64,
    errors: BTreeMap<String, u64>,
    endings: BTreeMap<String, u64>,
}

impl Stats {
    fn add(&mut self, o: &Self) {
        self.sent += o.sent;
        self.frames += o.frames;
        self.retried += o.retried;
        self.acked += o.acked;
        self.duplicates_returned += o.duplicates_returned;
        self.connections += o.connections;
        self.stalls += o.stalls;
        self.redelivered += o.redelivered;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.endings {
            *self.endings.entry(k.clone()).or_default() += v;
        }
    }
}

/// How one connection ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    /// Nothing left to send; the client closed.
    Drained,
    /// The server sent a close frame with this code.
    Closed(Option<u16>),
    /// The connection broke without a close frame.
    Gone(String),
    /// Sends outstanding and nothing heard for [`STALL`].
    Stalled,
}

impl End {
    fn label(&self) -> String {
        match self {
            Self::Drained => "drained".into(),
            Self::Closed(Some(code)) => format!("close {code}"),
            Self::Closed(None) => "close (no code)".into(),
            Self::Gone(_) => "broken".into(),
            Self::Stalled => "stalled".into(),
        }
    }
}

/// One user with one session at a time, chatting with its partner.
struct Client {
    idx: usize,
    id: String,
    token: String,
    peer: String,
    rng: StdRng,
    next: u64,
    /// Every send ever made: client id → body.
    sent: BTreeMap<String, String>,
    /// Sent, not acked yet.
    pending: BTreeSet<String>,
    /// Acked: client id → (message id, seq).
    acked: HashMap<String, (String, u64)>,
    conv: Option<String>,
    /// Everything received for the conversation, by seq.
    view: BTreeMap<u64, Seen>,
    /// Contradictions seen by this client (a seq with two messages, a wrong ack, ...).
    conflicts: Vec<String>,
    stats: Stats,
    /// How the last connection ended.
    last_end: Option<End>,
}

fn text(v: &Value) -> WsMessage {
    WsMessage::Text(v.to_string().into())
}

async fn connect(addr: &str, token: &str) -> Result<Ws, String> {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .map_err(|_| "header".to_owned())?,
    );
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let first = tokio::time::timeout(Duration::from_secs(3), ws.next())
        .await
        .map_err(|_| "no ready frame".to_owned())?;
    match first {
        Some(Ok(WsMessage::Text(t))) if t.as_str().contains(r#""type":"ready""#) => Ok(ws),
        other => Err(format!("expected ready, got {other:?}")),
    }
}

impl Client {
    fn new(idx: usize, me: &(String, String), peer: &str, seed: u64) -> Self {
        Self {
            idx,
            id: me.0.clone(),
            token: me.1.clone(),
            peer: peer.to_owned(),
            rng: StdRng::seed_from_u64(seed ^ (idx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            next: 0,
            sent: BTreeMap::new(),
            pending: BTreeSet::new(),
            acked: HashMap::new(),
            conv: None,
            view: BTreeMap::new(),
            conflicts: Vec::new(),
            stats: Stats::default(),
            last_end: None,
        }
    }

    /// The highest seq up to which this client has every message.
    fn contiguous(&self) -> u64 {
        let mut c = 0;
        while self.view.contains_key(&(c + 1)) {
            c += 1;
        }
        c
    }

    fn sync_frame(&self) -> Value {
        let cursors = match &self.conv {
            Some(conv) => json!({ conv: self.contiguous() }),
            None => json!({}),
        };
        json!({"type": "sync", "cursors": cursors})
    }

    fn send_frame(&self, client_id: &str) -> Value {
        json!({
            "type": "send",
            "receiverId": self.peer,
            "content": self.sent[client_id],
            "clientId": client_id,
        })
    }

    fn new_send(&mut self, ctl: &Control) -> String {
        let n = self.next;
        self.next += 1;
        let client_id = format!("c{:03}-{n:08}", self.idx);
        let pad = self.rng.random_range(0..40);
        // Non-ASCII and quotes on purpose: bodies must come back byte for byte.
        let body = format!("{client_id} «é\"✓» {}", "ab".repeat(pad));
        self.sent.insert(client_id.clone(), body);
        self.pending.insert(client_id.clone());
        self.stats.sent += 1;
        ctl.unacked.fetch_add(1, Ordering::Relaxed);
        client_id
    }

    /// Records a message from an ack, a delivery or a replay.
    fn record(&mut self, m: &Value, this_conn: &mut HashSet<u64>, delivery: bool) {
        let Some(seq) = m["seq"].as_u64() else {
            self.conflicts.push(format!("message without a seq: {m}"));
            return;
        };
        let conv = m["conversationId"].as_str().unwrap_or("").to_owned();
        match &self.conv {
            None => self.conv = Some(conv),
            Some(c) if *c != conv => {
                self.conflicts
                    .push(format!("message in another conversation {conv}: {m}"));
                return;
            }
            Some(_) => {}
        }
        let seen = Seen::of(m);
        match self.view.get(&seq) {
            Some(prev) if *prev != seen => self
                .conflicts
                .push(format!("seq {seq} was {prev:?}, now {seen:?}")),
            Some(_) => {}
            None => {
                self.view.insert(seq, seen);
            }
        }
        if !this_conn.insert(seq) && delivery {
            self.stats.redelivered += 1;
        }
    }

    fn on_ack(
        &mut self,
        v: &Value,
        this_conn: &mut HashSet<u64>,
        outstanding: &mut HashSet<String>,
        ctl: &Control,
    ) {
        let m = &v["message"];
        self.record(m, this_conn, false);
        let Some(client_id) = v["clientId"].as_str() else {
            self.conflicts.push(format!("ack without clientId: {v}"));
            return;
        };
        if v["duplicate"] == true {
            self.stats.duplicates_returned += 1;
        }
        outstanding.remove(client_id);
        let id = m["id"].as_str().unwrap_or("").to_owned();
        let seq = m["seq"].as_u64().unwrap_or(0);
        if self.sent.get(client_id).map(String::as_str) != m["content"].as_str() {
            self.conflicts
                .push(format!("ack for {client_id} has another body: {v}"));
        }
        if self.pending.remove(client_id) {
            self.acked.insert(client_id.to_owned(), (id, seq));
            self.stats.acked += 1;
            ctl.acked.fetch_add(1, Ordering::Relaxed);
            ctl.unacked.fetch_sub(1, Ordering::Relaxed);
        } else {
            match self.acked.get(client_id) {
                Some(prev) if *prev == (id.clone(), seq) => {}
                Some(prev) => self.conflicts.push(format!(
                    "{client_id} acked as {prev:?}, again as ({id}, {seq})"
                )),
                None => self
                    .conflicts
                    .push(format!("ack for a client id never sent: {v}")),
            }
        }
    }

    /// Connects (again) until there is nothing left to do.
    async fn run(mut self, ctl: Arc<Control>) -> Self {
        loop {
            if !ctl.sending.load(Ordering::Relaxed) && self.pending.is_empty() {
                return self;
            }
            let ws = match connect(&ctl.addr(), &self.token).await {
                Ok(ws) => ws,
                Err(_) => {
                    if !ctl.reconnect.load(Ordering::Relaxed) {
                        self.last_end = Some(End::Gone("cannot connect".into()));
                        return self;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    continue;
                }
            };
            self.stats.connections += 1;
            let end = self.converse(ws, &ctl).await;
            *self.stats.endings.entry(end.label()).or_default() += 1;
            if end == End::Stalled {
                self.stats.stalls += 1;
            }
            let drained = end == End::Drained;
            self.last_end = Some(end);
            if drained || !ctl.reconnect.load(Ordering::Relaxed) {
                return self;
            }
        }
    }

    /// One connection: sync from the cursor, retry everything unacked, then send.
    async fn converse(&mut self, ws: Ws, ctl: &Control) -> End {
        let (mut tx, mut rx) = ws.split();
        let mut this_conn = HashSet::new();
        // Sent on this connection, no answer yet.
        let mut outstanding: HashSet<String> = HashSet::new();
        // Refused (rate limit, conversation restarting, ...): send again at.
        let mut retry: Vec<(Instant, String)> = Vec::new();
        let mut syncing = true;
        if tx.send(text(&self.sync_frame())).await.is_err() {
            return End::Gone("write".into());
        }
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_frame = Instant::now();
        loop {
            // Send frames to write: (client id, is a retry).
            let mut out: Vec<(String, bool)> = Vec::new();
            tokio::select! {
                frame = rx.next() => {
                    let t = match frame {
                        None => return End::Gone("eof".into()),
                        Some(Err(e)) => return End::Gone(e.to_string()),
                        Some(Ok(WsMessage::Close(f))) => {
                            return End::Closed(f.map(|f| u16::from(f.code)));
                        }
                        Some(Ok(WsMessage::Text(t))) => t,
                        Some(Ok(_)) => continue,
                    };
                    last_frame = Instant::now();
                    let v: Value = match serde_json::from_str(t.as_str()) {
                        Ok(v) => v,
                        Err(_) => {
                            self.conflicts.push(format!("a frame that is not JSON: {t}"));
                            continue;
                        }
                    };
                    match v["type"].as_str().unwrap_or("") {
                        "ack" => self.on_ack(&v, &mut this_conn, &mut outstanding, ctl),
                        "message" => self.record(&v["message"], &mut this_conn, true),
                        "synced" if v["more"] == true => {
                            let again = json!({"type": "sync", "cursors": v["cursors"]});
                            if tx.send(text(&again)).await.is_err() {
                                return End::Gone("write".into());
                            }
                        }
                        "synced" if syncing => {
                            syncing = false;
                            // Every send not acked may or may not be committed: retry it
                            // with the same client id.
                            for client_id in &self.pending {
                                if !outstanding.contains(client_id) {
                                    out.push((client_id.clone(), true));
                                }
                            }
                        }
                        "error" => {
                            let code = v["code"].as_str().unwrap_or("?").to_owned();
                            *self.stats.errors.entry(code).or_default() += 1;
                            if let Some(client_id) = v["clientId"].as_str()
                                && outstanding.remove(client_id)
                            {
                                let wait = v["retryAfterMs"].as_u64().unwrap_or(100);
                                retry.push((
                                    Instant::now() + Duration::from_millis(wait),
                                    client_id.to_owned(),
                                ));
                            }
                        }
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    let waiting = syncing || !outstanding.is_empty();
                    if waiting && last_frame.elapsed() > STALL {
                        return End::Stalled;
                    }
                    if syncing {
                        continue;
                    }
                    let now = Instant::now();
                    retry.retain(|(at, client_id)| {
                        if *at <= now {
                            out.push((client_id.clone(), true));
                            false
                        } else {
                            true
                        }
                    });
                    if ctl.sending.load(Ordering::Relaxed) {
                        while self.pending.len() < ctl.window {
                            let client_id = self.new_send(ctl);
                            out.push((client_id, false));
                        }
                    } else if self.pending.is_empty() {
                        let _ = tx.send(WsMessage::Close(None)).await;
                        return End::Drained;
                    }
                }
            }
            for (client_id, is_retry) in out {
                if !self.pending.contains(&client_id) {
                    continue;
                }
                self.stats.frames += 1;
                if is_retry {
                    self.stats.retried += 1;
                }
                outstanding.insert(client_id.clone());
                if tx.feed(text(&self.send_frame(&client_id))).await.is_err() {
                    return End::Gone("write".into());
                }
            }
            if tx.flush().await.is_err() {
                return End::Gone("write".into());
            }
        }
    }

    /// A last connection: sync until the server has nothing more, recording everything.
    async fn final_sync(&mut self, addr: &str) -> Result<(), String> {
        let mut ws = connect(addr, &self.token).await?;
        let mut this_conn = HashSet::new();
        ws.send(text(&self.sync_frame()))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .map_err(|_| "final sync timed out".to_owned())?;
            let t = match frame {
                Some(Ok(WsMessage::Text(t))) => t,
                Some(Ok(_)) => continue,
                other => return Err(format!("final sync ended: {other:?}")),
            };
            let v: Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
            match v["type"].as_str() {
                Some("message") => self.record(&v["message"], &mut this_conn, true),
                Some("synced") if v["more"] == true => {
                    ws.send(text(&json!({"type": "sync", "cursors": v["cursors"]})))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Some("synced") => break,
                _ => {}
            }
        }
        let _ = ws.close(None).await;
        Ok(())
    }
}

/// Users `2i` and `2i + 1` chat with each other.
fn pair_up(users: &[(String, String)], seed: u64) -> Vec<Client> {
    users
        .iter()
        .enumerate()
        .map(|(i, me)| Client::new(i, me, &users[i ^ 1].0, seed))
        .collect()
}

async fn run_all(clients: Vec<Client>, ctl: &Arc<Control>, limit: Duration) -> Vec<Client> {
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(c.run(ctl.clone())))
        .collect();
    let joined = tokio::time::timeout(limit, futures_util::future::join_all(tasks))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "clients did not finish within {limit:?}; {} sends still unacked",
                ctl.unacked.load(Ordering::Relaxed)
            )
        });
    joined
        .into_iter()
        .map(|r| r.expect("client task"))
        .collect()
}

// ----------------------------------------------------------------------------------
// The check
// ----------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Report {
    conversations: usize,
    history: usize,
    stats: Stats,
    /// Acked, but not in history (or in history as another message).
    lost: u64,
    /// Extra copies in history (same sender and client id, or same message id).
    duplicated: u64,
    /// In history, but no client sent it (or not with that body).
    phantom: u64,
    /// History positions whose seq is not their index + 1.
    gaps: u64,
    /// Entries of a client's view that disagree with history.
    view_mismatches: u64,
    /// History entries missing from a participant's view after its final sync.
    view_missing: u64,
    /// Contradictions seen by clients while running.
    conflicts: u64,
    /// Sends never acked by the end.
    unresolved: u64,
    /// Conversations listed for a user besides the one with its partner.
    unexpected_conversations: u64,
    details: Vec<String>,
}

impl Report {
    fn fail(&mut self, what: String) {
        if self.details.len() < 30 {
            self.details.push(what);
        }
    }

    fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "sent={} acked={} retried={} duplicates-returned={} lost={} duplicated={} \
             phantom={} gaps={} view-mismatches={} view-missing={} conflicts={} unresolved={} \
             history={} conversations={} connections={} stalls={} redelivered={} errors={:?} endings={:?}",
            s.sent,
            s.acked,
            s.retried,
            s.duplicates_returned,
            self.lost,
            self.duplicated,
            self.phantom,
            self.gaps,
            self.view_mismatches,
            self.view_missing,
            self.conflicts,
            self.unresolved,
            self.history,
            self.conversations,
            s.connections,
            s.stalls,
            s.redelivered,
            s.errors,
            s.endings,
        )
    }

    fn assert_clean(&self) {
        let bad = self.lost
            + self.duplicated
            + self.phantom
            + self.gaps
            + self.view_mismatches
            + self.view_missing
            + self.conflicts
            + self.unresolved
            + self.unexpected_conversations;
        assert!(
            bad == 0,
            "{}\nfirst problems:\n{}",
            self.summary(),
            self.details.join("\n")
        );
        assert_eq!(self.lost, 0, "lost");
        assert_eq!(self.duplicated, 0, "duplicated");
    }
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    let res = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(res.status(), 200, "GET {url}");
    res.json().await.expect("JSON body")
}

/// The whole history of a conversation, paged with `after`.
async fn history(http: &reqwest::Client, base: &str, token: &str, conv: &str) -> Vec<Value> {
    let mut after = 0;
    let mut out = Vec::new();
    loop {
        let page = get_json(
            http,
            &format!("{base}/api/conversations/{conv}/messages?after={after}&limit=100"),
            token,
        )
        .await;
        out.extend(
            page["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .cloned(),
        );
        match page["nextAfter"].as_u64() {
            Some(next) => after = next,
            None => return out,
        }
    }
}

/// Final syncs every client against `base`, then compares each conversation's history
/// with what its two clients sent, were acked and saw.
async fn check(base: &str, clients: &mut [Client]) -> Report {
    let mut report = Report::default();
    let addr = base.trim_start_matches("http://").to_owned();
    for c in clients.iter_mut() {
        if let Err(e) = c.final_sync(&addr).await {
            panic!("final sync of client {}: {e}", c.idx);
        }
    }
    let http = reqwest::Client::new();
    for c in clients.iter() {
        report.stats.add(&c.stats);
        report.unresolved += c.pending.len() as u64;
        report.conflicts += c.conflicts.len() as u64;
        for conflict in c.conflicts.iter().take(5) {
            report.fail(format!("client {}: {conflict}", c.idx));
        }
        // Every conversation the server lists for this user is the one with the partner.
        let listed = get_json(&http, &format!("{base}/api/conversations"), &c.token).await;
        for conv in listed["conversations"].as_array().expect("conversations") {
            let id = conv["id"].as_str().unwrap_or("");
            if c.conv.as_deref() != Some(id) {
                report.unexpected_conversations += 1;
                report.fail(format!("client {}: unexpected conversation {conv}", c.idx));
            }
        }
    }
    for pair in clients.chunks(2) {
        let [a, b] = pair else { continue };
        let Some(conv) = a.conv.clone().or_else(|| b.conv.clone()) else {
            if !a.acked.is_empty() || !b.acked.is_empty() {
                report.lost += (a.acked.len() + b.acked.len()) as u64;
                report.fail(format!("pair {}: acks but no conversation", a.idx));
            }
            continue;
        };
        report.conversations += 1;
        let h = history(&http, base, &a.token, &conv).await;
        report.history += h.len();

        // Seqs 1..=N, no gap, no repeat.
        for (i, m) in h.iter().enumerate() {
            if m["seq"].as_u64() != Some(i as u64 + 1) {
                report.gaps += 1;
                report.fail(format!("{conv}: position {} has seq {}", i + 1, m["seq"]));
            }
        }
        // Exactly once, by (sender, client id) and by id; sent by a client, as sent.
        let mut by_key: HashMap<(String, String), &Value> = HashMap::new();
        let mut ids = HashSet::new();
        for m in &h {
            let from = m["sender"].as_str().unwrap_or("").to_owned();
            let id = m["id"].as_str().unwrap_or("").to_owned();
            let client_id = m["clientId"].as_str().map(str::to_owned);
            let first_id = ids.insert(id);
            let first_key = match &client_id {
                Some(k) => by_key.insert((from.clone(), k.clone()), m).is_none(),
                None => true,
            };
            if !(first_id && first_key) {
                report.duplicated += 1;
                report.fail(format!("{conv}: duplicate in history {m}"));
            }
            let sender = [a, b].into_iter().find(|c| c.id == from);
            let sent_body = sender
                .zip(client_id.as_ref())
                .and_then(|(c, k)| c.sent.get(k));
            if sent_body.map(String::as_str) != m["content"].as_str() {
                report.phantom += 1;
                report.fail(format!("{conv}: in history, not sent like this: {m}"));
            }
        }
        // Every ack is in history, as acked.
        for c in [a, b] {
            for (client_id, (id, seq)) in &c.acked {
                match by_key.get(&(c.id.clone(), client_id.clone())) {
                    Some(m) if m["id"] == id.as_str() && m["seq"] == *seq => {}
                    found => {
                        report.lost += 1;
                        report.fail(format!(
                            "{conv}: {client_id} acked as ({id}, seq {seq}), history has {found:?}"
                        ));
                    }
                }
            }
        }
        // Every client's view agrees with history, and is complete after the final sync.
        for c in [a, b] {
            for (seq, seen) in &c.view {
                let at = usize::try_from(*seq)
                    .ok()
                    .and_then(|s| h.get(s.wrapping_sub(1)));
                let matches = at.is_some_and(|m| Seen::of(m) == *seen);
                if !matches {
                    report.view_mismatches += 1;
                    report.fail(format!(
                        "{conv}: client {} saw seq {seq} as {seen:?}, history has {at:?}",
                        c.idx
                    ));
                }
            }
            let missing = h
                .iter()
                .filter(|m| m["seq"].as_u64().is_none_or(|s| !c.view.contains_key(&s)))
                .count();
            if missing > 0 {
                report.view_missing += missing as u64;
                report.fail(format!(
                    "{conv}: client {} lacks {missing} messages after its final sync",
                    c.idx
                ));
            }
        }
    }
    report
}

// ----------------------------------------------------------------------------------
// The tests
// ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_and_duplicates_nothing() {
    sigkill_mid_load(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_and_duplicates_nothing_on_scylla() {
    let Some(uri) = live_cql::uri() else {
        live_cql::say_skipped("the chaos test on the ScyllaDB store");
        return;
    };
    live_cql::drop_stale_keyspaces(&uri).await;
    let keyspace = live_cql::unique_keyspace();
    sigkill_mid_load(&[
        "--store",
        "scylla",
        "--scylla-uri",
        &uri,
        "--scylla-keyspace",
        &keyspace,
    ])
    .await;
    live_cql::drop_keyspace(&uri, &keyspace).await;
}

/// SIGKILLs under load on the store that `store` flags name (the embedded one when empty).
async fn sigkill_mid_load(store: &[&str]) {
    let _serial = SERIAL.lock().await;
    let n_clients = env_or("CHAOS_CLIENTS", 20usize).max(2) & !1;
    let kills = env_or("CHAOS_KILLS", 3usize);
    let seconds = env_or("CHAOS_SECONDS", 15.0f64);
    let window = env_or("CHAOS_WINDOW", 8usize).max(1);
    let seed = env_or("CHAOS_SEED", rand::random::<u64>());
    println!(
        "chaos: clients={n_clients} kills={kills} seconds={seconds} window={window} CHAOS_SEED={seed}"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let users = seed_users(dir.path(), n_clients, store);
    let flags: Vec<&str> = UNLIMITED.iter().chain(store).copied().collect();
    let flags = flags.as_slice();

    let mut server = serve(dir.path(), flags).await;
    let rss = RssSampler::start(server.pid());
    let ctl = Control::new(&server.addr, window);
    let clients = pair_up(&users, seed);
    let runner = {
        let ctl = ctl.clone();
        let limit = Duration::from_secs_f64(seconds + 120.0);
        tokio::spawn(async move { run_all(clients, &ctl, limit).await })
    };

    // Kills at random points of the load phase, each once load has resumed after the
    // previous restart (at least one ack per client since), so every kill is mid-load.
    let load = Duration::from_secs_f64(seconds * 0.7);
    let started = Instant::now();
    let slot = load.as_secs_f64() / (kills as f64 + 1.0);
    let mut acked_at_restart = 0;
    let mut down_total = Duration::ZERO;
    for k in 1..=kills {
        let delay = Duration::from_secs_f64(slot * rng.random_range(0.5..1.5));
        tokio::time::sleep(delay).await;
        let wait_from = Instant::now();
        while ctl.acked.load(Ordering::Relaxed) < acked_at_restart + n_clients as u64 {
            assert!(
                wait_from.elapsed() < Duration::from_secs(30),
                "no load after restart {}",
                k - 1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (acked, unacked) = (
            ctl.acked.load(Ordering::Relaxed),
            ctl.unacked.load(Ordering::Relaxed),
        );
        let status = server.kill9();
        let killed_at = Instant::now();
        let pause = Duration::from_millis(rng.random_range(0..300));
        tokio::time::sleep(pause).await;
        server = serve(dir.path(), flags).await;
        rss.follow(server.pid());
        ctl.set_addr(&server.addr);
        let down = killed_at.elapsed();
        down_total += down;
        acked_at_restart = ctl.acked.load(Ordering::Relaxed);
        println!(
            "kill {k}/{kills} at {:.1}s: {status}; acked so far {acked}, in flight {unacked}; down {:.0} ms",
            started.elapsed().as_secs_f64(),
            down.as_secs_f64() * 1000.0
        );
    }
    let rest = load.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    let load_secs = started.elapsed().as_secs_f64();
    ctl.sending.store(false, Ordering::Relaxed);
    let mut clients = runner.await.expect("clients");
    let drained_secs = started.elapsed().as_secs_f64();

    // A clean stop, then check against a fresh start on the same data dir.
    server.signal("TERM");
    let (status, took) = server.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "clean stop after the chaos (took {took:?})"
    );
    let warnings = server.warnings();
    let mut server = serve(dir.path(), flags).await;
    let report = check(&server.base(), &mut clients).await;
    server.signal("TERM");
    let (status, _) = server.wait_exit(Duration::from_secs(20)).await;
    let peak = rss.peak_mib();

    println!(
        "chaos result: kills={kills} load={load_secs:.1}s drained-at={drained_secs:.1}s \
         down-total={:.0}ms peak-rss={peak:.1}MiB acks/s={:.0}",
        down_total.as_secs_f64() * 1000.0,
        report.stats.acked as f64 / drained_secs,
    );
    println!("chaos counts: {}", report.summary());
    if !warnings.is_empty() {
        println!("server warnings before the final stop:");
        for w in warnings.iter().take(20) {
            println!("  {w}");
        }
    }
    report.assert_clean();
    assert!(report.stats.acked > 0, "the load produced acks");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "final clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_closes_1001_exits_0_and_loses_nothing_acked() {
    let _serial = SERIAL.lock().await;
    let n_clients = env_or("CHAOS_CLIENTS", 20usize).max(2) & !1;
    let window = env_or("CHAOS_WINDOW", 8usize).max(1);
    let seed = env_or("CHAOS_SEED", rand::random::<u64>());
    let shutdown_timeout = 10;
    let deadline = Duration::from_secs(2 * shutdown_timeout);
    println!("shutdown: clients={n_clients} window={window} CHAOS_SEED={seed}");
    let dir = tempfile::tempdir().expect("temp dir");
    let users = seed_users(dir.path(), n_clients, &[]);
    let timeout_flag = format!("{shutdown_timeout}s");
    let mut flags = UNLIMITED.to_vec();
    flags.extend(["--shutdown-timeout", &timeout_flag]);

    let mut server = serve(dir.path(), &flags).await;
    let rss = RssSampler::start(server.pid());
    let ctl = Control::new(&server.addr, window);
    // Until the signal: no reconnects, so each client's last ending is the server's close.
    ctl.reconnect.store(false, Ordering::Relaxed);
    let runner = {
        let (ctl, clients) = (ctl.clone(), pair_up(&users, seed));
        tokio::spawn(async move { run_all(clients, &ctl, Duration::from_secs(120)).await })
    };
    // At load: a couple of seconds, and a fair number of acks per client.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waited = Instant::now();
    while ctl.acked.load(Ordering::Relaxed) < 20 * n_clients as u64 {
        assert!(waited.elapsed() < Duration::from_secs(30), "no load");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked_before = ctl.acked.load(Ordering::Relaxed);
    let in_flight = ctl.unacked.load(Ordering::Relaxed);
    server.signal("TERM");
    let (status, took) = server.wait_exit(deadline).await;
    let clients = runner.await.expect("clients");
    let acked_at_close = ctl.acked.load(Ordering::Relaxed);
    let in_doubt = ctl.unacked.load(Ordering::Relaxed);
    let endings: BTreeMap<String, usize> = clients.iter().fold(BTreeMap::new(), |mut m, c| {
        let label = c.last_end.as_ref().map_or("none".into(), End::label);
        *m.entry(label).or_default() += 1;
        m
    });
    println!(
        "SIGTERM with {acked_before} acked and {in_flight} in flight: exit {status:?} after {:.0} ms; \
         acked by the close {acked_at_close}, in doubt {in_doubt}; sessions ended {endings:?}",
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit 0 within {deadline:?} (took {took:?}); stderr: {}",
        server.stderr()
    );
    assert!(server.saw("stopped"), "the stop is logged");
    let late = server
        .warnings()
        .into_iter()
        .filter(|w| w.contains("did not close in time"))
        .count();
    assert_eq!(late, 0, "every session closed within the shutdown timeout");
    for c in &clients {
        assert_eq!(
            c.last_end,
            Some(End::Closed(Some(1001))),
            "client {} was told the server is going away",
            c.idx
        );
    }
    let before_restart: Vec<HashMap<String, (String, u64)>> =
        clients.iter().map(|c| c.acked.clone()).collect();
    let dup_before: u64 = clients.iter().map(|c| c.stats.duplicates_returned).sum();

    // Restart on the same dir: resolve every in-doubt send by retrying it, then check.
    let mut server = serve(dir.path(), &flags).await;
    rss.follow(server.pid());
    ctl.set_addr(&server.addr);
    ctl.sending.store(false, Ordering::Relaxed);
    ctl.reconnect.store(true, Ordering::Relaxed);
    let mut clients = run_all(clients, &ctl, Duration::from_secs(60)).await;
    let dup_after: u64 = clients.iter().map(|c| c.stats.duplicates_returned).sum();
    let report = check(&server.base(), &mut clients).await;
    server.signal("TERM");
    let (status, _) = server.wait_exit(deadline).await;
    println!(
        "shutdown result: in doubt at the close {in_doubt}, of which committed by the shutdown \
         flush {} (duplicate on retry), peak-rss={:.1}MiB",
        dup_after - dup_before,
        rss.peak_mib()
    );
    println!("shutdown counts: {}", report.summary());
    // The acks from before the restart are among those checked; say so explicitly.
    for (c, before) in clients.iter().zip(&before_restart) {
        for (client_id, acked) in before {
            assert_eq!(
                c.acked.get(client_id),
                Some(acked),
                "ack kept across restart"
            );
        }
    }
    report.assert_clean();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "final clean stop");
}
