//! Integration tests: a real server on a loopback port, a real store in a temp dir,
//! real HTTP and WebSocket clients. One binary, so it links once.
//!
//! The tests whose subject is the store (`messaging`, `history`, `restart`, `sessions`,
//! `account`) run twice:
//! here on the embedded store, and in `on_scylla` on the ScyllaDB store when
//! `SCYLLA_URI` names a live CQL node (otherwise those copies return at once, and one
//! test says so). Each module asks `super::STORE` for its server.

// Test modules share helpers with `pub`; the lint is for library APIs.
#![allow(unreachable_pub)]

mod helpers;
#[path = "../support/live_cql.rs"]
mod live_cql;
#[path = "../common/server.rs"]
mod server;
// Compiles the store-dependent modules a second time, on purpose.
#[allow(clippy::duplicate_mod)]
mod on_scylla;

/// The store of the modules declared here.
const STORE: helpers::TestStore = helpers::TestStore::Fjall;

mod account;
mod accounts;
mod asyncapi;
mod blocking;
mod calls;
mod connections;
mod contacts;
mod restart;
mod tokens;
mod typing;

mod dashboard;
mod edits;
mod example_chat;
mod groups;
mod history;
mod lanes;
mod limits;
mod messaging;
mod openapi;
mod operations;
mod placement;
mod presence;
mod process;
mod protocol_errors;
mod receipts;
mod session_end;
mod sessions;
mod supervision;
mod sync_storm;
mod web;
