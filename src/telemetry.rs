//! Logging setup. `RUST_LOG` filters as usual (default: `info` for Parley, `warn` for the
//! storage engine, whose INFO lines are its own housekeeping); the format is `pretty`
//! for people (coloured only on a terminal) or `json` (one object per line) for log
//! shippers.
//!
//! What never reaches the log: passwords, tokens and message bodies. Parley's own lines
//! carry ids, codes and counts only (the request line has the route template, never the
//! path or query string, which may hold `?token=`). The WebSocket library logs whole
//! frames at debug and trace level, and the CQL driver traces each request's partition
//! key (an email, a token id), so their targets are capped at `info` whatever
//! `RUST_LOG` asks for.

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Targets (and their sub-targets) whose debug and trace lines print frame payloads
/// (message bodies, tokens) or partition keys (emails, token ids).
const CAPPED: &[&str] = &["tungstenite", "tokio_tungstenite", "scylla"];

/// The filter when `RUST_LOG` is unset: fjall and its LSM tree log every journal
/// ingestion at INFO, eight lines at each start.
const DEFAULT_FILTER: &str = "info,fjall=warn,lsm_tree=warn";

/// Installs the global subscriber; a second call (as in tests) is a no-op. With `json`,
/// a panic is also logged as one JSON line (target `parley::panic`) instead of the
/// default multi-line text on stderr.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let cap = filter_fn(|meta| {
        *meta.level() <= Level::INFO || !CAPPED.iter().any(|t| meta.target().starts_with(t))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        // Colour codes are noise in a file or a pipe.
        .with_ansi(std::io::stdout().is_terminal());
    let installed = match format {
        LogFormat::Pretty => builder.finish().with(cap).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .with(cap)
            .try_init(),
    };
    if installed.is_ok() && format == LogFormat::Json {
        std::panic::set_hook(Box::new(log_panic));
    }
}

fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()));
    let thread = std::thread::current();
    let backtrace = std::backtrace::Backtrace::capture();
    let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
        .then(|| backtrace.to_string());
    tracing::error!(
        target: "parley::panic",
        panic_message = message,
        location,
        thread = thread.name().unwrap_or("unnamed"),
        backtrace,
        "panic"
    );
}
