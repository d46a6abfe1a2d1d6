//! Typed settings, from flags and `PARLEY_*` environment variables. The JWT secret is
//! read from the environment only: a flag would show it in `ps`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::store::scylla::{
    ConsistencyLevel, ContactPoints, KeyspaceName, Replication, ScyllaConfig,
};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Settings of `parley serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PARLEY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory of the embedded store and the generated token secret (created if
    /// missing).
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./parley-data")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Log format.
    #[arg(long, env = "PARLEY_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,

    /// Origin allowed to call the API from a browser (repeatable; none by default).
    #[arg(
        long = "cors-origin",
        env = "PARLEY_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Lifetime of issued tokens (e.g. 7d, 12h, 30m). REST accepts a token up to 5 s
    /// past its expiry (clock skew); a session opened with it ends at the expiry.
    #[arg(long, env = "PARLEY_TOKEN_TTL", default_value = "7d", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,

    /// Lifetime of refresh tokens (e.g. 30d). Each refresh hands out a new one with a
    /// fresh lifetime; a login not refreshed within it is signed out.
    #[arg(long, env = "PARLEY_REFRESH_TTL", default_value = "30d", value_parser = humantime::parse_duration)]
    pub refresh_ttl: Duration,

    /// Account requests (listing and signing out sessions, changing the password,
    /// deleting the account) one user may make per minute.
    #[arg(long, env = "PARLEY_ACCOUNT_REQUESTS_PER_MINUTE", default_value_t = 30)]
    pub account_requests_per_minute: u32,

    /// Pages of `GET /api/auth/export` one user may read per minute.
    #[arg(long, env = "PARLEY_EXPORT_PAGES_PER_MINUTE", default_value_t = 30)]
    pub export_pages_per_minute: u32,

    /// Failed logins for one email from one client address before that address must
    /// wait (1 s, doubling to 15 min) before trying that email again; a success clears
    /// them. Other addresses are not affected, so a stranger cannot lock the owner out.
    #[arg(long, env = "PARLEY_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 5)]
    pub login_failures_per_address: u32,

    /// Failed logins per email per minute, from all addresses together, past which the
    /// email is taken to be under a distributed attack: every failure then makes its
    /// address wait. An address with no failure for that email is never refused.
    #[arg(long, env = "PARLEY_LOGIN_PER_EMAIL_PER_MINUTE", default_value_t = 10)]
    pub login_per_email_per_minute: u32,

    /// Login and registration attempts allowed per client address per minute.
    #[arg(long, env = "PARLEY_AUTH_PER_ADDRESS_PER_MINUTE", default_value_t = 60)]
    pub auth_per_address_per_minute: u32,

    /// Reverse proxy whose `X-Forwarded-For` is believed (repeatable; an address or a
    /// CIDR network; comma-separated in the variable). From such a peer, the client is
    /// the right-most forwarded address that is not itself a trusted proxy; from any
    /// other peer the header is ignored.
    #[arg(long = "trusted-proxy", env = "PARLEY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Longest message body, in characters.
    #[arg(long, env = "PARLEY_MAX_MESSAGE_CHARS", default_value_t = 4096)]
    pub max_message_chars: usize,

    /// Messages one user may send per second (sustained), across all sessions.
    #[arg(long = "send-rate", env = "PARLEY_SEND_RATE", default_value_t = 50)]
    pub send_rate_per_second: u32,

    /// Messages one user may send in a burst above the sustained rate.
    #[arg(long, env = "PARLEY_SEND_BURST", default_value_t = 100)]
    pub send_burst: u32,

    /// Messages a session may have queued before it is closed as a slow consumer. Keep it
    /// above the largest burst one commit can deliver (`send_burst` of each participant).
    #[arg(long, env = "PARLEY_SESSION_QUEUE", default_value_t = 1024)]
    pub session_queue: usize,

    /// Client ids each active conversation keeps in memory, so that a new id is known to
    /// be new (and a retry recognised) without a store read. A conversation with at most
    /// this many messages is loaded whole when its actor starts; past it, ids not in
    /// memory are looked up in the store.
    #[arg(long, env = "PARLEY_RECENT_CLIENT_IDS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub recent_client_ids: u32,

    /// Shortest time between the starts of two group commits. Under load, sends that
    /// arrive meanwhile share the next commit's fsync (each fsync costs ~40 µs of CPU
    /// here); when idle, a send is committed at once. Acks still wait for the fsync.
    /// `0s`: commit as soon as the previous commit is done.
    #[arg(long, env = "PARLEY_COMMIT_INTERVAL", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,

    /// Receipts (delivered, read) one user may send per second, all sessions together
    /// (with a burst of as many again); beyond, `rate_limited`.
    #[arg(long, env = "PARLEY_RECEIPTS_PER_SECOND", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub receipts_per_second: u32,

    /// Contacts one user may add per minute (beyond, `rate_limited`): each add looks an
    /// email up, so this bounds how fast anyone can learn which emails have accounts.
    #[arg(long, env = "PARLEY_CONTACT_ADDS_PER_MINUTE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub contact_adds_per_minute: u32,

    /// Direct conversations a user may have opened that nobody has answered yet; beyond,
    /// opening one more is refused (`too_many_unanswered`) until someone writes back.
    #[arg(long, env = "PARLEY_MAX_UNANSWERED_CONVERSATIONS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_unanswered_conversations: u32,

    /// Most members a group may have (its owner included).
    #[arg(long, env = "PARLEY_MAX_GROUP_MEMBERS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub max_group_members: u32,

    /// Sessions (devices, tabs) one user may hold at once.
    #[arg(long, env = "PARLEY_MAX_SESSIONS_PER_USER", default_value_t = 16)]
    pub max_sessions_per_user: usize,

    /// Idle user and conversation actors stop after this long.
    #[arg(long, env = "PARLEY_ACTOR_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub actor_idle_timeout: Duration,

    /// Most messages replayed in answer to one `sync` (the rest come with `more: true`).
    #[arg(long, env = "PARLEY_SYNC_BATCH", default_value_t = 1000)]
    pub sync_batch: usize,

    /// `sync` requests one user may make per minute, all sessions together (a burst of
    /// this many, refilling over the minute; beyond, `rate_limited` with `retryAfterMs`).
    #[arg(long, env = "PARLEY_SYNCS_PER_MINUTE", default_value_t = 60)]
    pub syncs_per_minute: u32,

    /// Realtime sessions one user may open per minute (beyond: 429 at the upgrade).
    #[arg(long, env = "PARLEY_SESSION_OPENS_PER_MINUTE", default_value_t = 60)]
    pub session_opens_per_minute: u32,

    /// Longest WebSocket message or frame, in bytes (larger ones close with 1009).
    #[arg(long, env = "PARLEY_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// WebSocket sessions the server holds at once (beyond: 503 at upgrade).
    #[arg(long, env = "PARLEY_MAX_CONNECTIONS", default_value_t = 18_000)]
    pub max_connections: usize,

    /// Threads that hash and verify passwords (argon2id, ~25 ms of CPU each). Default:
    /// one fewer than the cores (at least one), so a login storm leaves a core to chat.
    #[arg(long, env = "PARLEY_PASSWORD_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub password_threads: Option<u16>,

    /// A connection must begin a request within this long of being accepted or of its
    /// last response (else it is closed), and send a request's whole body within this
    /// long of its headers (else 408). Upgraded WebSocket sessions are exempt: their
    /// heartbeat finds dead peers.
    #[arg(long, env = "PARLEY_IDLE_CONNECTION_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub idle_connection_timeout: Duration,

    /// Connections held at once, HTTP and WebSocket together. Beyond it a connection is
    /// answered 503 `too_many_connections` and closed. Keep it below the process's file
    /// descriptor limit, leaving room for the store's files.
    #[arg(long, env = "PARLEY_MAX_HTTP_CONNECTIONS", default_value_t = 19_000)]
    pub max_http_connections: usize,

    /// A client must send a request's headers within this long of its first byte, or
    /// it is answered 408 and the connection closed (also bounds a stalled WebSocket
    /// handshake).
    #[arg(long, env = "PARLEY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Interval of server pings; a session silent for 1.5 intervals is closed (4000),
    /// so a dead peer is found within two.
    #[arg(long, env = "PARLEY_HEARTBEAT_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,

    /// How long shutdown waits for sessions and actors before giving up on them.
    #[arg(long, env = "PARLEY_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Bearer token of the operator routes (`GET /admin/actors`), at least 16
    /// characters; without one those routes do not exist. Prefer the variable: a flag
    /// shows in `ps`.
    #[arg(long, env = "PARLEY_ADMIN_TOKEN", hide_env_values = true, value_parser = AdminTokenParser)]
    pub admin_token: Option<Secret>,

    /// HMAC secret for tokens, at least 32 bytes; from `PARLEY_JWT_SECRET` only. When
    /// unset, a random one is generated on first start and kept in the data dir.
    #[arg(skip)]
    pub jwt_secret: Option<Secret>,
}

/// Which store Parley keeps its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded store, in the data dir: one machine, nothing to install.
    Fjall,
    /// A ScyllaDB (or Apache Cassandra) cluster.
    Scylla,
}

/// Where Parley keeps its state, shared by `parley serve` and the admin commands that
/// open the store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: `fjall` (embedded, in the data dir) or `scylla` (a ScyllaDB or
    /// Cassandra cluster, see the `--scylla-*` flags).
    #[arg(
        long = "store",
        env = "PARLEY_STORE",
        value_enum,
        default_value = "fjall"
    )]
    pub kind: StoreKind,

    /// ScyllaDB contact points, `HOST:PORT[,HOST:PORT...]` (required with `--store
    /// scylla`); the driver discovers the other nodes.
    #[arg(long, env = "PARLEY_SCYLLA_URI", required_if_eq("kind", "scylla"))]
    pub scylla_uri: Option<ContactPoints>,

    /// Keyspace of Parley's tables, created (and migrated) at start if needed.
    #[arg(long, env = "PARLEY_SCYLLA_KEYSPACE", default_value = "parley")]
    pub scylla_keyspace: KeyspaceName,

    /// Replication of the keyspace when Parley creates it: `SimpleStrategy:N` or
    /// `NetworkTopologyStrategy:DC=N[,DC=N...]` (ignored for an existing keyspace).
    #[arg(
        long,
        env = "PARLEY_SCYLLA_REPLICATION",
        default_value = "SimpleStrategy:1"
    )]
    pub scylla_replication: Replication,

    /// Consistency level of every read and write (`QUORUM`, `LOCAL_QUORUM`, `ONE`...);
    /// a message is acknowledged once written at this level.
    #[arg(long, env = "PARLEY_SCYLLA_CONSISTENCY", default_value = "QUORUM")]
    pub scylla_consistency: ConsistencyLevel,

    /// How long one ScyllaDB request may take before it fails (a send then answers
    /// `store_unavailable`).
    #[arg(long, env = "PARLEY_SCYLLA_REQUEST_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub scylla_request_timeout: Duration,
}

