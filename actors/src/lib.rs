//! Parley's messaging core. Modules are listed in dependency order: each uses only
//! those above it.
//!
//! - [`domain`]: the validated types everything past the edge works with (ids, email,
//!   display name, password, message body, client id, events, signals, conversations).
//! - [`store`]: the storage trait, at the level of the domain, implemented by the
//!   server's embedded and ScyllaDB stores, and its error type.
//! - [`config`], [`api`]: the facade's vocabulary: tunables, requests, answers, errors.
//! - [`session`]: a session's two lanes (durable and sheddable) and a user's live
//!   sessions.
//! - `key`, `user::msg`, `conversation::msg`, `registry::msg`: actor names and messages.
//! - `directory`: live actors by id, read without a mailbox hop.
//! - [`fanout`]: the seam through which committed events and signals reach sessions.
//! - [`placement`]: which node sequences a conversation (always this one, alone).
//! - `commit`: group commit, one fsync for every conversation's queued batches.
//! - `context`, `lifecycle`: what every actor shares, and the idle lifecycle.
//! - `user`, `conversation`, `registry` (private): the actors.
//! - [`messenger`]: the facade the service layer talks to.
//! - [`fault`]: test-only fault injection (the `fault-injection` feature).
//! - [`inspect`], [`metrics`]: live inspection of the tree, and the metrics it records.
//!
//! This crate knows nothing of HTTP, WebSocket or JSON.

pub mod api;
mod commit;
pub mod config;
mod context;
mod conversation;
mod directory;
pub mod domain;
pub mod fanout;
pub mod fault;
pub mod inspect;
mod key;
mod lifecycle;
pub mod messenger;
pub mod metrics;
pub mod placement;
mod registry;
pub mod session;
pub mod store;
mod user;

pub use api::{AttachError, Kick, SendError, SendRequest, Sent, Target};
pub use config::MessengerConfig;
pub use inspect::{ActorInfo, ActorKind, ActorTree};
pub use messenger::Messenger;
pub use session::{PresenceSwitch, SessionLink};
pub use store::{Store, StoreError};
