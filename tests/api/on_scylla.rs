//! The store-dependent tests again, on the ScyllaDB store: every server of this run
//! shares one fresh keyspace (tests use fresh users, so they do not disturb each other),
//! which saves the seconds each keyspace's tables take to create.

use crate::helpers::TestStore;

/// The store of the modules declared here.
const STORE: TestStore = TestStore::Scylla;

#[path = "account.rs"]
mod account;
#[path = "blocking.rs"]
mod blocking;
#[path = "edits.rs"]
mod edits;
#[path = "groups.rs"]
mod groups;
#[path = "history.rs"]
mod history;
#[path = "messaging.rs"]
mod messaging;
#[path = "presence.rs"]
mod presence;
#[path = "receipts.rs"]
mod receipts;
#[path = "restart.rs"]
mod restart;
#[path = "sessions.rs"]
mod sessions;

#[tokio::test]
async fn the_scylla_copies_say_when_they_are_skipped() {
    if crate::live_cql::uri().is_none() {
        crate::live_cql::say_skipped(
            "the account, blocking, edits, groups, messaging, history, presence, receipts, restart and sessions tests",
        );
    }
}
