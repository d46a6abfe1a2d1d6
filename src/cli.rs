//! The command line: `parley serve`, `parley admin ...`.

use clap::{Parser, Subcommand};

use crate::app::Application;
use crate::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "parley", version, about = "A real-time chat backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `serve --help` says after the flags: the one setting that has no flag.
const SERVE_AFTER_HELP: &str = "\
Environment only (never a flag, which would show in `ps`):
  PARLEY_JWT_SECRET  HMAC secret for tokens, at least 32 bytes. When unset, a random one is
                     generated on first start and kept in the data dir (mode 0600), so
                     tokens survive restarts. Set it to share tokens between servers.";

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(Box<Config>),
    /// Operator commands.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Subcommand)]
enum Admin {
    /// Create many accounts at once for load tests (server stopped), printing tokens.
    SeedUsers(Box<crate::admin::SeedUsers>),
    /// Show a running server's actor tree: counts, queues, the busiest actors.
    Stats(crate::admin::Stats),
}

/// Parses the command line and runs it; returns the process exit code.
pub async fn run() -> i32 {
    // Before anything is created: the store's files are created by fjall with this mask.
    crate::data_dir::restrict_umask();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Admin(Admin::SeedUsers(args)) => match crate::admin::seed_users(*args).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("parley: {e}");
                1
            }
        },
        Command::Admin(Admin::Stats(args)) => match crate::admin::stats(args).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("parley: {e}");
                1
            }
        },
    }
}

async fn serve(mut config: Config) -> i32 {
    config.jwt_secret = std::env::var("PARLEY_JWT_SECRET")
        .ok()
        .map(crate::config::Secret);
    let log_format = config.log_format;
    crate::telemetry::init(log_format);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            // Once: a JSON log gets it as a line for the log shipper; a person at a
            // terminal reads it on stderr (the pretty log would say it a second time).
            match log_format {
                LogFormat::Json => tracing::error!(error = %e, "cannot start"),
                LogFormat::Pretty => eprintln!("parley: {e}"),
            }
            return 1;
        }
    };
    match app.run_until_stopped(stop_signal()).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            1
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives while the server
/// is still starting (after its `listening` line, say) stops it gracefully instead of
/// killing it.
fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
