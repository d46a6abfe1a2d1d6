//! Building and running the server: typed settings in, a bound listener out, and a run
//! loop that stops when the given shutdown future resolves. `main` passes Ctrl-C and
//! SIGTERM; tests pass whatever they like.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actors::domain::Timestamp;
use actors::{Messenger, MessengerConfig};
use tokio::net::TcpListener;

use crate::auth::{PasswordHasher, Tokens};
use crate::config::Config;
use crate::http::router;
use crate::state::AppState;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The token secret is unusable.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    /// The data dir is unsafe or unusable.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
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
    /// Binds the listener, then opens the store and starts the actors. Binding first: an
    /// address in use leaves nothing behind (no data dir, no generated secret).
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.listen,
                source,
            })?;
        crate::data_dir::prepare(&config.data_dir)?;
        let secret = crate::secret::load_or_create(config.jwt_secret.as_ref(), &config.data_dir)?;
        let (store, cluster) = match &config.cluster.cluster_nats {
            None => (
                crate::store::open(&config.store, &config.data_dir).await?,
                None,
            ),
            Some(_) => {
                let (store, cluster) = crate::cluster::start(&config)
                    .await
                    .map_err(AppError::Startup)?;
                (store, Some(cluster))
            }
        };
        let messenger_config = MessengerConfig {
            idle_timeout: config.actor_idle_timeout,
            session_queue: config.session_queue,
            max_sessions_per_user: config.max_sessions_per_user,
            shutdown_timeout: config.shutdown_timeout,
            recent_client_ids: config.recent_client_ids as usize,
            commit_interval: config.commit_interval,
            max_group_members: config.max_group_members as usize,
            // Only a node of a cluster names itself in the supervision log.
            node: config
                .cluster
                .cluster_nats
                .as_ref()
                .and(config.cluster.node_id.clone()),
            ..MessengerConfig::default()
        };
        let messenger = match &cluster {
            None => Messenger::start(store.clone(), messenger_config).await,
            Some(cluster) => {
                let placement: Arc<dyn actors::placement::Placement> = cluster.clone();
                let wrap = |local| cluster.fanout(local);
                Messenger::start_placed(store.clone(), messenger_config, placement, wrap).await
            }
        }
        .map_err(|e| AppError::Startup(format!("cannot start the actors: {e}")))?;
        if let Some(cluster) = &cluster {
            cluster
                .run(messenger.clone())
                .await
                .map_err(AppError::Startup)?;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Hashing threads at equal priority take whole cores from the chat during a login
        // storm (BENCHMARKS.md: chat p99 x15 with one per core, x4.75 with one fewer).
        let hashers = config
            .password_threads
            .map_or(cores.saturating_sub(1).max(1), usize::from);
        let hasher = PasswordHasher::new(hashers).map_err(|e| AppError::Startup(e.to_string()))?;
        let tokens = Tokens::new(&secret, config.token_ttl);
        let state = AppState::new(config, store, messenger, tokens, hasher);
        if let Some(cluster) = cluster {
            state.set_cluster(cluster);
        }
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
                    state.sweep();
                    // Expired revocations: a scan of all of them, so not every minute.
                    if minute % 10 == 0 {
                        match state.accounts().collect_expired(Timestamp::now()).await {
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
        let settings = crate::connection::Settings {
            timeouts: crate::connection::Timeouts {
                idle: state.config().idle_connection_timeout,
                header: state.config().header_read_timeout,
            },
            max_connections: state.config().max_http_connections,
            grace: state.config().shutdown_timeout,
        };
        crate::connection::serve(listener, router, settings, stop).await;
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
        if let Some(cluster) = state.cluster() {
            // The actors have committed and stopped: the conversations may move now.
            cluster.leave().await;
        }
        tracing::info!("stopped");
        Ok(())
    }

    /// The application's state (for tests and admin tools in the same process).
    pub fn state(&self) -> &AppState {
        &self.state
    }
}
