//! What every actor shares: the store, the configuration, the directory of live actors,
//! the group-commit thread, the fan-out and the placement.

use std::sync::Arc;

use crate::commit::Committer;
use crate::config::MessengerConfig;
use crate::directory::Directory;
use crate::fanout::Fanout;
use crate::inspect::SessionQueues;
use crate::placement::Placement;
use crate::store::Store;

/// What every actor shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: MessengerConfig,
    pub(crate) directory: Arc<Directory>,
    pub(crate) committer: Committer,
    pub(crate) fanout: Arc<dyn Fanout>,
    /// Which node sequences each conversation (always this one, outside a cluster).
    pub(crate) placement: Arc<dyn Placement>,
    /// Every attached session's durable lane, for inspection and metrics.
    pub(crate) sessions: SessionQueues,
}
