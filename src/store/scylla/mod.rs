//! The ScyllaDB store: [`actors::Store`] on a ScyllaDB (or Apache Cassandra) cluster,
//! through the [scylla](https://docs.rs/scylla) driver, for deployments that outgrow one
//! machine.
//!
//! # Tables
//!
//! One keyspace (`--scylla-keyspace`, default `parley`), created and migrated at start
//! (see `schema`). Every statement binds its table's whole partition key.
//!
//! | Table                | Partition key                       | Clustering     | Columns                                             |
//! |----------------------|-------------------------------------|----------------|-----------------------------------------------------|
//! | `users`              | user_id                             |                | name, email, password_hash, created_at              |
//! | `email_user`         | email (normalised)                  |                | user_id (claimed by `IF NOT EXISTS`)                |
//! | `user_contacts`      | user_id                             | contact_id     | added_at                                            |
//! | `contact_pairs`      | (low_id, high_id)                   |                | added_at (claimed by `IF NOT EXISTS`)               |
//! | `revoked_tokens`     | jti                                 |                | expires_at; the row has a TTL to then               |
//! | `user_logins`        | user_id                             | login_id       | device, created_at, last_seen_at, refresh_hash (SHA-256), expires_at |
//! | `conversations`      | conversation_id                     |                | participants (frozen list), created_at              |
//! | `conversation_groups`| conversation_id                     |                | info (a group's name, members, roles as JSON)       |
//! | `user_conversations` | user_id                             | conversation_id|                                                     |
//! | `events`             | (conversation_id, bucket)           | seq DESC       | event_id, sender_id, client_id, at, kind, body, receiver_id, target, membership |
//! | `event_buckets`      | conversation_id                     | bucket DESC    |                                                     |
//! | `client_ids`         | (conversation_id, sender_id, client_id) |            | seq                                                 |
//! | `receipts`           | conversation_id                     | user_id        | delivered, read_seq (each written `USING TIMESTAMP` its own value) |
//! | `user_blocks`        | user_id                             | blocked_id     | blocked_at                                          |
//! | `user_presence`      | user_id                             |                | last_seen, hide_last_seen                           |
//! | `schema_version`     | component                           | version DESC   | description, applied_at                             |
//! | `store_settings`     | name                                |                | value (`bucket_size`)                               |
//!
//! A conversation's events are partitioned by `bucket = seq / bucket_size` and
//! clustered by seq, newest first: the shape of Discord's message store on ScyllaDB
//! (there a time bucket), so a busy conversation never grows one unbounded partition.
//! The bucket size (1024 by default, see [`ScyllaConfig::DEFAULT_BUCKET_SIZE`]) is fixed
//! when the keyspace is created. `event_buckets` lists the buckets a conversation has
//! opened, so the newest one is one read away; history reads walk buckets from there
//! (or from the cursor), in the direction asked, each bucket read page by page until the
//! server says there is no more: a short page is never taken for the end. A bucket is
//! opened by the batch that holds its first seq, which relies on the stream's own
//! invariant: seqs start at 1 and have no gaps.
//!
//! # Writes and durability
//!
//! `append_events` (the group commit) writes in two steps and returns `Ok` only when
//! every write of both succeeded at the configured consistency:
//!
//! 1. the `client_ids` entries and the `event_buckets` entries of buckets the batch
//!    opens, concurrently (at most [`WRITES_IN_FLIGHT`] at a time);
//! 2. the events: per conversation, one unlogged single-partition batch per bucket (a
//!    batch within one partition is atomic and isolated), split further only when
//!    large, written in seq order; conversations concurrently.
//!
//! So an event is never readable before its index entry and its bucket are written,
//! and within a conversation what lands of a failed batch is a prefix (the trait's
//! contract). Rows are written whole (no null column, see `rows`) with client-side
//! monotonic timestamps, so an event written again replaces the earlier write.
//!
//! An amendment (a call's end, `EventKind::Amend`) is an event at its own seq, and also
//! rewrites its target: a target in the same batch is written amended; one committed
//! earlier is read and written again whole ([`actors::domain::Event::amended`]) after
//! step 2, so a retried commit amends it again. A missing target, or one that is not a
//! message, is left alone. The conversation's actor is its only writer, so the read and
//! the rewrite race nothing.
//!
//! "Durable" here means acknowledged by enough replicas for the consistency level
//! (`QUORUM` by default). Each replica appends the write to its commitlog, which
//! ScyllaDB and Cassandra sync periodically by default (every 10 s): what survives the
//! loss of a node is what the other replicas hold, so replication, not a local fsync,
//! makes an acknowledgement durable. `flush` therefore has nothing to do.
//!
//! One account per email is a lightweight transaction on `email_user`, after the
//! account's row is written (a loser deletes its row). Adding contacts writes both
//! directions, then a lightweight transaction on the pair decides which of concurrent
//! adds reports it made them contacts. A conversation, its group record and its
//! `user_conversations` entries are one logged batch, and a membership event is written
//! in the logged batch of the record it leaves (its conversation's events are written
//! in seq order around it), so a failed commit never leaves the record behind the
//! stream or ahead of it. Rotating a refresh token is a lightweight transaction
//! on the login's row (`IF refresh_hash = <the old one>`), so of two rotations from one
//! token exactly one applies. A login past its `expires_at` reads as absent and is
//! deleted when a listing meets it; logins carry no TTL, because a rotation rewrites
//! only some of the row's columns.
//!
//! Deleting an account removes, in this order, its logins, its contacts (both
//! directions, and the pairs' claims), its conversation index, its email's claim (a
//! lightweight transaction, `IF user_id = <this account>`, so another account's claim
//! is never freed) and last its row: a crash half-way leaves an account that can still
//! be found and deleted again, never an email pointing at nothing. Erasing its messages
//! rewrites each row whole, as `kind = 'erased'` with an empty body. Only `[applied]` is
//! read from a conditional write's
//! result (Cassandra and ScyllaDB return different columns beside it).
//!
//! # Threads
//!
//! None of its own: the driver's connection tasks run on the server's tokio runtime,
//! and every call is async I/O. Writes of a group commit run concurrently up to
//! [`WRITES_IN_FLIGHT`], so one large commit cannot flood the cluster.
//!
//! # Faults
//!
//! A node that cannot be reached at start fails [`ScyllaStore::connect`]. A node lost
//! later fails each call with a [`StoreError`] (a send then answers `store_unavailable`)
//! until the driver, which keeps reconnecting with a back-off of at most 10 s, reaches a
//! node again; nothing is acknowledged that was not written.

