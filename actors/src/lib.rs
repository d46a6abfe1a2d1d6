//! Parley's messaging core.
//!
//! - [`domain`]: the validated types everything past the edge works with (ids, email,
//!   display name, password, message body, client id, messages and conversations).
//! - [`store`]: the storage trait, at the level of the domain (users, contacts,
//!   conversations, messages), implemented by the server's embedded and ScyllaDB stores.
//! - [`messenger`]: the facade the transport layer talks to: send a message, attach a
//!   session, shut down.
//! - `registry`, `conversation`, `user`, `persistence` (private): the actors behind it.
//! - [`fault`]: test-only fault injection, compiled in with the `fault-injection` feature.
//! - [`inspect`]: live inspection of the actor tree (counts, queues, ages).
//! - [`metrics`]: the metrics the actors record through the `metrics` facade, by name.
//!
//! This crate knows nothing of HTTP, WebSocket or JSON.

mod conversation;
pub mod domain;
pub mod fault;
pub mod inspect;
pub mod messenger;
pub mod metrics;
mod persistence;
mod registry;
pub mod store;
mod user;

pub use inspect::{ActorInfo, ActorKind, ActorTree};
pub use messenger::{
    AttachError, Kick, Messenger, MessengerConfig, SendError, SendRequest, Sent, SessionLink,
    Target,
};
pub use store::{Store, StoreError};
