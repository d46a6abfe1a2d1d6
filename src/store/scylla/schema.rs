//! The keyspace and its tables, created and migrated at start, idempotently.
//!
//! Every start runs the same steps, each harmless to repeat: create the keyspace if it
//! is missing (with tablets disabled on a ScyllaDB that has them, since lightweight
//! transactions need that, and Cassandra rejects the option); create `schema_version`;
//! apply each migration newer than the newest version recorded there, then record it.
//! A migration's statements are all `IF NOT EXISTS`, so a start that dies between them
//! and the record only repeats them. A keyspace recorded at a version newer than this
//! binary knows is refused: an older Parley must not write a newer layout.
//!
//! Concurrent first starts of several servers are safe on a single node; on a cluster,
//! start one server first (concurrent `CREATE TABLE`s through different coordinators
//! can disagree, a known limit of CQL schema changes).
//!
//! The bucket size of the history partitions is chosen once, when the keyspace is new,
//! and kept in `store_settings` (written by a lightweight transaction, so concurrent
//! first starts agree): changing it later would strand every event already written.

use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::statement::{Consistency, Statement};
use scylla::value::CqlTimestamp;

use actors::StoreError;
use actors::domain::Timestamp;

use super::config::ScyllaConfig;
use super::rows;

/// Recorded in `schema_version` as the owner of these tables.
const COMPONENT: &str = "parley";

/// One step of the layout. Statements use `{ks}` for the keyspace.
struct Migration {
    version: i32,
    description: &'static str,
    statements: &'static [&'static str],
}

/// Every layout change, oldest first. Append, never edit: a deployed keyspace has
/// already run the old ones.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "accounts, contacts, revoked tokens, conversations, events in seq buckets",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {ks}.store_settings (
            name text PRIMARY KEY,
            value bigint)",
            "CREATE TABLE IF NOT EXISTS {ks}.users (
            user_id uuid PRIMARY KEY,
            name text,
            email text,
            password_hash text,
            created_at timestamp)",
            "CREATE TABLE IF NOT EXISTS {ks}.email_user (
            email text PRIMARY KEY,
            user_id uuid)",
            "CREATE TABLE IF NOT EXISTS {ks}.user_contacts (
            user_id uuid,
            contact_id uuid,
            added_at timestamp,
            PRIMARY KEY (user_id, contact_id))",
            "CREATE TABLE IF NOT EXISTS {ks}.contact_pairs (
            low_id uuid,
            high_id uuid,
            added_at timestamp,
            PRIMARY KEY ((low_id, high_id)))",
            // Rows only ever expire (a TTL, never a delete), so nothing can be resurrected
            // and their tombstones need not outlive the hint window.
            "CREATE TABLE IF NOT EXISTS {ks}.revoked_tokens (
            jti text PRIMARY KEY,
            expires_at timestamp)
            WITH gc_grace_seconds = 10800",
            "CREATE TABLE IF NOT EXISTS {ks}.conversations (
            conversation_id uuid PRIMARY KEY,
            participants frozen<list<uuid>>,
            created_at timestamp)",
            "CREATE TABLE IF NOT EXISTS {ks}.user_conversations (
            user_id uuid,
            conversation_id uuid,
            PRIMARY KEY (user_id, conversation_id))",
            "CREATE TABLE IF NOT EXISTS {ks}.events (
            conversation_id uuid,
            bucket bigint,
            seq bigint,
            event_id uuid,
            sender_id uuid,
            client_id text,
            at timestamp,
            kind text,
            body text,
            receiver_id uuid,
            target bigint,
            membership text,
            PRIMARY KEY ((conversation_id, bucket), seq))
            WITH CLUSTERING ORDER BY (seq DESC)",
            "CREATE TABLE IF NOT EXISTS {ks}.event_buckets (
            conversation_id uuid,
            bucket bigint,
            PRIMARY KEY (conversation_id, bucket))
            WITH CLUSTERING ORDER BY (bucket DESC)",
            "CREATE TABLE IF NOT EXISTS {ks}.client_ids (
            conversation_id uuid,
            sender_id uuid,
            client_id text,
            seq bigint,
            PRIMARY KEY ((conversation_id, sender_id, client_id)))",
        ],
    },
    Migration {
        version: 2,
        description: "logins: one row per signed-in device, with its refresh token's hash",
        statements: &["CREATE TABLE IF NOT EXISTS {ks}.user_logins (
            user_id uuid,
            login_id uuid,
            device text,
            created_at timestamp,
            last_seen_at timestamp,
            refresh_hash blob,
            expires_at timestamp,
            PRIMARY KEY (user_id, login_id))"],
    },
    Migration {
        version: 3,
        description: "groups: name, roles and join points beside a conversation",
        statements: &[
            // A table of its own rather than a column: `ALTER TABLE … ADD` cannot say
            // `IF NOT EXISTS` on every server Parley supports, and a migration must be
            // harmless to repeat.
            "CREATE TABLE IF NOT EXISTS {ks}.conversation_groups (
            conversation_id uuid PRIMARY KEY,
            info text)",
        ],
    },
    Migration {
        version: 4,
        description: "receipts: each member's delivered and read marks per conversation",
        statements: &[
            // Each mark is written with its seq as the write timestamp, so the highest
            // mark wins whatever order writes land in (see `advance_receipt`).
            "CREATE TABLE IF NOT EXISTS {ks}.receipts (
            conversation_id uuid,
            user_id uuid,
            delivered bigint,
            read_seq bigint,
            PRIMARY KEY (conversation_id, user_id))",
        ],
    },
    Migration {
        version: 5,
        description: "presence: each user's last seen time and whether they hide it",
        statements: &["CREATE TABLE IF NOT EXISTS {ks}.user_presence (
            user_id uuid PRIMARY KEY,
            last_seen timestamp,
            hide_last_seen boolean)"],
    },
    Migration {
        version: 6,
        description: "blocks: who blocks whom",
        statements: &["CREATE TABLE IF NOT EXISTS {ks}.user_blocks (
            user_id uuid,
            blocked_id uuid,
            blocked_at timestamp,
            PRIMARY KEY (user_id, blocked_id))"],
    },
];