mod buckets;
mod config;
mod rows;
mod schema;
mod statements;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

use actors::domain::{
    ClientId, Conversation, ConversationId, Email, Event, EventKind, Login, LoginId,
    PresenceRecord, Receipt, RefreshHash, Seq, Timestamp, UserId, UserRecord,
};
use actors::store::{HistoryRange, InsertUserError, StoreResult};
use actors::{Store, StoreError};
use futures_util::{StreamExt, TryStreamExt, stream};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::response::PagingState;
use scylla::serialize::SerializationError;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use uuid::Uuid;

pub use config::{
    ConsistencyLevel, ContactPoints, InvalidSetting, KeyspaceName, Replication, ScyllaConfig,
};

use rows::{ConversationRow, EventRow, LoginRow, UserRow};
// The cluster's leases are conditional writes too (`cluster::lease`).
pub(crate) use rows::applied;
use schema::Layout;
use statements::Statements;

/// Writes of one group commit in flight at once.
pub const WRITES_IN_FLIGHT: usize = 64;

/// Rows in one single-partition batch of events, at most.
const BATCH_ROWS: usize = 64;

/// Estimated bytes in one single-partition batch of events, at most: under ScyllaDB's
/// batch-size warning (128 KiB), far under its failure threshold.
const BATCH_BYTES: usize = 64 * 1024;

/// Longest token id stored: a partition key holds at most 64 KiB.
const MAX_JTI_BYTES: usize = u16::MAX as usize;

/// The longest TTL CQL accepts (20 years), in seconds.
const MAX_TTL_SECS: u64 = 630_720_000;

/// The ScyllaDB store. Cheap to clone: clones share one session.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    statements: Statements,
    layout: Layout,
    nodes: ContactPoints,
    keyspace: KeyspaceName,
}

impl fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("nodes", &self.inner.nodes)
            .field("keyspace", &self.inner.keyspace)
            .field("bucket_size", &self.inner.layout.bucket_size)
            .finish_non_exhaustive()
    }
}

impl ScyllaStore {
    /// Connects, creates or migrates the keyspace, and prepares every statement. Fails
    /// when no contact point answers.
    pub async fn connect(config: &ScyllaConfig) -> Result<Self, StoreError> {
        let profile = ExecutionProfile::builder()
            .consistency(config.consistency.regular())
            .serial_consistency(Some(config.consistency.serial()))
            .request_timeout(Some(config.request_timeout))
            .build();
        let session = SessionBuilder::new()
            .known_nodes(config.nodes.iter())
            .default_execution_profile_handle(profile.into_handle())
            // Client-side, monotonic: a row written again after a write that timed out
            // (and may still land) carries the later timestamp, so the later write wins.
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .connection_timeout(config.request_timeout)
            // Token-aware routing needs our keyspace's replication and tables, not their
            // columns: prepared statements carry their own.
            .keyspaces_to_fetch([config.keyspace.as_str()])
            .fetch_full_schema_metadata(false)
            .build()
            .await
            .map_err(|e| StoreError::context(format!("cannot reach {}", config.nodes), e))?;
        let layout = schema::prepare(&session, config).await?;
        // The driver read the keyspace list before the keyspace existed.
        session
            .refresh_metadata()
            .await
            .map_err(|e| StoreError::context("reading the cluster's metadata", e))?;
        let statements = Statements::prepare(&session, config.keyspace.as_str(), config.page_size)
            .await
            .map_err(|e| StoreError::context("preparing statements", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                session,
                statements,
                layout,
                nodes: config.nodes.clone(),
                keyspace: config.keyspace.clone(),
            }),
        })
    }

    /// The keyspace in use.
    pub fn keyspace(&self) -> &KeyspaceName {
        &self.inner.keyspace
    }

    /// The driver's session, for the cluster's lease and node tables (`cluster::lease`),
    /// which live in the same keyspace but are no part of the `Store` trait.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// Seqs per `events` partition in this keyspace.
    pub fn bucket_size(&self) -> u64 {
        self.inner.layout.bucket_size
    }
}

/// Maps a driver error (of any of its several types) with what was being done.
fn failed<E: std::error::Error + Send + Sync + 'static>(
    context: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::context(context, e)
}

impl Inner {
    /// Runs a statement that returns nothing.
    async fn write(
        &self,
        context: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<()> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(failed(context))?;
        Ok(())
    }

