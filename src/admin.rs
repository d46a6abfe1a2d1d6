//! `parley admin`: operator commands.
//!
//! `stats` asks a running server for its actor tree (`GET /admin/actors`) and prints it
//! as a table.
//!
//! `seed-users` works on a data dir directly: it provisions many accounts for load tests without paying one argon2 hash
//! each: every seeded account shares one hash of one password, and tokens are minted
//! with the server's own secret. With the embedded store, run it while the server is
//! stopped (the store is locked by a running server); with `--store scylla` it writes
//! to the cluster like any server would.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::domain::{DisplayName, Email, Password, Timestamp, User, UserId, UserRecord};
use actors::store::InsertUserError;
use clap::Args;
use serde::Serialize;

use crate::app::AppError;
use crate::auth::{PasswordHasher, Tokens};
use crate::http::routes::admin::ActorsReport;

/// Options of `parley admin seed-users`.
#[derive(Debug, Clone, Args)]
pub struct SeedUsers {
    /// Data directory of the server (stopped): its token secret, and its embedded
    /// store unless `--store scylla`.
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./parley-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub store: crate::config::StoreArgs,
    /// How many accounts.
    #[arg(long)]
    pub count: usize,
    /// Accounts are named `<prefix>-<n>@load.parley.test`.
    #[arg(long, default_value = "load")]
    pub prefix: String,
    /// The password of every seeded account.
    #[arg(long, default_value = "parley-load-password")]
    pub password: String,
    /// Lifetime of the minted tokens.
    #[arg(long, default_value = "1d", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
    /// Where to write the JSON list of `{id, email, token}` (`-` for standard output).
    #[arg(long, default_value = "-")]
    pub out: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Seeded {
    id: String,
    email: String,
    token: String,
}

fn startup(e: impl std::fmt::Display) -> AppError {
    AppError::Startup(e.to_string())
}

/// Creates (or finds) the accounts and writes them out with fresh tokens.
pub async fn seed_users(args: SeedUsers) -> Result<(), AppError> {
    let configured = std::env::var("PARLEY_JWT_SECRET")
        .ok()
        .map(crate::config::Secret);
    crate::data_dir::prepare(&args.data_dir)?;
    let secret = crate::secret::load_or_create(configured.as_ref(), &args.data_dir)?;
    let store = crate::store::open(&args.store, &args.data_dir).await?;
    let tokens = Tokens::new(&secret, args.token_ttl);
    let password = Password::parse(&args.password).map_err(|e| startup(format!("password {e}")))?;
    let hash: Arc<str> = PasswordHasher::new(1)
        .map_err(startup)?
        .hash(&password)
        .await
        .map_err(startup)?
        .into();

    let mut tasks = tokio::task::JoinSet::new();
    let mut seeded = Vec::with_capacity(args.count);
    let mut progress = Progress::new("seeding accounts", args.count);
    for i in 0..args.count {
        let email = Email::parse(&format!("{}-{i}@load.parley.test", args.prefix))
            .map_err(|e| startup(format!("email {e}")))?;
        let name = DisplayName::parse(&format!("{} {i}", args.prefix))
            .map_err(|e| startup(format!("name {e}")))?;
        let (store, hash) = (store.clone(), hash.clone());
        tasks.spawn(async move {
            let record = UserRecord {
                user: User {
                    id: UserId::generate(),
                    name,
                    email: email.clone(),
                },
                password_hash: hash.to_string(),
                created_at: Timestamp::now(),
            };
            match store.insert_user(&record).await {
                Ok(()) => Ok((i, record.user.id, email)),
                Err(InsertUserError::EmailTaken) => {
                    let existing = store
                        .user_by_email(&email)
                        .await?
                        .ok_or_else(|| actors::StoreError::msg("vanished"))?;
                    Ok((i, existing.user.id, email))
                }
                Err(InsertUserError::Store(e)) => Err(e),
            }
        });
        // Enough in flight to share fsyncs, few enough to bound memory.
        while tasks.len() >= 64 {
            if let Some(done) = tasks.join_next().await {
                seeded.push(done.map_err(startup)??);
                progress.set(seeded.len());
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        seeded.push(done.map_err(startup)??);
        progress.set(seeded.len());
    }
    progress.finish();
    seeded.sort_by_key(|(i, _, _)| *i);
    let mut out = Vec::with_capacity(seeded.len());
    for (_, id, email) in seeded {
        // Load-test accounts get bare access tokens: no login, no refresh token.
        let (token, _) = tokens.issue(id, None).map_err(startup)?;
        out.push(Seeded {
            id: id.to_string(),
            email: email.to_string(),
            token,
        });
    }
    store.flush().await?;
    let json = serde_json::to_string(&out).map_err(startup)?;
    if args.out == "-" {
        println!("{json}");
    } else {
        std::fs::write(&args.out, json).map_err(startup)?;
        eprintln!("seeded {} accounts into {}", out.len(), args.out);
    }
    Ok(())
}

/// A long operation's progress on stderr (stdout may be the operation's output): on a
/// terminal one line redrawn at most ten times a second; otherwise, such as in a CI log,
/// one line per tenth of the work.
struct Progress {
    what: &'static str,
    total: usize,
    done: usize,
    terminal: bool,
    drawn: Option<Instant>,
    tenths: usize,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Self {
        Self {
            what,
            total,
            done: 0,
            terminal: std::io::stderr().is_terminal(),
            drawn: None,
            tenths: 0,
        }
    }

    fn line(&self) -> String {
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(100);
        format!("{}: {}/{} ({percent}%)", self.what, self.done, self.total)
    }

    fn set(&mut self, done: usize) {
        self.done = done;
        if self.terminal {
            if self
                .drawn
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(100))
            {
                self.drawn = Some(Instant::now());
                eprint!("\r{}", self.line());
            }
        } else {
            let tenths = (done * 10).checked_div(self.total).unwrap_or(10);
            if tenths > self.tenths && done < self.total {
                self.tenths = tenths;
                eprintln!("{}", self.line());
            }
        }
    }

    fn finish(&mut self) {
        self.done = self.total;
        if self.terminal {
            eprintln!("\r{}", self.line());
        } else {
            eprintln!("{}", self.line());
        }
    }
}

/// Options of `parley admin stats`.
#[derive(Debug, Clone, Args)]
pub struct Stats {
    /// Base URL of the running server (plain HTTP: ask it directly, not through the
    /// public proxy).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The server's admin token.
    #[arg(long, env = "PARLEY_ADMIN_TOKEN", hide_env_values = true, value_parser = secret)]
    pub admin_token: crate::config::Secret,
    /// How many of the busiest actors to list.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn secret(raw: &str) -> Result<crate::config::Secret, String> {
    Ok(crate::config::Secret(raw.to_owned()))
}

/// Why `parley admin stats` failed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// No answer.
    #[error("cannot reach {server}: {source}")]
    Unreachable {
        /// The URL asked.
        server: String,
        /// Why.
        source: reqwest::Error,
    },
    /// 401.
    #[error("the server refused the admin token")]
    Unauthorized,
    /// 404: the route does not exist.
    #[error("the server has no admin routes: start it with --admin-token or PARLEY_ADMIN_TOKEN")]
    NotEnabled,
    /// Anything else.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(String),
}

/// Fetches `/admin/actors` and prints it.
pub async fn stats(args: Stats) -> Result<(), StatsError> {
    let url = format!(
        "{}/admin/actors?limit={}",
        args.server.trim_end_matches('/'),
        args.limit
    );
    let unreachable = |source| StatsError::Unreachable {
        server: args.server.clone(),
        source,
    };
    let res = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&args.admin_token.0)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(unreachable)?;
    match res.status().as_u16() {
        200 => {}
        401 => return Err(StatsError::Unauthorized),
        404 => return Err(StatsError::NotEnabled),
        status => return Err(StatsError::Unexpected(format!("status {status}"))),
    }
    let body = res.text().await.map_err(unreachable)?;
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let report: ActorsReport =
        serde_json::from_str(&body).map_err(|e| StatsError::Unexpected(e.to_string()))?;
    print!("{}", stats_table(&report));
    Ok(())
}