/// What the keyspace was created with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    /// Seqs per `events` partition.
    pub(super) bucket_size: u64,
}

/// What kind of server answers.
#[derive(Debug)]
struct Server {
    release: String,
    /// A ScyllaDB with tablets (6.0 and later): keyspaces use them unless told not to.
    tablets: bool,
}

/// Creates or migrates the keyspace; returns its layout.
pub(super) async fn prepare(
    session: &Session,
    config: &ScyllaConfig,
) -> Result<Layout, StoreError> {
    let ks = config.keyspace.as_str();
    let server = server(session).await?;
    // DDL cannot bind values: the keyspace name and the replication map were validated
    // as plain identifiers and numbers when parsed (see `config`).
    let mut create = format!(
        "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {} AND durable_writes = true",
        config.replication.cql_map()
    );
    if server.tablets {
        create.push_str(" AND tablets = {'enabled': false}");
    }
    ddl(session, &create).await?;
    ddl(
        session,
        &format!(
            "CREATE TABLE IF NOT EXISTS {ks}.schema_version (
                component text,
                version int,
                description text,
                applied_at timestamp,
                PRIMARY KEY (component, version))
                WITH CLUSTERING ORDER BY (version DESC)"
        ),
    )
    .await?;

    let current = current_version(session, ks).await?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(StoreError::msg(format!(
            "keyspace {ks} is at schema version {current}, newer than this Parley knows \
             ({latest}): run a newer Parley"
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        for statement in migration.statements {
            ddl(session, &statement.replace("{ks}", ks)).await?;
        }
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {ks}.schema_version (component, version, description, applied_at) \
                     VALUES (?, ?, ?, ?)"
                ),
                (
                    COMPONENT,
                    migration.version,
                    migration.description,
                    CqlTimestamp(Timestamp::now().as_millis() as i64),
                ),
            )
            .await
            .map_err(|e| StoreError::context("recording a schema version", e))?;
        tracing::info!(
            keyspace = ks,
            version = migration.version,
            "schema migrated"
        );
    }

    let bucket_size = bucket_size(session, config).await?;
    tracing::info!(
        keyspace = ks,
        server = %server.release,
        server_has_tablets = server.tablets,
        schema_version = latest,
        bucket_size,
        "store ready"
    );
    if server.tablets {
        warn_if_tablets(session, ks).await;
    }
    Ok(Layout { bucket_size })
}

async fn ddl(session: &Session, cql: &str) -> Result<(), StoreError> {
    session
        .query_unpaged(cql, &[])
        .await
        .map_err(|e| StoreError::context(format!("running {}", first_line(cql)), e))?;
    Ok(())
}

fn first_line(cql: &str) -> &str {
    cql.lines().next().unwrap_or(cql).trim_end_matches(" (")
}

