//! Parley: a real-time chat backend. Modules are listed from the bottom layer up; each
//! uses only those above it in this list (see ARCHITECTURE.md).
//!
//! - [`config`], [`telemetry`], [`secret`], [`data_dir`], [`metrics`]: settings from
//!   flags and `PARLEY_*` variables, logging, the token secret, the data dir (private
//!   to Parley's user), Prometheus metrics.
//! - [`store`]: the store implementations behind `actors::Store`.
//! - [`cluster`]: many nodes on one CQL keyspace and one NATS (`--cluster-nats`): leases,
//!   forwarding, publishing committed events to the other nodes.
//! - [`auth`]: password hashing, tokens, keyed rate limiters (primitives only).
//! - [`service`]: the business rules: accounts, contacts, conversations, messaging.
//! - [`state`]: the services and handles every handler and session can reach.
//! - [`wire`]: the JSON shapes of the protocol, shared by REST and the realtime layer.
//! - [`realtime`]: the transport-neutral session core and the WebSocket transport.
//! - [`http`]: the REST API and the WebSocket upgrade: router, handlers, error envelope.
//! - `connection`: the accept loop, the connection cap, and each connection's deadlines
//!   and head checks, below hyper.
//! - [`app`]: the composition root: builds everything from settings and runs it.
//! - [`admin`], [`cli`]: operator commands and the command line.
//!
//! The messaging core (actors, domain types, the storage trait) is the `actors` crate.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
mod connection;
pub mod data_dir;
pub mod http;
pub mod metrics;
pub mod realtime;
pub mod secret;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod wire;
