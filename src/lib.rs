//! Parley: a real-time chat backend.
//!
//! - [`cli`]: the command line (`parley serve`, `parley admin ...`).
//! - [`admin`]: operator commands on a data dir (bulk seeding for load tests).
//! - [`config`]: typed settings from flags and `PARLEY_*` variables.
//! - [`app`]: builds the server from settings and runs it until told to stop.
//! - `connection`: the accept loop, the connection cap, and each connection's deadlines
//!   and head checks, below hyper.
//! - [`http`]: the REST API: router, handlers, error envelope, middleware.
//! - [`ws`]: the WebSocket endpoint, its protocol and the session loop.
//! - [`auth`]: password hashing, tokens, rate limits.
//! - [`store`]: the store implementations behind `actors::Store`.
//! - [`wire`]: JSON shapes shared by REST and WebSocket.
//! - [`metrics`]: Prometheus metrics.
//! - [`secret`], [`telemetry`]: the token secret and logging setup.
//! - [`data_dir`]: the data dir, private to Parley's user.
//!
//! The messaging core (actors, domain types, the storage trait) is the `actors` crate.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
mod connection;
pub mod data_dir;
pub mod http;
pub mod metrics;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod wire;
pub mod ws;