impl StoreArgs {
    /// The ScyllaDB settings, when that is the store.
    pub fn scylla(&self) -> Option<ScyllaConfig> {
        match (self.kind, &self.scylla_uri) {
            (StoreKind::Scylla, Some(nodes)) => Some(ScyllaConfig::new(
                nodes.clone(),
                self.scylla_keyspace.clone(),
                self.scylla_replication.clone(),
                self.scylla_consistency,
                self.scylla_request_timeout,
            )),
            _ => None,
        }
    }
}

/// How this node joins a cluster of Parley nodes (`src/cluster/`); none of it is used
/// without `--cluster-nats`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// NATS server of the cluster, `nats://[USER:PASSWORD@]HOST:PORT`: joins this node to
    /// the other Parley nodes on the same NATS and ScyllaDB keyspace (needs `--store
    /// scylla` and `--node-id`). Without it Parley is a single node. Never logged.
    #[arg(
        long,
        env = "PARLEY_CLUSTER_NATS",
        hide_env_values = true,
        requires = "node_id",
        value_parser = parse_nats_url
    )]
    pub cluster_nats: Option<Secret>,

    /// This node's name in the cluster, unique among the nodes: letters, digits, `-`
    /// and `_`, at most 64.
    #[arg(long, env = "PARLEY_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,

    /// How long a conversation's lease outlives its holder's last renewal: a dead
    /// node's conversations move to another node within about this long. The holder
    /// renews every sixth of it and stops acking after half of it without a renewal.
    #[arg(long, env = "PARLEY_CLUSTER_LEASE", default_value = "6s", value_parser = humantime::parse_duration)]
    pub cluster_lease: Duration,
}

