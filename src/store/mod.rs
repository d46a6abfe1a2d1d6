//! Store implementations behind [`actors::Store`], the storage trait the messaging core
//! speaks to.
//!
//! - [`fjall`]: the embedded store, an LSM-tree in the server's own process and data
//!   directory; the default, and what a single node runs on.
//! - [`scylla`]: ScyllaDB (or Cassandra) through the CQL driver, for deployments that
//!   outgrow one machine.

pub mod fjall;
mod keys;
pub mod scylla;

pub use self::fjall::FjallStore;
pub use self::scylla::{ScyllaConfig, ScyllaStore};

