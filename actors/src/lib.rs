//! Parley's messaging core.
//!
//! - [`domain`]: the validated types everything past the edge works with (ids, email,
//!   display name, password, message body, client id, messages and conversations).
//! - [`store`]: the storage trait, at the level of the domain (users, contacts,
//!   conversations, messages), implemented by the server's embedded and ScyllaDB stores.
//! - [`messenger`]: the facade the transport layer talks to: send a message, attach a
//!   session, shut down.
//! - [`registry`], [`conversation`], [`user`], [`persistence`]: the actors behind it.
//!
//! This crate knows nothing of HTTP, WebSocket or JSON.

pub mod domain;
pub mod store;

pub use store::{Store, StoreError};
