//! Shared setup and checks of Parley's fuzz targets.
//!
//! The targets that go past the codec (`ws_dispatch`, `rest_bodies`) need the real
//! server parts: a fjall store, the actor tree, the app state and the router. Building
//! them costs an argon2 hash or three and a database, so [`fixture`] builds them once per
//! process, on one tokio runtime, in a temp dir that a later run cleans up (libFuzzer
//! exits without running destructors).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use actors::domain::{
    DisplayName, Email, EventKind, MessageBody, MessageContent, Password, Timestamp, User, UserId,
    UserRecord,
};
use actors::{Messenger, MessengerConfig, SendRequest, Store, Target};
use parley::auth::{PasswordHasher, Tokens};
use parley::config::Config;
use parley::state::AppState;
use parley::store::FjallStore;
use serde_json::Value;

/// The body limit the targets parse with (the server's default `max_message_chars`).
pub const MAX_BODY_CHARS: usize = 4096;

/// The codes `docs/protocol.md` documents for a frame that cannot be turned into a
/// command.
pub const FRAME_ERROR_CODES: &[&str] = &[
    "malformed_json",
    "invalid_frame",
    "unknown_type",
    "validation_failed",
];

/// The address register and login see as the client's.
pub const PEER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)),
    40_000,
);

/// An account that exists before fuzzing starts.
pub struct Known {
    /// The account.
    pub user: User,
    /// Its password.
    pub password: &'static str,
    /// A valid bearer token for it.
    pub token: String,
}

/// Everything built once per process.
pub struct Fixture {
    /// The runtime every request runs on.
    pub rt: tokio::runtime::Runtime,
    /// The app state (the services over the store and actors, and their rate limits).
    pub state: AppState,
    /// The real router of `parley::http::router`.
    pub router: axum::Router,
    /// The store, as the actors and services see it (the state no longer hands it out).
    pub store: Arc<dyn Store>,
    /// The tokens the state verifies with (same secret and lifetime): mints more tokens.
    pub tokens: Tokens,
    /// Two accounts that can message each other.
    pub alice: Known,
    /// See `alice`.
    pub bob: Known,
}

/// The process's fixture, built on first use.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn data_dir() -> PathBuf {
    let root = std::env::temp_dir().join("parley-fuzz");
    // Remove the dirs of earlier runs whose process is gone (libFuzzer never drops ours).
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok();
            if pid.is_some_and(|pid| !PathBuf::from(format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fuzz data dir");
    dir
}

fn build() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = data_dir();
    let mut config = Config::from_args(["--data-dir", dir.to_str().expect("UTF-8 temp dir")])
        .expect("default config");
    config.jwt_secret = None;
    // Rate limits would turn most inputs into 429s; the fuzzer wants the handlers.
    config.auth_per_address_per_minute = 1_000_000_000;
    config.login_per_email_per_minute = 1_000_000_000;
    config.login_failures_per_address = 1_000_000_000;
    config.send_rate_per_second = 1_000_000_000;
    config.send_burst = 1_000_000_000;
    config.max_message_chars = MAX_BODY_CHARS;
    let (state, router, store, tokens, alice, bob) = rt.block_on(async move {
        let store: Arc<dyn Store> =
            Arc::new(FjallStore::open(&dir.join("store")).expect("open the store"));
        let messenger = Messenger::start(store.clone(), MessengerConfig::default())
            .await
            .expect("start the actors");
        let hasher = PasswordHasher::new(1).expect("hasher");
        let tokens = Tokens::new(&[7u8; 32], config.token_ttl);
        // The state keeps its own clones; the fixture keeps these to make accounts and
        // tokens the way the accounts service does.
        let state = AppState::new(
            config,
            store.clone(),
            messenger,
            tokens.clone(),
            hasher.clone(),
        );
        let router = parley::http::router(state.clone()).expect("router");
        let alice = known(
            &store,
            &hasher,
            &tokens,
            "Alice",
            "alice@example.com",
            "alice-password",
        )
        .await;
        let bob = known(
            &store,
            &hasher,
            &tokens,
            "Bob",
            "bob@example.com",
            "bob-password",
        )
        .await;
        // Their conversation exists from the start, so sends to it by id can succeed.
        state
            .messenger()
            .send(SendRequest {
                from: alice.user.id,
                target: Target::User(bob.user.id),
                kind: EventKind::Message(MessageContent::text(
                    MessageBody::parse("hello", MAX_BODY_CHARS).expect("valid body"),
                )),
                client_id: None,
                origin: None,
            })
            .await
            .expect("first message");
        (state, router, store, tokens, alice, bob)
    });
    Fixture {
        rt,
        state,
        router,
        store,
        tokens,
        alice,
        bob,
    }
}

/// Creates an account directly in the store (as registration would, without its rate
/// limit) and mints a token for it.
async fn known(
    store: &Arc<dyn Store>,
    hasher: &PasswordHasher,
    tokens: &Tokens,
    name: &str,
    email: &str,
    password: &'static str,
) -> Known {
    let hash = hasher
        .hash(&Password::parse(password).expect("valid password"))
        .await
        .expect("hash");
    let user = User {
        id: UserId::generate(),
        name: DisplayName::parse(name).expect("valid name"),
        email: Email::parse(email).expect("valid email"),
    };
    let record = UserRecord {
        user: user.clone(),
        password_hash: hash,
        created_at: Timestamp::now(),
    };
    store.insert_user(&record).await.expect("insert");
    let (token, _) = tokens.issue(user.id, None).expect("token");
    Known {
        user,
        password,
        token,
    }
}

/// Asserts that `text` is one JSON value and returns it.
pub fn json(text: &str, what: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => panic!("{what} is not valid JSON ({e}): {text:?}"),
    }
}

/// JSON equality, except that floats need only agree to 15 significant digits: without
/// its `float_roundtrip` feature, serde_json parses some long decimals to a neighbouring
/// f64, so a number echoed back (a non-string `client_id`) can come back in its last bit.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || ((x - y) / x.abs().max(y.abs())).abs() < 1e-15,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Outcome counts, printed to stderr every 5000 calls when `PARLEY_FUZZ_STATS` is set,
/// to see which paths the fuzzer reaches (e.g. how many sends commit, which statuses).
pub fn count(outcome: impl Into<String>) {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static ON: OnceLock<bool> = OnceLock::new();
    static COUNTS: Mutex<(u64, BTreeMap<String, u64>)> = Mutex::new((0, BTreeMap::new()));
    if !*ON.get_or_init(|| std::env::var_os("PARLEY_FUZZ_STATS").is_some()) {
        return;
    }
    let mut c = COUNTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *c.1.entry(outcome.into()).or_default() += 1;
    c.0 += 1;
    if c.0.is_multiple_of(5000) {
        eprintln!("parley-fuzz outcomes after {}: {:?}", c.0, c.1);
    }
}
