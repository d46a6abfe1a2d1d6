//! `parley admin`: operator commands that work on a data dir directly.
//!
//! `seed-users` provisions many accounts for load tests without paying one argon2 hash
//! each: every seeded account shares one hash of one password, and tokens are minted
//! with the server's own secret. Run it while the server is stopped (the store is
//! locked by a running server).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actors::Store;
use actors::domain::{DisplayName, Email, Password, Timestamp, User, UserId, UserRecord};
use actors::store::InsertUserError;
use clap::Args;
use serde::Serialize;

use crate::app::AppError;
use crate::auth::{PasswordHasher, Tokens};
use crate::store::FjallStore;

/// Options of `parley admin seed-users`.
#[derive(Debug, Clone, Args)]
pub struct SeedUsers {
    /// Data directory of the server (stopped).
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./parley-data")]
    pub data_dir: PathBuf,
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
    let secret = crate::secret::load_or_create(configured.as_ref(), &args.data_dir)?;
    let store = Arc::new(FjallStore::open(&args.data_dir.join("store"))?);
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
                        .ok_or_else(|| actors::StoreError::new("vanished"))?;
                    Ok((i, existing.user.id, email))
                }
                Err(InsertUserError::Store(e)) => Err(e),
            }
        });
        // Enough in flight to share fsyncs, few enough to bound memory.
        while tasks.len() >= 64 {
            if let Some(done) = tasks.join_next().await {
                seeded.push(done.map_err(startup)??);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        seeded.push(done.map_err(startup)??);
    }
    seeded.sort_by_key(|(i, _, _)| *i);
    let mut out = Vec::with_capacity(seeded.len());
    for (_, id, email) in seeded {
        let (token, _) = tokens.issue(id).map_err(startup)?;
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
