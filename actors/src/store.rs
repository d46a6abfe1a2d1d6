//! The storage trait. It speaks in domain terms (users, contacts, conversations,
//! messages) rather than bytes, because the two stores behind it are different in kind:
//! fjall is an embedded key-value engine, ScyllaDB a wide-column database.
//!
//! Every operation touches records addressed by a partition key (a user, an email, a
//! conversation) plus an ordered clustering key (a contact id, a seq), and nothing needs
//! a transaction across partitions. The one uniqueness rule, one account per email, is a
//! single conditional insert: a lock in fjall, a lightweight transaction in ScyllaDB.

use async_trait::async_trait;

use crate::domain::{
    ClientId, Conversation, ConversationId, Email, Message, Seq, Timestamp, UserId, UserRecord,
};

/// A failure of the store itself (I/O, corruption, an unreachable cluster).
#[derive(Debug, Clone, thiserror::Error)]
#[error("store error: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// Wraps any error.
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// Why an account could not be created.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InsertUserError {
    /// Another account already holds this email.
    #[error("email already registered")]
    EmailTaken,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which slice of a conversation's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRange {
    /// Only messages with a seq greater than this.
    pub after: Option<Seq>,
    /// Only messages with a seq less than this.
    pub before: Option<Seq>,
    /// At most this many.
    pub limit: usize,
    /// Which end of the range to read from. Results are always returned oldest first.
    pub from_newest: bool,
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Where Parley keeps its state. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an account unless its email is taken (atomically: of many concurrent
    /// inserts of one email, exactly one succeeds).
    async fn insert_user(&self, record: &UserRecord) -> Result<(), InsertUserError>;

    /// An account by id.
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;

    /// An account by (normalised) email.
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>>;

    /// Makes `a` and `b` contacts of each other. Returns false, and changes nothing, when
    /// they already were.
    async fn add_contacts(&self, a: UserId, b: UserId, at: Timestamp) -> StoreResult<bool>;

    /// The contacts of `user`, in no particular order.
    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>>;

    /// Remembers that the token `jti` is revoked, until it would have expired anyway.
    async fn revoke_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()>;

    /// Whether the token `jti` was revoked.
    async fn is_token_revoked(&self, jti: &str) -> StoreResult<bool>;

    /// Durably records a conversation and indexes it under each participant. Writing
    /// the same conversation again is harmless.
    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()>;

    /// A conversation by id.
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;

    /// The ids of the conversations `user` takes part in.
    async fn user_conversations(&self, user: UserId) -> StoreResult<Vec<ConversationId>>;

    /// Durably appends messages (of any conversations) in one atomic, fsynced commit,
    /// together with their client-id index entries. Returns only once they are durable.
    async fn append_messages(&self, messages: &[Message]) -> StoreResult<()>;

    /// A slice of one conversation's history, oldest first.
    async fn messages(
        &self,
        conversation: ConversationId,
        range: HistoryRange,
    ) -> StoreResult<Vec<Message>>;

    /// The newest message of a conversation.
    async fn last_message(&self, conversation: ConversationId) -> StoreResult<Option<Message>>;

    /// The message `from` sent into `conversation` with this client id, if any.
    async fn message_by_client_id(
        &self,
        conversation: ConversationId,
        from: UserId,
        client_id: &ClientId,
    ) -> StoreResult<Option<Message>>;

    /// Makes everything written so far durable; called last at shutdown.
    async fn flush(&self) -> StoreResult<()>;
}
