//! Building and running the server: typed settings in, a bound listener out, and a run
//! loop that stops when the given shutdown future resolves. `main` passes Ctrl-C and
//! SIGTERM; tests pass whatever they like.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actors::domain::Timestamp;
use actors::{Messenger, MessengerConfig, Store};
use tokio::net::TcpListener;

use crate::auth::{PasswordHasher, Tokens};
use crate::config::Config;
use crate::http::{AppState, router};

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The token secret is unusable.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    /// The store could not be opened or flushed.
    #[error(transparent)]
    Store(#[from] actors::StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else at start-up.
    #[error("{0}")]
    Startup(String),
}

/// A server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    router: axum::Router,
}

impl Application {
    /// Opens the store, starts the actors and binds the listener.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            AppError::Startup(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let secret = crate::secret::load_or_create(config.jwt_secret.as_ref(), &config.data_dir)?;
        let store: Arc<dyn Store> = crate::store::open(&config.store, &config.data_dir).await?;
        let messenger_config = MessengerConfig {
            idle_timeout: config.actor_idle_timeout,
            session_queue: config.session_queue,
            max_sessions_per_user: config.max_sessions_per_user,
            shutdown_timeout: config.shutdown_timeout,
            recent_client_ids: config.recent_client_ids as usize,
            ..MessengerConfig::default()
        };
        let messenger = Messenger::start(store.clone(), messenger_config)
            .await
            .map_err(|e| AppError::Startup(format!("cannot start the actors: {e}")))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Hashing threads at equal priority take whole cores from the chat during a login
        // storm (BENCHMARKS.md: chat p99 x15 with one per core, x4.75 with one fewer).
        let hashers = config
            .password_threads
            .map_or(cores.saturating_sub(1).max(1), usize::from);
        let hasher = PasswordHasher::new(hashers).map_err(|e| AppError::Startup(e.to_string()))?;
        let tokens = Tokens::new(&secret, config.token_ttl);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.listen,
                source,
            })?;
        let state = AppState::new(config, store, messenger, tokens, hasher);
        let router = router(state.clone()).map_err(AppError::Startup)?;
        Ok(Self {
            listener,
            state,
            router,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then: stop accepting, let in-flight requests
    /// finish, close every WebSocket session (1001), commit everything the actors hold,
    /// and flush the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Self {
            listener,
            state,
            router,
        } = self;
        let signal = state.shutdown_signal().clone();
        let sweeper = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                for minute in 0u64.. {
                    tick.tick().await;
                    state.limits().sweep();
                    // Expired revocations: a scan of all of them, so not every minute.
                    if minute % 10 == 0 {
                        match state.store().collect_expired(Timestamp::now()).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(records = n, "expired records collected"),
                            Err(e) => {
                                tracing::warn!(error = %e, "collecting expired records failed")
                            }
                        }
                    }
                }
            })
        };
        tracing::info!(addr = %listener.local_addr().map_err(|e| AppError::Startup(e.to_string()))?, "listening");
        let stop = {
            let signal = signal.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = signal.cancelled() => {}
                }
                tracing::info!("shutting down");
                signal.cancel();
            }
        };
        serve(
            listener,
            router,
            state.config().header_read_timeout,
            state.config().shutdown_timeout,
            stop,
        )
        .await;
        signal.cancel();
        sweeper.abort();
        let deadline = state.config().shutdown_timeout;
        state.sessions().close();
        if tokio::time::timeout(deadline, state.sessions().wait())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not close in time");
        }
        state.messenger().shutdown().await?;
        tracing::info!("stopped");
        Ok(())
    }

    /// The application's state (for tests and admin tools in the same process).
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// Accepts connections until `stop` resolves, then lets in-flight requests finish (up to
/// `grace`). Each connection gets its peer address (for per-address limits) and a
/// header-read timeout, so a client dribbling its headers cannot hold a connection.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    grace: Duration,
    stop: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use tower::ServiceExt;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = router
            .clone()
            .map_request(move |mut req: axum::extract::Request| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            });
        let hyper_service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), hyper_service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _open = crate::metrics::connection_opened();
            let _ = conn.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests did not finish in time");
    }
}
