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
//! | `conversations`      | conversation_id                     |                | participants (frozen list), created_at              |
//! | `user_conversations` | user_id                             | conversation_id|                                                     |
//! | `events`             | (conversation_id, bucket)           | seq DESC       | event_id, sender_id, client_id, at, kind, body, receiver_id, target, membership |
//! | `event_buckets`      | conversation_id                     | bucket DESC    |                                                     |
//! | `client_ids`         | (conversation_id, sender_id, client_id) |            | seq                                                 |
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
//! adds reports it made them contacts. A conversation and its `user_conversations`
//! entries are one logged batch. Only `[applied]` is read from a conditional write's
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
    ClientId, Conversation, ConversationId, Email, Event, EventKind, MessageContent, Seq,
    Timestamp, UserId, UserRecord,
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

use rows::{ConversationRow, EventRow, UserRow};
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
        let mut chunk: Vec<rows::EventValues<'_>> = Vec::new();
        let mut bytes = 0;
        for (i, event) in events.iter().enumerate() {
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

    /// Rewrites the message at `target`, committed before, with an amendment's content.
    /// After the amendment itself is written, so that a retried commit does it again; a
    /// missing target, or one that is not a message, is left alone.
    async fn amend_earlier(
        &self,
        conversation: ConversationId,
        target: Seq,
        content: &MessageContent,
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
        let amended = message.amended(content);
        let values = rows::event_values(&amended, self.layout.bucket_size)?;
        self.write("amending a message", &self.statements.insert_event, &values)
            .await
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

/// A write of step 1 of the group commit.
enum IndexEntry<'a> {
    ClientId(&'a Event, &'a ClientId),
    Bucket(ConversationId, u64),
}

/// The rows of one conversation's logged batch: the conversation, then an index entry
/// per participant (the statements differ, so the values are one type of either).
enum ConversationBatchRow {
    Conversation(Uuid, Vec<Uuid>, CqlTimestamp),
    Index(Uuid, Uuid),
}

impl SerializeRow for ConversationBatchRow {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> Result<(), SerializationError> {
        match self {
            ConversationBatchRow::Conversation(id, participants, at) => {
                (id, participants, at).serialize(ctx, writer)
            }
            ConversationBatchRow::Index(user, id) => (user, id).serialize(ctx, writer),
        }
    }

    fn is_empty(&self) -> bool {
        false
    }
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

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation.id))]
    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()> {
        let inner = &self.inner;
        let id = conversation.id.as_uuid();
        // Logged: the cluster applies all of it or, after a failure, replays it until it
        // has, so a participant never lists a conversation that is not there.
        let mut batch = Batch::new(BatchType::Logged);
        batch.set_is_idempotent(true);
        batch.append_statement(inner.statements.insert_conversation.clone());
        let mut values = vec![ConversationBatchRow::Conversation(
            id,
            conversation
                .participants
                .iter()
                .map(UserId::as_uuid)
                .collect(),
            rows::timestamp(conversation.created_at),
        )];
        for user in &conversation.participants {
            batch.append_statement(inner.statements.index_conversation.clone());
            values.push(ConversationBatchRow::Index(user.as_uuid(), id));
        }
        inner
            .session
            .batch(&batch, &values)
            .await
            .map_err(failed("writing a conversation"))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %id))]
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let inner = &self.inner;
        inner
            .one::<ConversationRow>(
                "reading a conversation",
                &inner.statements.conversation,
                (id.as_uuid(),),
            )
            .await?
            .map(|row| rows::conversation(id, row))
            .transpose()
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
        // Amendments (a call's end): almost every batch has none. A target in this batch
        // is written amended; one committed earlier is rewritten after the batch.
        let amendments: Vec<(usize, ConversationId, Seq, &MessageContent)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.kind {
                EventKind::Amend { target, content } => Some((i, e.conversation, *target, content)),
                _ => None,
            })
            .collect();
        let amended: Vec<Option<Event>> = if amendments.is_empty() {
            Vec::new()
        } else {
            events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    amendments
                        .iter()
                        .rev()
                        .find(|(j, conv, target, _)| {
                            *j > i && *conv == e.conversation && *target == e.seq
                        })
                        .map(|(.., content)| e.amended(content))
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
        for (j, conversation, target, content) in amendments {
            let in_batch = events[..j]
                .iter()
                .any(|e| e.conversation == conversation && e.seq == target);
            if !in_batch {
                inner.amend_earlier(conversation, target, content).await?;
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

    async fn flush(&self) -> StoreResult<()> {
        // Every acknowledged write is already on the replicas (see the module docs).
        Ok(())
    }
}
