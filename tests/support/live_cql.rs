//! The live CQL node of the tests that need one. `SCYLLA_URI` names it (`.ci/run` and
//! `scripts/cql-node start` set it up); without it those tests return at once, and one
//! test per binary says they were skipped.
//!
//! Each test binary gets keyspaces of its own, named `parley_test_<unix secs>_<random>`,
//! and drops those that earlier runs left behind more than an hour ago.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parley::store::ScyllaConfig;
use parley::store::scylla::ConsistencyLevel;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

/// The contact points of the live node, if the tests should use one.
pub fn uri() -> Option<String> {
    std::env::var("SCYLLA_URI")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The line a skipping binary prints. Written to the stream itself, not through
/// `eprintln!`, which the test harness captures and shows only for failing tests.
pub fn say_skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {what} against a live CQL node (set SCYLLA_URI, e.g. \
         `export SCYLLA_URI=$(scripts/cql-node start)`)"
    );
}

/// Settings for a test store in keyspace `keyspace`.
pub fn config(uri: &str, keyspace: &str) -> ScyllaConfig {
    ScyllaConfig::new(
        uri.parse().expect("SCYLLA_URI is HOST:PORT[,HOST:PORT...]"),
        keyspace.parse().expect("a valid keyspace name"),
        "SimpleStrategy:1".parse().expect("valid replication"),
        ConsistencyLevel::Quorum,
        Duration::from_secs(15),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A keyspace name no other run uses.
pub fn unique_keyspace() -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("parley_test_{}_{}", now_secs(), &nonce[..8])
}

/// A plain driver session, for what the store does not offer (dropping keyspaces,
/// writing rows behind its back).
pub async fn session(uri: &str) -> Session {
    SessionBuilder::new()
        .known_nodes(uri.split(',').map(str::trim))
        .build()
        .await
        .expect("a session to SCYLLA_URI")
}

/// Drops the test keyspaces earlier runs left more than an hour ago (best effort).
pub async fn drop_stale_keyspaces(uri: &str) {
    let session = session(uri).await;
    let Ok(result) = session
        .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", &[])
        .await
    else {
        return;
    };
    let Ok(rows) = result.into_rows_result() else {
        return;
    };
    let Ok(names) = rows.rows::<(String,)>() else {
        return;
    };
    let cutoff = now_secs().saturating_sub(3600);
    for (name,) in names.flatten() {
        let created = name
            .strip_prefix("parley_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|secs| secs < cutoff) {
            let _ = session
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS {name}"), &[])
                .await;
        }
    }
}

/// Drops one keyspace (best effort).
pub async fn drop_keyspace(uri: &str, keyspace: &str) {
    let _ = session(uri)
        .await
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), &[])
        .await;
}