async fn server(session: &Session) -> Result<Server, StoreError> {
    let release = session
        .query_unpaged("SELECT release_version FROM system.local", &[])
        .await
        .map_err(|e| StoreError::context("reading the server's version", e))?
        .into_rows_result()
        .map_err(|e| StoreError::context("reading the server's version", e))?
        .maybe_first_row::<(Option<String>,)>()
        .map_err(|e| StoreError::context("reading the server's version", e))?
        .and_then(|(v,)| v)
        .unwrap_or_default();
    // Feature detection rather than version parsing: a server that has a tablets table
    // creates keyspaces with tablets unless told otherwise. Cassandra (and ScyllaDB
    // before 6.0) has no such table and would reject the option.
    let tablets = match session
        .query_unpaged("SELECT keyspace_name FROM system.tablets LIMIT 1", &[])
        .await
    {
        Ok(_) => true,
        Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Invalid | DbError::SyntaxError,
            _,
        ))) => false,
        Err(e) => {
            return Err(StoreError::context(
                "asking whether the server has tablets",
                e,
            ));
        }
    };
    Ok(Server { release, tablets })
}

/// A keyspace created by someone else may use tablets, under which lightweight
/// transactions (one account per email, contacts added once) are not supported on
/// every ScyllaDB release. Said once, at start.
async fn warn_if_tablets(session: &Session, ks: &str) {
    let uses = session
        .query_unpaged(
            "SELECT initial_tablets FROM system_schema.scylla_keyspaces WHERE keyspace_name = ?",
            (ks,),
        )
        .await
        .ok()
        .and_then(|r| r.into_rows_result().ok())
        .and_then(|r| r.maybe_first_row::<(Option<i32>,)>().ok().flatten())
        .is_some_and(|(initial,)| initial.is_some());
    if uses {
        tracing::warn!(
            keyspace = ks,
            "the keyspace uses tablets; lightweight transactions may fail on this ScyllaDB: \
             recreate it with tablets = {{'enabled': false}}"
        );
    }
}

async fn current_version(session: &Session, ks: &str) -> Result<i32, StoreError> {
    let context = |e: &dyn std::fmt::Display| {
        StoreError::msg(format!("reading the schema version of {ks}: {e}"))
    };
    let rows = session
        .query_unpaged(
            format!("SELECT version FROM {ks}.schema_version WHERE component = ? LIMIT 1"),
            (COMPONENT,),
        )
        .await
        .map_err(|e| context(&e))?
        .into_rows_result()
        .map_err(|e| context(&e))?;
    let version = rows.maybe_first_row::<(i32,)>().map_err(|e| context(&e))?;
    Ok(version.map_or(0, |(v,)| v))
}

/// The keyspace's bucket size: the configured one if this start is the first, else the
/// one recorded by the first.
async fn bucket_size(session: &Session, config: &ScyllaConfig) -> Result<u64, StoreError> {
    let ks = config.keyspace.as_str();
    let wanted = i64::try_from(config.bucket_size)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| StoreError::msg("the bucket size must be 1 to 2^63 - 1"))?;
    let claim = session
        .query_unpaged(
            format!(
                "INSERT INTO {ks}.store_settings (name, value) VALUES ('bucket_size', ?) \
                 IF NOT EXISTS"
            ),
            (wanted,),
        )
        .await
        .map_err(|e| StoreError::context("recording the bucket size", e))?;
    // Whether it applied does not matter: either way the value to use is read back.
    rows::applied(claim)?;
    let mut read = Statement::new(format!(
        "SELECT value FROM {ks}.store_settings WHERE name = 'bucket_size'"
    ));
    // A serial read sees the transaction above even if it is still being committed.
    read.set_consistency(match config.consistency.serial() {
        scylla::statement::SerialConsistency::LocalSerial => Consistency::LocalSerial,
        _ => Consistency::Serial,
    });
    let stored = session
        .query_unpaged(read, &[])
        .await
        .map_err(|e| StoreError::context("reading the bucket size", e))?
        .into_rows_result()
        .map_err(|e| StoreError::context("reading the bucket size", e))?
        .maybe_first_row::<(Option<i64>,)>()
        .map_err(|e| StoreError::context("reading the bucket size", e))?;
    match stored {
        Some((Some(n),)) if n > 0 => {
            if n != wanted {
                tracing::info!(
                    keyspace = ks,
                    bucket_size = n,
                    "the keyspace keeps the bucket size it was created with"
                );
            }
            Ok(n as u64)
        }
        other => Err(StoreError::msg(format!(
            "keyspace {ks} has no valid bucket size: {other:?}"
        ))),
    }
}