/// Takes a NATS URL as a secret: it may carry a user and password.
fn parse_nats_url(value: &str) -> Result<Secret, String> {
    if value.starts_with("nats://") || value.starts_with("tls://") {
        Ok(Secret(value.to_owned()))
    } else {
        Err("a NATS URL starts with nats:// or tls://".into())
    }
}

/// Parses a node id: it becomes a NATS subject token and a CQL value.
fn parse_node_id(value: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err("a node id is 1 to 64 letters, digits, '-' or '_'".into())
    }
}

/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Parses an admin token; a refusal never echoes the value (clap's own errors would).
#[derive(Clone)]
struct AdminTokenParser;

impl clap::builder::TypedValueParser for AdminTokenParser {
    type Value = Secret;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Secret, clap::Error> {
        let refuse = |why: String| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, why).with_cmd(cmd)
        };
        let raw = value
            .to_str()
            .ok_or_else(|| refuse("the admin token must be UTF-8\n".into()))?;
        if raw.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(refuse(format!(
                "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters\n"
            )));
        }
        Ok(Secret(raw.to_owned()))
    }
}

impl Config {
    /// The settings for `args` (as after `parley serve`), with `PARLEY_*` variables
    /// applied; the secret is taken from the environment.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        let mut config = <Wrapper as clap::Parser>::try_parse_from(
            std::iter::once(std::ffi::OsString::from("parley"))
                .chain(args.into_iter().map(Into::into)),
        )?
        .config;
        config.jwt_secret = std::env::var("PARLEY_JWT_SECRET").ok().map(Secret);
        Ok(config)
    }
}

