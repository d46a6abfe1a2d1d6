//! What every handler and session can reach: the settings, the services, and the
//! handles shutdown needs. Built once by the composition root (`app`); cheap to clone.

use std::sync::Arc;

use actors::{Messenger, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{PasswordHasher, Tokens};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::service::{
    Accounts, Blocks, Calls, Contacts, Conversations, Export, Groups, Messaging, Presence,
    Receipts, Typing,
};

struct Inner {
    config: Config,
    accounts: Accounts,
    contacts: Contacts,
    conversations: Conversations,
    groups: Groups,
    blocks: Arc<Blocks>,
    receipts: Receipts,
    typing: Typing,
    presence: Presence,
    export: Export,
    messaging: Arc<Messaging>,
    calls: Calls,
    shutdown: CancellationToken,
    sessions: TaskTracker,
    /// This node's cluster membership, set once at start (`--cluster-nats`).
    cluster: std::sync::OnceLock<Arc<Cluster>>,
}

/// The application's state. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Builds the services over one store and actor tree.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        messenger: Messenger,
        tokens: Tokens,
        hasher: PasswordHasher,
    ) -> Self {
        let blocks = Arc::new(Blocks::new(store.clone()));
        let messaging = Arc::new(Messaging::new(
            store.clone(),
            messenger.clone(),
            blocks.clone(),
            &config,
        ));
        Self(Arc::new(Inner {
            accounts: Accounts::new(store.clone(), messenger.clone(), tokens, hasher, &config),
            contacts: Contacts::new(
                store.clone(),
                blocks.clone(),
                config.contact_adds_per_minute,
            ),
            conversations: Conversations::new(store.clone()),
            typing: Typing::new(store.clone(), messenger.clone(), blocks.clone()),
            presence: Presence::new(store.clone(), messenger.clone(), blocks.clone()),
            receipts: Receipts::new(store.clone(), messenger.clone(), config.receipts_per_second),
            groups: Groups::new(
                store.clone(),
                messaging.clone(),
                blocks.clone(),
                config.max_group_members as usize,
            ),
            export: Export::new(store.clone(), &config),
            calls: Calls::new(store, messaging.clone()),
            messaging,
            blocks,
            config,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            cluster: std::sync::OnceLock::new(),
        }))
    }

    /// Settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    /// Accounts and tokens.
    pub fn accounts(&self) -> &Accounts {
        &self.0.accounts
    }
    /// Contacts.
    pub fn contacts(&self) -> &Contacts {
        &self.0.contacts
    }
    /// Conversation lists and history.
    pub fn conversations(&self) -> &Conversations {
        &self.0.conversations
    }
    /// Groups and their members.
    pub fn groups(&self) -> &Groups {
        &self.0.groups
    }
    /// Who blocks whom.
    pub fn blocks(&self) -> &Blocks {
        &self.0.blocks
    }
    /// Delivered and read marks.
    pub fn receipts(&self) -> &Receipts {
        &self.0.receipts
    }
    /// Typing signals.
    pub fn typing(&self) -> &Typing {
        &self.0.typing
    }
    /// Online, offline, last seen.
    pub fn presence(&self) -> &Presence {
        &self.0.presence
    }
    /// A user's data, a page at a time.
    pub fn export(&self) -> &Export {
        &self.0.export
    }
    /// Sending, sessions, replay.
    pub fn messaging(&self) -> &Messaging {
        &self.0.messaging
    }
    /// Calls: ringing, answering, hanging up.
    pub fn calls(&self) -> &Calls {
        &self.0.calls
    }
    /// The actor tree.
    pub fn messenger(&self) -> &Messenger {
        self.0.messaging.messenger()
    }
    /// Cancelled when the server starts shutting down; every session loop selects on it.
    pub fn shutdown_signal(&self) -> &CancellationToken {
        &self.0.shutdown
    }
    /// The running realtime sessions, so shutdown can wait for them.
    pub fn sessions(&self) -> &TaskTracker {
        &self.0.sessions
    }
    /// Records this node's cluster membership (once, at start), and links the block
    /// lists to the other nodes: changes here are told to them, theirs make this node
    /// forget its copy. The cluster holds the blocks weakly: they hold it.
    pub fn set_cluster(&self, cluster: Arc<Cluster>) {
        let teller = cluster.clone();
        self.0
            .blocks
            .on_change(move |blocker| teller.blocks_changed(blocker));
        let blocks = Arc::downgrade(&self.0.blocks);
        cluster.on_block_change(move |blocker| {
            if let Some(blocks) = blocks.upgrade() {
                blocks.forget(blocker);
            }
        });
        let _ = self.0.cluster.set(cluster);
    }
    /// This node's cluster membership, when it is one of many.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.0.cluster.get()
    }
    /// Forgets idle rate-limit keys everywhere.
    pub fn sweep(&self) {
        self.0.accounts.sweep();
        self.0.export.sweep();
        self.0.messaging.sweep();
        self.0.receipts.sweep();
        self.0.typing.sweep();
        self.0.contacts.sweep();
    }
}
