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

/// Opens the store `args` name: the embedded one in `data_dir/store` (blocking while
/// fjall recovers its journal, so call it at startup), or connects to ScyllaDB.
pub async fn open(
    args: &crate::config::StoreArgs,
    data_dir: &std::path::Path,
) -> Result<std::sync::Arc<dyn actors::Store>, actors::StoreError> {
    Ok(match args.scylla() {
        Some(config) => std::sync::Arc::new(ScyllaStore::connect(&config).await?),
        None => std::sync::Arc::new(FjallStore::open(&data_dir.join("store"))?),
    })
}
