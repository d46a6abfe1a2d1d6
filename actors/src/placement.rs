//! The placement seam: which node sequences a conversation. On one node it is always
//! this one ([`Alone`]); in a cluster an implementation outside this crate holds a lease
//! per conversation in the store and forwards sends to the node that holds it.
//!
//! The conversation actor asks [`Placement::holds`] before it cuts a batch and before it
//! acks one: an actor whose node lost (or could not renew) the lease it started under
//! stops acking, so two nodes never both hand out a conversation's seqs.

use crate::api::{SendError, SendRequest, Sent};
use crate::domain::{ConversationId, UserId};

/// One unbroken holding of a conversation's lease on this node. A lease lost and taken
/// again is a new token, so an actor started under the old one cannot act on the new.
pub type LeaseToken = u64;

/// Where a conversation is sequenced, as far as this node can tell now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Here, under this lease.
    Here(LeaseToken),
    /// On the named node: forward to it.
    There(String),
    /// Nowhere reachable now (the owner's lease has not yet lapsed, or the store cannot
    /// be asked): the sender retries with its client id.
    Unavailable,
}

/// Decides where conversations are sequenced and reaches the other nodes.
#[async_trait::async_trait]
pub trait Placement: Send + Sync + 'static {
    /// Where `conversation` is sequenced; takes its lease for this node when nobody
    /// holds it.
    async fn place(&self, conversation: ConversationId) -> Place;

    /// The lease this node holds on `conversation` now, if any (read by a conversation
    /// actor as it starts).
    fn token(&self, conversation: ConversationId) -> Option<LeaseToken>;

    /// Whether this node still holds `conversation` under `token`, with time to spare.
    fn holds(&self, conversation: ConversationId, token: LeaseToken) -> bool;

    /// Hands `request` to `node`, which sequences it, and returns its answer.
    async fn forward(&self, node: &str, request: SendRequest) -> Result<Sent, SendError>;

    /// Tells the other nodes that `user`'s sessions opened with `credential` (all with
    /// `None`) are revoked; this node's own are ended by the caller.
    fn revoked(&self, user: UserId, credential: Option<&str>);

    /// Of `users`, those with a live session on another node (for calls and presence).
    async fn online_elsewhere(&self, users: &[UserId]) -> Vec<UserId>;
}

/// A single node: everything is sequenced here, always.
pub(crate) struct Alone;

#[async_trait::async_trait]
impl Placement for Alone {
    async fn place(&self, _: ConversationId) -> Place {
        Place::Here(0)
    }

    fn token(&self, _: ConversationId) -> Option<LeaseToken> {
        Some(0)
    }

    fn holds(&self, _: ConversationId, _: LeaseToken) -> bool {
        true
    }

    async fn forward(&self, _: &str, _: SendRequest) -> Result<Sent, SendError> {
        // `place` never names another node.
        Err(SendError::Unavailable)
    }

    fn revoked(&self, _: UserId, _: Option<&str>) {}

    async fn online_elsewhere(&self, _: &[UserId]) -> Vec<UserId> {
        Vec::new()
    }
}
