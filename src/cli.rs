//! The command line: `parley serve`, `parley admin ...`.

use clap::{Parser, Subcommand};

use crate::app::Application;
use crate::config::Config;

#[derive(Parser)]
#[command(name = "parley", version, about = "A real-time chat backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
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
    crate::telemetry::init(config.log_format);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("parley: {e}");
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

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