    /// A conditional write's outcome.
    async fn claim(
        &self,
        context: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<bool> {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(failed(context))?;
        applied(result)
    }

    /// The one row a point read returns, if any.
    async fn one<R>(
        &self,
        context: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Option<R>>
    where
        R: for<'f> DeserializeRow<'f, 'f>,
    {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(failed(context))?
            .into_rows_result()
            .map_err(failed(context))?
            .maybe_first_row::<R>()
            .map_err(failed(context))
    }

    /// Up to `limit` rows of a paged read, appended to `out`. Pages are fetched until
    /// the server says there are no more: a page may be short, even empty, with more to
    /// come (ScyllaDB cuts pages by size and time, not only by count).
    async fn paged<R>(
        &self,
        context: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        limit: usize,
        out: &mut Vec<R>,
    ) -> StoreResult<()>
    where
        R: for<'f> DeserializeRow<'f, 'f>,
    {
        let goal = out.len().saturating_add(limit);
        let mut paging = PagingState::start();
        loop {
            let (result, next) = self
                .session
                .execute_single_page(statement, &values, paging)
                .await
                .map_err(failed(context))?;
            let page = result.into_rows_result().map_err(failed(context))?;
            for row in page.rows::<R>().map_err(failed(context))? {
                out.push(row.map_err(failed(context))?);
                if out.len() >= goal {
                    return Ok(());
                }
            }
            match next.into_paging_control_flow() {
                ControlFlow::Break(()) => return Ok(()),
                ControlFlow::Continue(state) => paging = state,
            }
        }
    }

    /// The newest bucket a conversation has opened, if any.
    async fn top_bucket(&self, conversation: ConversationId) -> StoreResult<Option<u64>> {
        let row = self
            .one::<(i64,)>(
                "reading a conversation's newest bucket",
                &self.statements.top_bucket,
                (conversation.as_uuid(),),
            )
            .await?;
        row.map(|(b,)| {
            u64::try_from(b)
                .map_err(|_| StoreError::msg(format!("corrupt bucket {b} of {conversation}")))
        })
        .transpose()
    }

    /// Up to `limit` events of one bucket with seqs in `lowest..=highest`, in the
    /// direction asked, appended to `out`.
    async fn read_bucket(
        &self,
        conversation: ConversationId,
        bucket: u64,
        (lowest, highest): (Seq, Seq),
        limit: usize,
        from_newest: bool,
        out: &mut Vec<Event>,
    ) -> StoreResult<()> {
        let statement = if from_newest {
            &self.statements.events_descending
        } else {
            &self.statements.events_ascending
        };
        let mut rows: Vec<EventRow> = Vec::new();
        self.paged(
            "reading history",
            statement,
            (
                conversation.as_uuid(),
                rows::seq(bucket)?,
                rows::seq(lowest)?,
                rows::seq(highest)?,
                i32::try_from(limit).unwrap_or(i32::MAX),
            ),
            limit,
            &mut rows,
        )
        .await?;
        for row in rows {
            out.push(rows::event(conversation, row)?);
        }
        Ok(())
    }

    /// The event at `seq`, if one was stored.
    async fn event_at(&self, conversation: ConversationId, seq: Seq) -> StoreResult<Option<Event>> {
        let bucket = buckets::of(seq, self.layout.bucket_size);
        self.one::<EventRow>(
            "reading an event",
            &self.statements.event_at,
            (conversation.as_uuid(), rows::seq(bucket)?, rows::seq(seq)?),
        )
        .await?
        .map(|row| rows::event(conversation, row))
        .transpose()
    }

    /// Erases one event's content (see [`Store::erase_events`]).
    async fn erase_event(&self, conversation: ConversationId, seq: Seq) -> StoreResult<()> {
        let Some(mut event) = self.event_at(conversation, seq).await? else {
            return Ok(());
        };
        event.kind = EventKind::Erased;
        // The whole row again: every column written, so no old value survives.
        let values = rows::event_values(&event, self.layout.bucket_size)?;
        self.write("erasing an event", &self.statements.insert_event, values)
            .await
    }

    /// Removes both directions of a contact and the pair's claim.
    async fn unlink_contact(&self, user: UserId, contact: UserId) -> StoreResult<()> {
        let forward = self.write(
            "removing a contact",
            &self.statements.delete_contact,
            (user.as_uuid(), contact.as_uuid()),
        );
        let backward = self.write(
            "removing a contact",
            &self.statements.delete_contact,
            (contact.as_uuid(), user.as_uuid()),
        );
        futures_util::future::try_join(forward, backward).await?;
        let (low, high) = if user <= contact {
            (user, contact)
        } else {
            (contact, user)
        };
        self.claim(
            "freeing a contact pair",
            &self.statements.free_contact_pair,
            (low.as_uuid(), high.as_uuid()),
        )
        .await?;
        Ok(())
    }

    /// Step 1 of a group commit for one write: a client-id entry or an opened bucket.
    async fn write_index(&self, entry: IndexEntry<'_>) -> StoreResult<()> {
        match entry {
            IndexEntry::ClientId(e, client_id) => {
                self.write(
                    "writing a client-id entry",
                    &self.statements.insert_client_id,
                    (
                        e.conversation.as_uuid(),
                        e.sender.as_uuid(),
                        client_id.as_str(),
                        rows::seq(e.seq)?,
                    ),
                )
                .await
            }
            IndexEntry::Bucket(conversation, bucket) => {
                self.write(
                    "opening a bucket",
                    &self.statements.open_bucket,
                    (conversation.as_uuid(), rows::seq(bucket)?),
                )
                .await
            }
        }
    }

    /// Step 2 of a group commit for one conversation: its events, oldest first, one
    /// single-partition batch per bucket (split when large), each after the previous.
    async fn write_events(&self, events: Vec<&Event>) -> StoreResult<()> {
        let size = self.layout.bucket_size;
        // A group's record, read once when a membership event is among these: each
        // membership event is written in one logged batch with the record as it leaves
        // it, so the stream and the record never disagree, whatever fails when.
        let mut record = match events.first() {
            Some(first) if events.iter().any(|e| is_membership(e)) => {
                self.conversation_record(first.conversation).await?
            }
            _ => None,
        };
        let mut chunk: Vec<rows::EventValues<'_>> = Vec::new();
        let mut bytes = 0;
        for (i, event) in events.iter().enumerate() {
            if is_membership(event)
                && let Some(conversation) = record.as_mut()
            {
                // In seq order: what precedes it first, so a failure leaves a prefix.
                if !chunk.is_empty() {
                    self.write_chunk(std::mem::take(&mut chunk)).await?;
                    bytes = 0;
                }
                let before = conversation.participants.clone();
                // Idempotent (`as_of`): a retried commit applies nothing twice.
                conversation.apply(event);
                let former: Vec<UserId> = before
                    .into_iter()
                    .filter(|u| !conversation.has(*u))
                    .collect();
                self.write_conversation(conversation, &former, Some(event))
                    .await?;
                continue;
            }
            let values = rows::event_values(event, size)?;
            bytes += 128 + values.8.len() + values.11.len() + values.5.len();
            chunk.push(values);
            let next_bucket = events
                .get(i + 1)
                .map(|n| buckets::of(n.seq, size) != buckets::of(event.seq, size));
            if next_bucket != Some(false) || chunk.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
                self.write_chunk(std::mem::take(&mut chunk)).await?;
                bytes = 0;
            }
        }
        Ok(())
    }

    /// Rewrites the message at `target`, committed before, as `modifier` (an amendment,
    /// an edit or a delete) leaves it. After the modifier itself is written, so that a
    /// retried commit does it again; a missing target, or one that is not a message, is
    /// left alone.
    async fn modify_earlier(
        &self,
        conversation: ConversationId,
        target: Seq,
        modifier: &Event,
    ) -> StoreResult<()> {
        let bucket = buckets::of(target, self.layout.bucket_size);
        let row = self
            .one::<EventRow>(
                "reading an amended message",
                &self.statements.event_at,
                (
                    conversation.as_uuid(),
                    rows::seq(bucket)?,
                    rows::seq(target)?,
                ),
            )
            .await?;
        let Some(row) = row else {
            return Ok(());
        };
        let message = rows::event(conversation, row)?;
        if !matches!(message.kind, EventKind::Message(_)) {
            return Ok(());
        }
        let modified = message.modified_by(modifier);
        let values = rows::event_values(&modified, self.layout.bucket_size)?;
        self.write(
            "modifying a message",
            &self.statements.insert_event,
            &values,
        )
        .await?;
        // Deleted: the text its edits carried goes too.
        let EventKind::Message(m) = &modified.kind else {
            return Ok(());
        };
        if !m.deleted {
            return Ok(());
        }
        for &seq in &m.edits {
            let bucket = buckets::of(seq, self.layout.bucket_size);
            let row = self
                .one::<EventRow>(
                    "reading an edit of a deleted message",
                    &self.statements.event_at,
                    (conversation.as_uuid(), rows::seq(bucket)?, rows::seq(seq)?),
                )
                .await?;
            let Some(row) = row else {
                continue;
            };
            let edit = rows::event(conversation, row)?.erased_edit();
            let values = rows::event_values(&edit, self.layout.bucket_size)?;
            self.write("erasing an edit", &self.statements.insert_event, &values)
                .await?;
        }
        Ok(())
    }

    /// Writes a conversation (and a group's record) with an index entry per
    /// participant, removes the entries of `former` members, and writes `event` (the
    /// membership event that made it so), in one logged batch: the cluster applies all
    /// of it or, after a failure, replays it until it has, so a participant never lists
    /// a conversation that is not there, and a membership event is never in the stream
    /// without its effect on the record.
    async fn write_conversation(
        &self,
        conversation: &Conversation,
        former: &[UserId],
        event: Option<&Event>,
    ) -> StoreResult<()> {
        let id = conversation.id.as_uuid();
        let mut batch = Batch::new(BatchType::Logged);
        batch.set_is_idempotent(true);
        batch.append_statement(self.statements.insert_conversation.clone());
        let mut values = vec![ConversationBatchRow::Conversation(
            id,
            conversation
                .participants
                .iter()
                .map(UserId::as_uuid)
                .collect(),
            rows::timestamp(conversation.created_at),
        )];
        if let Some(group) = &conversation.group {
            let info = serde_json::to_string(group)
                .map_err(|e| StoreError::context("encoding a group", e))?;
            batch.append_statement(self.statements.insert_group.clone());
            values.push(ConversationBatchRow::Group(id, info));
        }
        for user in &conversation.participants {
            batch.append_statement(self.statements.index_conversation.clone());
            values.push(ConversationBatchRow::Index(user.as_uuid(), id));
        }
        for user in former {
            batch.append_statement(self.statements.unindex_conversation.clone());
            values.push(ConversationBatchRow::Index(user.as_uuid(), id));
        }
        if let Some(event) = event {
            batch.append_statement(self.statements.insert_event.clone());
            let row = rows::event_values(event, self.layout.bucket_size)?;
            values.push(ConversationBatchRow::Event(Box::new(row)));
        }
        self.session
            .batch(&batch, &values)
            .await
            .map_err(failed("writing a conversation"))?;
        Ok(())
    }

    /// A conversation as its record holds it (a group's with its members and roles),
    /// or `None` when it has no record.
    async fn conversation_record(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let Some(row) = self
            .one::<ConversationRow>(
                "reading a conversation",
                &self.statements.conversation,
                (id.as_uuid(),),
            )
            .await?
        else {
            return Ok(None);
        };
        let group = self
            .one::<(Option<String>,)>("reading a group", &self.statements.group, (id.as_uuid(),))
            .await?
            .and_then(|(info,)| info);
        rows::conversation(id, row, group).map(Some)
    }

    async fn write_chunk(&self, chunk: Vec<rows::EventValues<'_>>) -> StoreResult<()> {
        let context = "writing events";
        if let [only] = chunk.as_slice() {
            return self
                .write(context, &self.statements.insert_event, only)
                .await;
        }
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_is_idempotent(true);
        for _ in &chunk {
            batch.append_statement(self.statements.insert_event.clone());
        }
        self.session
            .batch(&batch, &chunk)
            .await
            .map_err(failed(context))?;
        Ok(())
    }
}

/// Marks read back; a column never written is 0.
fn receipt_of(delivered: Option<i64>, read: Option<i64>) -> Receipt {
    let mark = |m: Option<i64>| m.and_then(|m| u64::try_from(m).ok()).unwrap_or(0);
    Receipt {
        delivered: mark(delivered),
        read: mark(read),
    }
}

/// A write of step 1 of the group commit.
enum IndexEntry<'a> {
    ClientId(&'a Event, &'a ClientId),
    Bucket(ConversationId, u64),
}