/// The report as the table `parley admin stats` prints.
fn stats_table(r: &ActorsReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "actors        user {}  conversation {}  (starting {}, stopping {}, given up {})",
        r.counts.user, r.counts.conversation, r.starting, r.stopping, r.given_up
    );
    let _ = writeln!(
        out,
        "sessions      {} open, longest outbound queue {}",
        r.sessions, r.largest_session_queue
    );
    let _ = writeln!(out, "persistence   {} messages queued", r.persistence_queue);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<12}  {:<36}  {:>6}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
        "KIND", "ID", "QUEUE", "SESSIONS", "HANDLED", "AGE", "IDLE", "RESTARTS"
    );
    for a in &r.busiest {
        let sessions = a.sessions.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "{:<12}  {:<36}  {:>6}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
            a.kind,
            a.id,
            a.queue_depth,
            sessions,
            a.handled,
            short_duration(a.age_ms),
            short_duration(a.idle_ms),
            a.restarts
        );
    }
    if r.busiest.is_empty() {
        let _ = writeln!(out, "(no live actors)");
    }
    out
}

/// 850ms, 12.3s, 4m05s, 3h20m.
fn short_duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::short_duration;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(short_duration(850), "850ms");
        assert_eq!(short_duration(12_345), "12.3s");
        assert_eq!(short_duration(245_000), "4m05s");
        assert_eq!(short_duration(3 * 3_600_000 + 20 * 60_000), "3h20m");
    }
}
