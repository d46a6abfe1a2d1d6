//! What every actor shares: the store, the configuration, the directory of live actors,
//! the group-commit thread and the fan-out.

use std::sync::Arc;

use crate::commit::Committer;
use crate::config::MessengerConfig;
use crate::directory::Directory;
use crate::fanout::Fanout;
use crate::inspect::SessionQueues;
use crate::store::Store;

/// What every actor shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: MessengerConfig,
    pub(crate) directory: Arc<Directory>,
    pub(crate) committer: Committer,
    pub(crate) fanout: Arc<dyn Fanout>,
    /// Every attached session's durable lane, for inspection and metrics.
    pub(crate) sessions: SessionQueues,
}
