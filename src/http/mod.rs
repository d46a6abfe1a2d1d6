//! The HTTP layer: shared state, the router, the error envelope, extractors and
//! middleware. Handlers are thin: they validate input into domain types and call the
//! store (through the `Store` trait) or the messenger; they never touch fjall directly.

mod client_addr;
mod error;
mod extract;
mod middleware;
pub(crate) mod routes;

use std::net::IpAddr;
use std::sync::Arc;

use actors::domain::UserId;
use actors::{Messenger, Store};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use client_addr::{ClientAddr, parse_trusted_proxy};
pub use error::{ApiError, Validator, envelope_json};
pub use extract::{ApiJson, ApiQuery};
pub use middleware::SECURITY_HEADERS;

use crate::auth::{KeyedLimiter, LoginGuard, LoginPolicy, PasswordHasher, Tokens};
use crate::config::Config;

/// Largest REST request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The rate limits in force.
pub struct Limits {
    /// Login attempts per email and client address, with backoff (see [`LoginGuard`]).
    pub login: LoginGuard,
    /// Login and registration attempts per client address.
    pub auth_by_address: KeyedLimiter<IpAddr>,
    /// Sends per user, over REST and WebSocket together.
    pub sends: KeyedLimiter<UserId>,
}

impl Limits {
    /// The limits `config` asks for.
    pub fn new(config: &Config) -> Self {
        Self {
            login: LoginGuard::new(LoginPolicy::new(
                config.login_failures_per_address,
                config.login_per_email_per_minute,
            )),
            auth_by_address: KeyedLimiter::per_minute(
                "auth_by_address",
                config.auth_per_address_per_minute,
            ),
            sends: KeyedLimiter::per_second(
                "sends",
                config.send_rate_per_second,
                config.send_burst,
            ),
        }
    }

    /// Forgets idle keys.
    pub fn sweep(&self) {
        self.login.sweep();
        self.auth_by_address.sweep();
        self.sends.sweep();
    }
}

struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    messenger: Messenger,
    tokens: Tokens,
    hasher: PasswordHasher,
    limits: Limits,
    shutdown: CancellationToken,
    sessions: TaskTracker,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Bundles the services.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        messenger: Messenger,
        tokens: Tokens,
        hasher: PasswordHasher,
    ) -> Self {
        let limits = Limits::new(&config);
        Self(Arc::new(Inner {
            config,
            store,
            messenger,
            tokens,
            hasher,
            limits,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
        }))
    }

    /// Settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }
    /// The actor tree.
    pub fn messenger(&self) -> &Messenger {
        &self.0.messenger
    }
    /// Token issuing and checking.
    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }
    /// Password hashing.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.0.hasher
    }
    /// Rate limits.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }
    /// Cancelled when the server starts shutting down; every session loop selects on it.
    pub fn shutdown_signal(&self) -> &CancellationToken {
        &self.0.shutdown
    }
    /// The running WebSocket sessions, so shutdown can wait for them.
    pub fn sessions(&self) -> &TaskTracker {
        &self.0.sessions
    }
}

/// The application's routes and layers.
pub fn router(state: AppState) -> Result<Router, String> {
    use routes::{admin, auth, contacts, conversations, health, messages};
    // Installed before the first request, so that no count is lost.
    crate::metrics::handle();
    let mut router = Router::new()
        .route("/healthz", get(health::health))
        .route("/metrics", get(admin::metrics))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/api/contact/add-contact", post(contacts::add))
        .route("/api/contact/contacts", get(contacts::list))
        .route("/api/messages/send", post(messages::send))
        .route("/api/messages/{contact_id}", get(messages::history))
        .route("/api/conversations", get(conversations::list))
        .route(
            "/api/conversations/{id}/messages",
            get(conversations::messages),
        )
        .route("/ws", get(crate::ws::upgrade));
    // Without an admin token, the operator route does not exist at all (404).
    if state.config().admin_token.is_some() {
        router = router.route("/admin/actors", get(admin::actors));
    }
    router = router
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(axum::middleware::from_fn(middleware::log_request))
        // Outside the log, so that the log has the client's address.
        .layer(axum::middleware::from_fn_with_state(
            Arc::from(state.config().trusted_proxies.as_slice()),
            client_addr::resolve,
        ));
    for layer in middleware::security_headers() {
        router = router.layer(layer);
    }
    if let Some(cors) = middleware::cors(&state.config().cors_origins)? {
        router = router.layer(cors);
    }
    Ok(router.with_state(state))
}