/// The rows of one conversation's logged batch: the conversation, then an index entry
/// per participant (the statements differ, so the values are one type of either).
enum ConversationBatchRow<'a> {
    Conversation(Uuid, Vec<Uuid>, CqlTimestamp),
    Group(Uuid, String),
    Index(Uuid, Uuid),
    Event(Box<rows::EventValues<'a>>),
}

impl SerializeRow for ConversationBatchRow<'_> {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> Result<(), SerializationError> {
        match self {
            ConversationBatchRow::Conversation(id, participants, at) => {
                (id, participants, at).serialize(ctx, writer)
            }
            ConversationBatchRow::Group(id, info) => (id, info).serialize(ctx, writer),
            ConversationBatchRow::Index(user, id) => (user, id).serialize(ctx, writer),
            ConversationBatchRow::Event(row) => row.serialize(ctx, writer),
        }
    }

    fn is_empty(&self) -> bool {
        false
    }
}

fn is_membership(event: &Event) -> bool {
    matches!(event.kind, EventKind::Membership(_))
}

fn check_jti(jti: &str) -> StoreResult<()> {
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(StoreError::msg(format!(
            "a token id must be 1 to {MAX_JTI_BYTES} bytes, got {}",
            jti.len()
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for ScyllaStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %record.user.id))]
    async fn insert_user(&self, record: &UserRecord) -> Result<(), InsertUserError> {
        let inner = &self.inner;
        let id = record.user.id.as_uuid();
        // The account first, then the claim on its email: a claim that lands always
        // points at an account. A claim that fails in doubt (a timeout) leaves the row,
        // since the claim may have landed; a retry then finds the email taken, by this
        // very account, whose password works.
        inner
            .write(
                "writing an account",
                &inner.statements.insert_user,
                rows::user_values(record),
            )
            .await?;
        let claimed = inner
            .claim(
                "claiming an email",
                &inner.statements.claim_email,
                (record.user.email.as_str(), id),
            )
            .await?;
        if claimed {
            return Ok(());
        }
        inner
            .write(
                "removing an account that lost its email",
                &inner.statements.delete_user,
                (id,),
            )
            .await?;
        Err(InsertUserError::EmailTaken)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let inner = &self.inner;
        inner
            .one::<UserRow>(
                "reading an account",
                &inner.statements.user,
                (id.as_uuid(),),
            )
            .await?
            .map(|row| rows::user(id, row))
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        let inner = &self.inner;
        let Some((owner,)) = inner
            .one::<(Uuid,)>(
                "reading an email's account",
                &inner.statements.email_user,
                (email.as_str(),),
            )
            .await?
        else {
            return Ok(None);
        };
        let owner = UserId::from(owner);
        match self.user(owner).await? {
            Some(record) => Ok(Some(record)),
            None => Err(StoreError::msg(format!(
                "email {email} points to a missing account {owner}"
            ))),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %a, contact_id = %b))]
    async fn add_contacts(&self, a: UserId, b: UserId, at: Timestamp) -> StoreResult<bool> {
        let inner = &self.inner;
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let pair = (low.as_uuid(), high.as_uuid());
        if inner
            .one::<(Option<CqlTimestamp>,)>(
                "reading a contact pair",
                &inner.statements.contact_pair,
                pair,
            )
            .await?
            .is_some()
        {
            return Ok(false);
        }
        // Both directions before the claim: a claim that lands always has them, and a
        // crash between leaves contacts an add will claim (and report) again.
        let added_at = rows::timestamp(at);
        let forward = inner.write(
            "writing a contact",
            &inner.statements.insert_contact,
            (a.as_uuid(), b.as_uuid(), added_at),
        );
        let backward = inner.write(
            "writing a contact",
            &inner.statements.insert_contact,
            (b.as_uuid(), a.as_uuid(), added_at),
        );
        futures_util::future::try_join(forward, backward).await?;
        inner
            .claim(
                "claiming a contact pair",
                &inner.statements.claim_contact_pair,
                (pair.0, pair.1, added_at),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let inner = &self.inner;
        let mut ids: Vec<(Uuid,)> = Vec::new();
        inner
            .paged(
                "reading contacts",
                &inner.statements.contacts,
                (user.as_uuid(),),
                usize::MAX,
                &mut ids,
            )
            .await?;
        Ok(ids.into_iter().map(|(id,)| UserId::from(id)).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn revoke_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()> {
        check_jti(jti)?;
        let left_ms = expires_at
            .as_millis()
            .saturating_sub(Timestamp::now().as_millis());
        if left_ms == 0 {
            // Already refused as expired: nothing to remember.
            return Ok(());
        }
        // Whole seconds, rounded up: the row may outlive `expires_at` by under a second
        // (reads compare with it), never the other way.
        let ttl = left_ms.div_ceil(1000).min(MAX_TTL_SECS) as i32;
        let inner = &self.inner;
        inner
            .write(
                "revoking a token",
                &inner.statements.revoke_token,
                (jti, rows::timestamp(expires_at), ttl),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn is_token_revoked(&self, jti: &str) -> StoreResult<bool> {
        // Fails closed, as the embedded store does, on an id that cannot be stored.
        check_jti(jti)?;
        let inner = &self.inner;
        let row = inner
            .one::<(CqlTimestamp,)>(
                "reading a revoked token",
                &inner.statements.revoked_token,
                (jti,),
            )
            .await?;
        Ok(row.is_some_and(|(expires_at,)| {
            expires_at.0 > i64::try_from(Timestamp::now().as_millis()).unwrap_or(i64::MAX)
        }))
    }

    async fn collect_expired(&self, _now: Timestamp) -> StoreResult<usize> {
        // Revocations carry a TTL: the cluster expires them, and compaction drops them.
        Ok(0)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn set_password_hash(&self, user: UserId, password_hash: &str) -> StoreResult<bool> {
        let inner = &self.inner;
        inner
            .claim(
                "changing a password",
                &inner.statements.set_password_hash,
                (password_hash, user.as_uuid()),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn delete_user(&self, user: UserId) -> StoreResult<()> {
        let inner = &self.inner;
        let id = (user.as_uuid(),);
        inner
            .write("removing logins", &inner.statements.delete_user_logins, id)
            .await?;
        let contacts = self.contacts(user).await?;
        let unlinks: Vec<_> = contacts
            .into_iter()
            .map(|contact| inner.unlink_contact(user, contact))
            .collect();
        stream::iter(unlinks)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        inner
            .write(
                "removing contacts",
                &inner.statements.delete_user_contacts,
                id,
            )
            .await?;
        inner
            .write(
                "removing a conversation index",
                &inner.statements.delete_user_conversations,
                id,
            )
            .await?;
        if let Some(record) = self.user(user).await? {
            inner
                .claim(
                    "freeing an email",
                    &inner.statements.free_email,
                    (record.user.email.as_str(), user.as_uuid()),
                )
                .await?;
        }
        inner
            .write("removing an account", &inner.statements.delete_user, id)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %login.user))]
    async fn insert_login(&self, login: &Login) -> StoreResult<()> {
        let inner = &self.inner;
        inner
            .write(
                "writing a login",
                &inner.statements.insert_login,
                rows::login_values(login),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn login(&self, user: UserId, id: LoginId) -> StoreResult<Option<Login>> {
        let inner = &self.inner;
        let Some(row) = inner
            .one::<LoginRow>(
                "reading a login",
                &inner.statements.login,
                (user.as_uuid(), id.as_uuid()),
            )
            .await?
        else {
            return Ok(None);
        };
        let now = Timestamp::now();
        Ok(rows::login(user, row)?.filter(|l| l.is_live(now)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn user_logins(&self, user: UserId) -> StoreResult<Vec<Login>> {
        let inner = &self.inner;
        let mut found: Vec<LoginRow> = Vec::new();
        inner
            .paged(
                "reading logins",
                &inner.statements.user_logins,
                (user.as_uuid(),),
                usize::MAX,
                &mut found,
            )
            .await?;
        let now = Timestamp::now();
        let mut live = Vec::new();
        for row in found {
            let id = row.0;
            match rows::login(user, row)? {
                Some(login) if login.is_live(now) => live.push(login),
                // Expired, or the remains of a sign-out: cleaned up as they are met.
                _ => {
                    inner
                        .claim(
                            "removing an expired login",
                            &inner.statements.delete_login,
                            (user.as_uuid(), id),
                        )
                        .await?;
                }
            }
        }
        Ok(live)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn rotate_login(
        &self,
        user: UserId,
        id: LoginId,
        from: RefreshHash,
        to: RefreshHash,
        expires_at: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let inner = &self.inner;
        inner
            .claim(
                "rotating a refresh token",
                &inner.statements.rotate_login,
                (
                    to.0.to_vec(),
                    rows::timestamp(expires_at),
                    rows::timestamp(at),
                    user.as_uuid(),
                    id.as_uuid(),
                    from.0.to_vec(),
                    rows::timestamp(Timestamp::now()),
                ),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn touch_login(&self, user: UserId, id: LoginId, at: Timestamp) -> StoreResult<()> {
        let inner = &self.inner;
        inner
            .write(
                "recording a login's use",
                &inner.statements.touch_login,
                (rows::timestamp(at), user.as_uuid(), id.as_uuid()),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn delete_login(&self, user: UserId, id: LoginId) -> StoreResult<bool> {
        let live = self.login(user, id).await?.is_some();
        let inner = &self.inner;
        let removed = inner
            .claim(
                "signing a login out",
                &inner.statements.delete_login,
                (user.as_uuid(), id.as_uuid()),
            )
            .await?;
        Ok(live && removed)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation.id))]
    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()> {
        self.inner.write_conversation(conversation, &[], None).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %id))]
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let inner = &self.inner;
        let Some(row) = inner
            .one::<ConversationRow>(
                "reading a conversation",
                &inner.statements.conversation,
                (id.as_uuid(),),
            )
            .await?
        else {
            return Ok(None);
        };
        let group = inner
            .one::<(Option<String>,)>("reading a group", &inner.statements.group, (id.as_uuid(),))
            .await?
            .and_then(|(info,)| info);
        rows::conversation(id, row, group).map(Some)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn user_conversations(&self, user: UserId) -> StoreResult<Vec<ConversationId>> {
        let inner = &self.inner;
        let mut ids: Vec<(Uuid,)> = Vec::new();
        inner
            .paged(
                "reading a user's conversations",
                &inner.statements.user_conversations,
                (user.as_uuid(),),
                usize::MAX,
                &mut ids,
            )
            .await?;
        Ok(ids
            .into_iter()
            .map(|(id,)| ConversationId::from(id))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(events = events.len()))]
    async fn append_events(&self, events: &[Arc<Event>]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let size = inner.layout.bucket_size;
        // Amendments (a call's end), edits and deletes: almost every batch has none. A
        // target in this batch is written modified; one committed earlier is rewritten
        // after the batch.
        let modifiers: Vec<(usize, ConversationId, Seq)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.kind.target().map(|t| (i, e.conversation, t)))
            .collect();
        let amended: Vec<Option<Event>> = if modifiers.is_empty() {
            Vec::new()
        } else {
            events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let mut out: Option<Event> = None;
                    // An edit whose message is deleted later in this batch is written
                    // erased.
                    if let EventKind::Edit { target, .. } = &e.kind
                        && events[i + 1..].iter().any(|d| {
                            d.conversation == e.conversation
                                && matches!(d.kind, EventKind::Delete { target: t } if t == *target)
                        })
                    {
                        out = Some(e.erased_edit());
                    }
                    for (j, ..) in modifiers.iter().filter(|(j, conv, target)| {
                        *j > i && *conv == e.conversation && *target == e.seq
                    }) {
                        let current = out.as_ref().unwrap_or(e.as_ref());
                        out = Some(current.modified_by(&events[*j]));
                    }
                    out
                })
                .collect()
        };
        let mut index = Vec::new();
        let mut by_conversation: BTreeMap<ConversationId, Vec<&Event>> = BTreeMap::new();
        for (i, event) in events.iter().enumerate() {
            let event = amended
                .get(i)
                .and_then(Option::as_ref)
                .unwrap_or(event.as_ref());
            rows::seq(event.seq)?;
            if let Some(client_id) = &event.client_id {
                index.push(IndexEntry::ClientId(event, client_id));
            }
            if buckets::opens(event.seq, size) {
                index.push(IndexEntry::Bucket(
                    event.conversation,
                    buckets::of(event.seq, size),
                ));
            }
            by_conversation
                .entry(event.conversation)
                .or_default()
                .push(event);
        }
        // The futures are built up front (they do nothing until polled): a stream that
        // maps borrowed items through a closure trips the compiler's `Send` inference
        // inside `async_trait`.
        let index: Vec<_> = index.into_iter().map(|e| inner.write_index(e)).collect();
        stream::iter(index)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        let writes: Vec<_> = by_conversation
            .into_values()
            .map(|mut events| {
                events.sort_by_key(|e| e.seq);
                inner.write_events(events)
            })
            .collect();
        stream::iter(writes)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        // In seq order, one after another: each reads what the one before wrote.
        for (j, conversation, target) in modifiers {
            let in_batch = events[..j]
                .iter()
                .any(|e| e.conversation == conversation && e.seq == target);
            if !in_batch {
                inner
                    .modify_earlier(conversation, target, &events[j])
                    .await?;
            }
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn events(
        &self,
        conversation: ConversationId,
        range: HistoryRange,
    ) -> StoreResult<Vec<Event>> {
        if range.limit == 0 {
            return Ok(Vec::new());
        }
        let Some(bounds) = buckets::seq_bounds(range.after, range.before) else {
            return Ok(Vec::new());
        };
        let inner = &self.inner;
        let Some(top) = inner.top_bucket(conversation).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for bucket in buckets::walk(bounds, top, inner.layout.bucket_size, range.from_newest) {
            let want = range.limit - out.len();
            inner
                .read_bucket(
                    conversation,
                    bucket,
                    bounds,
                    want,
                    range.from_newest,
                    &mut out,
                )
                .await?;
            if out.len() >= range.limit {
                break;
            }
        }
        if range.from_newest {
            out.reverse();
        }
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn last_event(&self, conversation: ConversationId) -> StoreResult<Option<Event>> {
        let inner = &self.inner;
        let Some(top) = inner.top_bucket(conversation).await? else {
            return Ok(None);
        };
        // The newest bucket may be empty when the batch that opened it failed: walk down.
        let bounds = (1, buckets::MAX_SEQ);
        let mut out = Vec::new();
        for bucket in buckets::walk(bounds, top, inner.layout.bucket_size, true) {
            inner
                .read_bucket(conversation, bucket, bounds, 1, true, &mut out)
                .await?;
            if !out.is_empty() {
                break;
            }
        }
        Ok(out.pop())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation, events = seqs.len()))]
    async fn erase_events(&self, conversation: ConversationId, seqs: &[Seq]) -> StoreResult<()> {
        let inner = &self.inner;
        let erasures: Vec<_> = seqs
            .iter()
            .map(|&seq| inner.erase_event(conversation, seq))
            .collect();
        stream::iter(erasures)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        sender: UserId,
        client_id: &ClientId,
    ) -> StoreResult<Option<Event>> {
        let inner = &self.inner;
        let Some((seq,)) = inner
            .one::<(i64,)>(
                "reading a client-id entry",
                &inner.statements.client_id_seq,
                (conversation.as_uuid(), sender.as_uuid(), client_id.as_str()),
            )
            .await?
        else {
            return Ok(None);
        };
        let seq = u64::try_from(seq)
            .map_err(|_| StoreError::msg(format!("corrupt client-id entry: seq {seq}")))?;
        let bucket = buckets::of(seq, inner.layout.bucket_size);
        let row = inner
            .one::<EventRow>(
                "reading an event",
                &inner.statements.event_at,
                (conversation.as_uuid(), rows::seq(bucket)?, rows::seq(seq)?),
            )
            .await?;
        let Some(row) = row else {
            // The entry is written before its event: this one's event never landed.
            return Ok(None);
        };
        let event = rows::event(conversation, row)?;
        // After a failed commit the seq may since hold another event: the entry is
        // stale, and the event it named was never stored.
        let same = event.sender == sender && event.client_id.as_ref() == Some(client_id);
        Ok(same.then_some(event))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn receipt(&self, conversation: ConversationId, user: UserId) -> StoreResult<Receipt> {
        let inner = &self.inner;
        let row = inner
            .one::<(Option<i64>, Option<i64>)>(
                "reading a receipt",
                &inner.statements.receipt,
                (conversation.as_uuid(), user.as_uuid()),
            )
            .await?;
        Ok(row.map_or_else(Receipt::default, |(d, r)| receipt_of(d, r)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn receipts(&self, conversation: ConversationId) -> StoreResult<Vec<(UserId, Receipt)>> {
        let inner = &self.inner;
        let mut rows: Vec<(Uuid, Option<i64>, Option<i64>)> = Vec::new();
        inner
            .paged(
                "reading a conversation's receipts",
                &inner.statements.receipts,
                (conversation.as_uuid(),),
                usize::MAX,
                &mut rows,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user, d, r)| (UserId::from(user), receipt_of(d, r)))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn advance_receipt(
        &self,
        conversation: ConversationId,
        user: UserId,
        receipt: Receipt,
    ) -> StoreResult<()> {
        let inner = &self.inner;
        let receipt = Receipt::default().merged(receipt);
        // The mark is its own write timestamp: of two writes, the higher mark wins
        // whichever lands last, so marks never move back and no read or lightweight
        // transaction is needed.
        for (statement, mark) in [
            (&inner.statements.set_delivered, receipt.delivered),
            (&inner.statements.set_read, receipt.read),
        ] {
            if mark == 0 {
                continue;
            }
            let mark = rows::seq(mark)?;
            inner
                .write(
                    "raising a receipt",
                    statement,
                    (mark, mark, conversation.as_uuid(), user.as_uuid()),
                )
                .await?;
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn presence(&self, user: UserId) -> StoreResult<PresenceRecord> {
        let inner = &self.inner;
        let row = inner
            .one::<(Option<CqlTimestamp>, Option<bool>)>(
                "reading a presence",
                &inner.statements.presence,
                (user.as_uuid(),),
            )
            .await?;
        let Some((last_seen, hide)) = row else {
            return Ok(PresenceRecord::default());
        };
        Ok(PresenceRecord {
            last_seen: last_seen
                .and_then(|t| u64::try_from(t.0).ok())
                .map(Timestamp::from_millis),
            hide_last_seen: hide.unwrap_or(false),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()> {
        let inner = &self.inner;
        inner
            .write(
                "recording a last seen time",
                &inner.statements.set_last_seen,
                (rows::timestamp(at), user.as_uuid()),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn set_hide_last_seen(&self, user: UserId, hide: bool) -> StoreResult<()> {
        let inner = &self.inner;
        inner
            .write(
                "recording a presence setting",
                &inner.statements.set_hide_last_seen,
                (hide, user.as_uuid()),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %blocker))]
    async fn block_user(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> StoreResult<()> {
        let inner = &self.inner;
        inner
            .write(
                "blocking a user",
                &inner.statements.block_user,
                (blocker.as_uuid(), blocked.as_uuid(), rows::timestamp(at)),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %blocker))]
    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<()> {
        let inner = &self.inner;
        inner
            .write(
                "unblocking a user",
                &inner.statements.unblock_user,
                (blocker.as_uuid(), blocked.as_uuid()),
            )
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %blocker))]
    async fn blocked_users(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        let inner = &self.inner;
        let mut ids: Vec<(Uuid,)> = Vec::new();
        inner
            .paged(
                "reading a user's blocks",
                &inner.statements.blocked_users,
                (blocker.as_uuid(),),
                usize::MAX,
                &mut ids,
            )
            .await?;
        Ok(ids.into_iter().map(|(id,)| UserId::from(id)).collect())
    }

    async fn flush(&self) -> StoreResult<()> {
        // Every acknowledged write is already on the replicas (see the module docs).
        Ok(())
    }
}