/// Parses a `--trusted-proxy` value: an address (one host) or a network in CIDR form.
pub fn parse_trusted_proxy(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{value:?} is not an IP address or a CIDR network"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_store_is_the_default_and_scylla_needs_contact_points() {
        let default = Config::from_args(std::iter::empty::<&str>()).unwrap();
        assert_eq!(default.store.kind, StoreKind::Fjall);
        assert!(default.store.scylla().is_none());
        assert!(Config::from_args(["--store", "scylla"]).is_err());
        let scylla = Config::from_args([
            "--store",
            "scylla",
            "--scylla-uri",
            "10.0.0.1:9042,10.0.0.2:9042",
            "--scylla-keyspace",
            "chat",
            "--scylla-replication",
            "NetworkTopologyStrategy:dc1=3,dc2=3",
            "--scylla-consistency",
            "local_quorum",
        ])
        .unwrap();
        let s = scylla.store.scylla().expect("scylla settings");
        assert_eq!(s.nodes.to_string(), "10.0.0.1:9042,10.0.0.2:9042");
        assert_eq!(s.keyspace.as_str(), "chat");
        assert_eq!(
            s.replication.to_string(),
            "NetworkTopologyStrategy:dc1=3,dc2=3"
        );
        assert_eq!(s.consistency, ConsistencyLevel::LocalQuorum);
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        for bad in [
            ["--scylla-uri", "nohost"],
            ["--scylla-keyspace", "bad-name"],
            ["--scylla-replication", "SimpleStrategy:0"],
            ["--scylla-consistency", "ANY"],
        ] {
            let mut args = vec!["--store", "scylla"];
            if bad[0] != "--scylla-uri" {
                args.extend(["--scylla-uri", "h:1"]);
            }
            args.extend(bad);
            assert!(Config::from_args(args).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn password_threads_default_to_the_server_and_refuse_zero() {
        let default = Config::from_args(std::iter::empty::<&str>()).unwrap();
        assert_eq!(default.password_threads, None);
        let three = Config::from_args(["--password-threads", "3"]).unwrap();
        assert_eq!(three.password_threads, Some(3));
        let zero = Config::from_args(["--password-threads", "0"]);
        assert!(
            zero.is_err(),
            "zero hashing threads would make every login hang"
        );
    }
}
