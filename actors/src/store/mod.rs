//! The storage trait. It speaks in domain terms (users, contacts, conversations,
//! events) rather than bytes, because the two stores behind it are different in kind:
//! fjall is an embedded key-value engine, ScyllaDB a wide-column database.
//!
//! Every operation touches records addressed by a partition key (a user, an email, a
//! conversation) plus an ordered clustering key (a contact id, a seq), and nothing needs
//! a transaction across partitions. The one uniqueness rule, one account per email, is a
//! single conditional insert: a lock in fjall, a lightweight transaction in ScyllaDB.
//!
//! Durability is per write, not per batch: the embedded store happens to commit a batch
//! atomically, ScyllaDB cannot, so the contract (on [`Store::append_events`]) is the
//! weaker one both keep, and the messaging core is written against it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{
    ClientId, Conversation, ConversationId, Email, Event, Login, LoginId, PresenceRecord, Receipt,
    RefreshHash, Seq, Timestamp, UserId, UserRecord,
};

mod blocking;
mod error;

pub(crate) use blocking::allow_blocking;
pub use blocking::may_block;
pub use error::StoreError;

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
    /// Only events with a seq greater than this.
    pub after: Option<Seq>,
    /// Only events with a seq less than this.
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

    /// Remembers that the token `jti` is revoked until `expires_at`, the last moment the
    /// token could still be accepted. After that the store forgets it (a TTL, or a
    /// sweep): an expired token is refused anyway, so keeping it would only grow the
    /// store. A revocation that is already past `expires_at` need not be stored at all.
    async fn revoke_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()>;

    /// Whether the token `jti` was revoked (and its revocation has not expired).
    async fn is_token_revoked(&self, jti: &str) -> StoreResult<bool>;

    /// Forgets records past their expiry (revoked tokens, logins); called periodically. A store
    /// that expires records by itself (ScyllaDB's TTLs) has nothing to do. Returns how
    /// many records went.
    async fn collect_expired(&self, now: Timestamp) -> StoreResult<usize>;

    /// Replaces an account's password hash. Returns false, and writes nothing, when the
    /// account does not exist (it may have just been deleted).
    async fn set_password_hash(&self, user: UserId, password_hash: &str) -> StoreResult<bool>;

    /// Erases an account: its record, its email (free to register again at once), its
    /// contacts in both directions, its logins and its index of conversations. The
    /// conversations and their events stay (they are the other members' history too;
    /// erasing the account's content in them is [`Store::erase_events`]). Erasing an
    /// account that is gone already is harmless.
    async fn delete_user(&self, user: UserId) -> StoreResult<()>;

    /// Records a new login (a sign-in on a device).
    async fn insert_login(&self, login: &Login) -> StoreResult<()>;

    /// A login of `user`, unless it was signed out or has expired.
    async fn login(&self, user: UserId, id: LoginId) -> StoreResult<Option<Login>>;

    /// Every live login of `user`, in no particular order.
    async fn user_logins(&self, user: UserId) -> StoreResult<Vec<Login>>;

    /// Rotates a login's refresh token: replaces `from` with `to`, valid until
    /// `expires_at`, and records `at` as last seen, only if the login is live and `from`
    /// is still its current hash (atomically: of two rotations from one hash, exactly
    /// one applies). Returns whether it applied.
    async fn rotate_login(
        &self,
        user: UserId,
        id: LoginId,
        from: RefreshHash,
        to: RefreshHash,
        expires_at: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Records that a login was used at `at`. A login that is gone stays gone.
    async fn touch_login(&self, user: UserId, id: LoginId, at: Timestamp) -> StoreResult<()>;

    /// Signs a login out. Returns false when there was no live login to sign out.
    async fn delete_login(&self, user: UserId, id: LoginId) -> StoreResult<bool>;

    /// Durably records a conversation and indexes it under each participant. Writing
    /// the same conversation again is harmless.
    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()>;

    /// A conversation by id.
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;

    /// The ids of the conversations `user` takes part in.
    async fn user_conversations(&self, user: UserId) -> StoreResult<Vec<ConversationId>>;

    /// Durably appends events (of any conversations) with their client-id index
    /// entries: the group commit. Returns `Ok` only once every event of the batch is
    /// durable (fsynced by the embedded store, acknowledged at the configured
    /// consistency by ScyllaDB); only then may a sender be told its event is committed.
    ///
    /// There is no atomicity across the batch. When this fails, any part of the batch
    /// may have been written, or may still land (a timed-out write is not a refused
    /// one), so a caller reads a conversation's end back before it hands out seqs again.
    /// What the store does promise, for each conversation: what is written of a batch
    /// is a prefix of that conversation's events in it (a seq is never durable without
    /// the seqs before it), and an event that can be read can also be found by its
    /// client id. Appending the same events again (same seqs, same contents) is
    /// harmless, so retrying a batch, or a send by its client id, is safe.
    async fn append_events(&self, events: &[Arc<Event>]) -> StoreResult<()>;

    /// A slice of one conversation's stream, oldest first.
    async fn events(
        &self,
        conversation: ConversationId,
        range: HistoryRange,
    ) -> StoreResult<Vec<Event>>;

    /// The newest event of a conversation.
    async fn last_event(&self, conversation: ConversationId) -> StoreResult<Option<Event>>;

    /// Erases the content of the events at `seqs` of one conversation: each becomes
    /// [`EventKind::Erased`](crate::domain::EventKind::Erased), keeping its id, seq,
    /// sender, client id and time, so the stream keeps its shape and a retry by client id
    /// still finds it. Seqs that hold no event are skipped; erasing again is harmless.
    /// Durable before it returns, like every write.
    async fn erase_events(&self, conversation: ConversationId, seqs: &[Seq]) -> StoreResult<()>;

    /// The event `sender` put into `conversation` with this client id, if any.
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        sender: UserId,
        client_id: &ClientId,
    ) -> StoreResult<Option<Event>>;

    /// `user`'s receipt marks in `conversation` (zeros when none).
    async fn receipt(&self, conversation: ConversationId, user: UserId) -> StoreResult<Receipt>;

    /// Every member's marks in `conversation` that has any, in no particular order.
    async fn receipts(&self, conversation: ConversationId) -> StoreResult<Vec<(UserId, Receipt)>>;

    /// Raises `user`'s marks in `conversation` to `receipt` where it is higher; never
    /// lowers one, even when concurrent calls land out of order. A receipt need not be
    /// durable when this returns (losing the last one in a crash only lowers a mark the
    /// client raises again).
    async fn advance_receipt(
        &self,
        conversation: ConversationId,
        user: UserId,
        receipt: Receipt,
    ) -> StoreResult<()>;

    /// `user`'s stored presence (defaults when none).
    async fn presence(&self, user: UserId) -> StoreResult<PresenceRecord>;

    /// Records when `user`'s last session ended. Need not be durable when this returns.
    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()>;

    /// Records whether `user` hides their last seen time.
    async fn set_hide_last_seen(&self, user: UserId, hide: bool) -> StoreResult<()>;

    /// Records that `blocker` blocks `blocked` (again is harmless). Durable on return.
    async fn block_user(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> StoreResult<()>;

    /// Forgets that `blocker` blocks `blocked` (harmless when they did not).
    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<()>;

    /// The users `blocker` blocks, in no particular order.
    async fn blocked_users(&self, blocker: UserId) -> StoreResult<Vec<UserId>>;

    /// Makes everything written so far durable; called last at shutdown.
    async fn flush(&self) -> StoreResult<()>;
}
