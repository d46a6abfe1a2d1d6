//! Store implementations behind [`actors::Store`], the storage trait the messaging core
//! speaks to.
//!
//! - [`fjall`]: the embedded store, an LSM-tree in the server's own process and data
//!   directory; the default, and what a single node runs on.

pub mod fjall;
mod keys;

pub use self::fjall::FjallStore;
