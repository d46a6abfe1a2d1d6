//! The embedded store: [`actors::Store`] on [fjall](https://docs.rs/fjall), an LSM-tree
//! key-value engine in the server's own process, one directory on local disk.
//!
//! # Key layout
//!
//! One keyspace per mapping, named after what maps to what. Ids are their 16 raw bytes
//! (UUIDs), seqs and timestamps big-endian `u64`s, so byte order is numeric order and a
//! range over a key prefix reads in seq order. `++` is plain concatenation: every part
//! but the last is fixed-width, so no separators are needed (see `store::keys`).
//!
//! | Keyspace          | Key                                           | Value                                                     |
//! |-------------------|-----------------------------------------------|-----------------------------------------------------------|
//! | `users`           | user_id                                       | `UserRecord` as JSON                                      |
//! | `email_user`      | normalised email (UTF-8)                      | user_id                                                   |
//! | `user_contact`    | user_id ++ contact_id                         | added_at (ms, u64 BE)                                     |
//! | `revoked_token`   | jti (UTF-8, 1 to 65535 bytes)                 | expires_at (ms, u64 BE)                                   |
//! | `conversations`   | conv_id                                       | `Conversation` as JSON                                    |
//! | `user_conv`       | user_id ++ conv_id                            | empty                                                     |
//! | `conv_msg`        | conv_id ++ seq (u64 BE)                       | event as JSON (below)                                     |
//! | `conv_client_msg` | conv_id ++ sender_id ++ client_id (UTF-8)     | seq (u64 BE)                                              |
//!
//! An event is `{id, from, body, client_id, sent_at}` plus, only where they apply,
//! `receiver` (a direct message's), `type` (`video` or `audio`; absent for text), `call`
//! (`{started_at, ended_at?}`), `edit_of`, `delete_of` or `amend_of` (the target seq) and
//! `membership`; a record with none of the last four is a message, so histories written
//! before events, and messages written before calls, read back unchanged.
//!
//! Appending an amendment (`amend_of`) also rewrites its target's record in the same
//! batch: the target keeps its id, sender, client id, time and receiver and takes the
//! amendment's body, type and call. A target in the same batch is amended before it is
//! written; a target that is missing or not a message is left alone.
//!
//! Both directions of a contact, a conversation with its `user_conv` entries, an account
//! with its email entry, and events with their `conv_client_msg` entries are each
//! written in one atomic batch, so an index never points at nothing.
//!
//! # Durability and threads
//!
//! Every write commits with [`PersistMode::SyncAll`] before it returns: an
//! acknowledgement to a client means the data is on disk. `append_events` is the group
//! commit: whatever the group-commit task has gathered, of any conversations, goes into
//! one batch with one fsync. Writes (and [`Store::flush`]) run on
//! [`tokio::task::spawn_blocking`], since an fsync takes milliseconds. Point reads and
//! short, bounded range reads (`events` reads at most `limit` entries) run inline on
//! the async worker: they are served from fjall's memtables, block cache or the page
//! cache in microseconds. The scans whose length depends on the data (`contacts`,
//! `user_conversations`) run on the blocking pool too.
//!
//! If a blocking write's caller is dropped mid-await, the write still completes: it may
//! be durable without having been acknowledged, which retries with a client id cover.
//!
//! # Uniqueness
//!
//! One account per email is a check of `email_user` and the insert, under one mutex.
//! Adding contacts is the same under a second mutex, so of two concurrent adds exactly
//! one reports it made them contacts.
//!
//! # Expiry
//!
//! A revoked token is only remembered until its `expires_at`: `is_token_revoked`
//! ignores an entry past it, and [`Store::collect_expired`] (the server calls it
//! periodically) deletes those entries, one scan of `revoked_token` on the blocking
//! pool. The deletes are not fsynced: one lost in a crash is deleted again next time.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actors::domain::{
    CallInfo, ClientId, ContentType, Conversation, ConversationId, Email, Event, EventId,
    EventKind, MembershipChange, MessageBody, MessageContent, Seq, Timestamp, UserId, UserRecord,
};
use actors::store::{HistoryRange, InsertUserError, StoreResult};
use actors::{Store, StoreError};
use fjall::{Database, Guard, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use serde::de::DeserializeOwned;

use super::keys;

/// The embedded store. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct FjallStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: Database,
    users: Keyspace,
    email_user: Keyspace,
    user_contact: Keyspace,
    revoked_token: Keyspace,
    conversations: Keyspace,
    user_conv: Keyspace,
    conv_msg: Keyspace,
    conv_client_msg: Keyspace,
    /// Held from checking `email_user` until the account is written.
    email_lock: Mutex<()>,
    /// Held from checking `user_contact` until both directions are written.
    contact_lock: Mutex<()>,
}

impl FjallStore {
    /// Opens (or creates) the store in `dir`, creating the directory if needed. Blocks
    /// while fjall recovers its journal, so call it at startup, not on an async worker
    /// that serves requests.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let context =
            |e: &dyn fmt::Display| StoreError::msg(format!("opening {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| context(&e))?;
        let db = Database::builder(dir).open().map_err(|e| match e {
            fjall::Error::Locked => StoreError::msg(in_use(dir)),
            e => context(&e),
        })?;
        let keyspace = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(|e| context(&e))
        };
        let inner = Inner {
            path: dir.to_path_buf(),
            users: keyspace("users")?,
            email_user: keyspace("email_user")?,
            user_contact: keyspace("user_contact")?,
            revoked_token: keyspace("revoked_token")?,
            conversations: keyspace("conversations")?,
            user_conv: keyspace("user_conv")?,
            conv_msg: keyspace("conv_msg")?,
            conv_client_msg: keyspace("conv_client_msg")?,
            db,
            email_lock: Mutex::new(()),
            contact_lock: Mutex::new(()),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

impl fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FjallStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// An event as stored in `conv_msg`; its conversation and seq are the key.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredEvent<'a> {
    id: EventId,
    from: UserId,
    /// A message's text, or an edit's new text.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client_id: Option<Cow<'a, str>>,
    sent_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receiver: Option<UserId>,
    /// A message's (or an amendment's) type, absent for text.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    content_type: Option<StoredType>,
    /// A call's times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call: Option<StoredCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edit_of: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delete_of: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amend_of: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    membership: Option<MembershipChange>,
}

/// A message's type as stored; text is the absence of one.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredType {
    Video,
    Audio,
}

/// A call's times as stored.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
struct StoredCall {
    started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_at: Option<Timestamp>,
}

/// Sets the fields of a message's (or an amendment's) content, but its receiver.
fn set_content<'a>(stored: &mut StoredEvent<'a>, content: &'a MessageContent) {
    stored.body = Some(Cow::Borrowed(content.body.as_str()));
    stored.content_type = match content.content_type {
        ContentType::Text => None,
        ContentType::Video => Some(StoredType::Video),
        ContentType::Audio => Some(StoredType::Audio),
    };
    stored.call = content.call.map(|c| StoredCall {
        started_at: c.started_at,
        ended_at: c.ended_at,
    });
}

fn encode_event(event: &Event) -> StoreResult<Vec<u8>> {
    let mut stored = StoredEvent {
        id: event.id,
        from: event.sender,
        body: None,
        client_id: event.client_id.as_ref().map(|c| Cow::Borrowed(c.as_str())),
        sent_at: event.at,
        receiver: None,
        content_type: None,
        call: None,
        edit_of: None,
        delete_of: None,
        amend_of: None,
        membership: None,
    };
    match &event.kind {
        EventKind::Message(m) => {
            set_content(&mut stored, m);
            stored.receiver = m.receiver;
        }
        EventKind::Amend { target, content } => {
            set_content(&mut stored, content);
            stored.receiver = content.receiver;
            stored.amend_of = Some(*target);
        }
        EventKind::Edit { target, content } => {
            stored.body = Some(Cow::Borrowed(content.as_str()));
            stored.edit_of = Some(*target);
        }
        EventKind::Delete { target } => stored.delete_of = Some(*target),
        EventKind::Membership(change) => stored.membership = Some(change.clone()),
    }
    serde_json::to_vec(&stored).map_err(|e| StoreError::context("encoding an event", e))
}

/// An event's bytes as this store keeps them (without its conversation and seq): also
/// how the nodes of a cluster pass events to each other (`cluster::codec`).
pub(crate) fn event_bytes(event: &Event) -> StoreResult<Vec<u8>> {
    encode_event(event)
}

/// The event [`event_bytes`] encoded, at `conversation` and `seq`.
pub(crate) fn event_from_bytes(
    conversation: ConversationId,
    seq: Seq,
    bytes: &[u8],
) -> StoreResult<Event> {
    decode_event(&keys::message(conversation, seq), bytes)
}

fn decode_event(key: &[u8], value: &[u8]) -> StoreResult<Event> {
    let (conversation, seq) = keys::split_message(key)?;
    let corrupt =
        |what: &str| StoreError::msg(format!("corrupt event {conversation}/{seq}: {what}"));
    let stored: StoredEvent<'_> = serde_json::from_slice(value)
        .map_err(|e| StoreError::context(format!("decoding event {conversation}/{seq}"), e))?;
    let client_id = match stored.client_id {
        None => None,
        Some(raw) => Some(ClientId::parse(&raw).map_err(|e| corrupt(&format!("client id {e}")))?),
    };
    let body = stored
        .body
        .map(|b| MessageBody::from_stored(b.into_owned()));
    let content_type = match stored.content_type {
        None => ContentType::Text,
        Some(StoredType::Video) => ContentType::Video,
        Some(StoredType::Audio) => ContentType::Audio,
    };
    let call = stored.call.map(|c| CallInfo {
        started_at: c.started_at,
        ended_at: c.ended_at,
    });
    let has_content_fields = stored.content_type.is_some() || call.is_some();
    let content = |body| MessageContent {
        body,
        receiver: stored.receiver,
        content_type,
        call,
    };
    let targets = (stored.delete_of, stored.edit_of, stored.amend_of);
    let kind = match (stored.membership, targets, body) {
        (Some(change), (None, None, None), None) if !has_content_fields => {
            EventKind::Membership(change)
        }
        (None, (Some(target), None, None), None) if !has_content_fields => {
            EventKind::Delete { target }
        }
        (None, (None, Some(target), None), Some(content)) if !has_content_fields => {
            EventKind::Edit { target, content }
        }
        (None, (None, None, Some(target)), Some(body)) => EventKind::Amend {
            target,
            content: content(body),
        },
        (None, (None, None, None), Some(body)) => EventKind::Message(content(body)),
        _ => return Err(corrupt("fields of more than one kind, or none")),
    };
    Ok(Event {
        id: stored.id,
        conversation,
        seq,
        sender: stored.from,
        client_id,
        at: stored.sent_at,
        kind,
    })
}

fn decode_json<T: DeserializeOwned>(value: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(value).map_err(StoreError::new)
}

fn get_json<T: DeserializeOwned>(keyspace: &Keyspace, key: &[u8]) -> StoreResult<Option<T>> {
    keyspace
        .get(key)
        .map_err(StoreError::new)?
        .map(|value| decode_json(&value))
        .transpose()
}

/// The second ids of the `id ++ id` keys under `first`.
fn second_ids(keyspace: &Keyspace, first: &[u8; keys::ID_LEN]) -> StoreResult<Vec<[u8; 16]>> {
    keyspace
        .prefix(first)
        .map(|guard| keys::second_id(&guard.key().map_err(StoreError::new)?))
        .collect()
}

/// Decodes up to `limit` `conv_msg` entries, all of which must belong to `conversation`.
fn read_events(
    guards: impl Iterator<Item = Guard>,
    conversation: ConversationId,
    limit: usize,
) -> StoreResult<Vec<Event>> {
    guards
        .take(limit)
        .map(|guard| {
            let (key, value) = guard.into_inner().map_err(StoreError::new)?;
            let event = decode_event(&key, &value)?;
            if event.conversation != conversation {
                return Err(StoreError::msg(format!(
                    "range over {conversation} returned an event of {}",
                    event.conversation
                )));
            }
            Ok(event)
        })
        .collect()
}

/// Commits a batch and fsyncs the journal before returning.
fn commit(batch: OwnedWriteBatch) -> StoreResult<()> {
    batch
        .durability(Some(PersistMode::SyncAll))
        .commit()
        .map_err(StoreError::new)
}

/// Takes a lock that guards no data (only a check-then-write sequence), so a panic
/// while it was held leaves nothing inconsistent and poisoning can be ignored.
fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs blocking work (an fsync, an unbounded scan) off the async workers.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| E::from(StoreError::new(e)))?
}

#[async_trait::async_trait]
impl Store for FjallStore {
    async fn insert_user(&self, record: &UserRecord) -> Result<(), InsertUserError> {
        let value = serde_json::to_vec(record).map_err(StoreError::new)?;
        let id = *record.user.id.as_bytes();
        let email = record.user.email.as_str().to_owned();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _unique = lock(&inner.email_lock);
            if inner
                .email_user
                .contains_key(&email)
                .map_err(StoreError::new)?
            {
                return Err(InsertUserError::EmailTaken);
            }
            // Ids are fresh UUIDv7s, so this never happens; if it did, overwriting would
            // orphan the other account's email entry.
            if inner.users.contains_key(id).map_err(StoreError::new)? {
                return Err(StoreError::msg("an account with this id already exists").into());
            }
            let mut batch = inner.db.batch();
            batch.insert(&inner.users, id, value);
            batch.insert(&inner.email_user, email, id);
            // Visible (so uniqueness holds) once committed; the fsync happens after the
            // lock is released, so concurrent registrations do not queue behind it.
            batch.commit().map_err(StoreError::new)?;
            drop(_unique);
            inner
                .db
                .persist(PersistMode::SyncAll)
                .map_err(StoreError::new)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        get_json(&self.inner.users, id.as_bytes())
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        let Some(id) = self
            .inner
            .email_user
            .get(email.as_str())
            .map_err(StoreError::new)?
        else {
            return Ok(None);
        };
        let id = keys::id(&id)?;
        match get_json(&self.inner.users, &id)? {
            Some(record) => Ok(Some(record)),
            None => Err(StoreError::msg(format!(
                "email {email} points to a missing account {}",
                UserId::from_bytes(id)
            ))),
        }
    }

    async fn add_contacts(&self, a: UserId, b: UserId, at: Timestamp) -> StoreResult<bool> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let ab = keys::id_pair(a.as_bytes(), b.as_bytes());
            let ba = keys::id_pair(b.as_bytes(), a.as_bytes());
            let _serial = lock(&inner.contact_lock);
            // Both directions are always written together; checking both also heals a
            // half-written pair, should one ever exist.
            let has = |key: &[u8]| {
                inner
                    .user_contact
                    .contains_key(key)
                    .map_err(StoreError::new)
            };
            if has(&ab)? && has(&ba)? {
                return Ok(false);
            }
            let added_at = keys::u64_bytes(at.as_millis());
            let mut batch = inner.db.batch();
            batch.insert(&inner.user_contact, ab, added_at);
            batch.insert(&inner.user_contact, ba, added_at);
            commit(batch)?;
            Ok(true)
        })
        .await
    }

    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let inner = Arc::clone(&self.inner);
        let ids = blocking(move || second_ids(&inner.user_contact, user.as_bytes())).await?;
        Ok(ids.into_iter().map(UserId::from_bytes).collect())
    }

    async fn revoke_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()> {
        let key = keys::token(jti)?.to_vec();
        if expires_at <= Timestamp::now() {
            // Already refused as expired: nothing to remember.
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = inner.db.batch();
            batch.insert(
                &inner.revoked_token,
                key,
                keys::u64_bytes(expires_at.as_millis()),
            );
            commit(batch)
        })
        .await
    }

    async fn is_token_revoked(&self, jti: &str) -> StoreResult<bool> {
        // An id that could never have been revoked is an error, not "not revoked": a
        // caller that checks revocation fails closed.
        let Some(expires_at) = self
            .inner
            .revoked_token
            .get(keys::token(jti)?)
            .map_err(StoreError::new)?
        else {
            return Ok(false);
        };
        // Past its expiry the entry is garbage that `collect_expired` has not reached.
        Ok(Timestamp::from_millis(keys::u64_value(&expires_at)?) > Timestamp::now())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn collect_expired(&self, now: Timestamp) -> StoreResult<usize> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut expired = Vec::new();
            for guard in inner.revoked_token.iter() {
                let (key, value) = guard.into_inner().map_err(StoreError::new)?;
                if keys::u64_value(&value)? <= now.as_millis() {
                    expired.push(key);
                }
            }
            if expired.is_empty() {
                return Ok(0);
            }
            let count = expired.len();
            let mut batch = inner.db.batch();
            for key in expired {
                batch.remove(&inner.revoked_token, key);
            }
            batch.commit().map_err(StoreError::new)?;
            tracing::debug!(count, "expired revocations collected");
            Ok(count)
        })
        .await
    }

    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()> {
        // Already there, byte for byte: it was committed durably, nothing to do.
        let id = *conversation.id.as_bytes();
        if get_json::<Conversation>(&self.inner.conversations, &id)?.as_ref() == Some(conversation)
        {
            return Ok(());
        }
        let value = serde_json::to_vec(conversation).map_err(StoreError::new)?;
        let participants: Vec<UserId> = conversation.participants.clone();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = inner.db.batch();
            batch.insert(&inner.conversations, id, value);
            for user in participants {
                batch.insert(&inner.user_conv, keys::id_pair(user.as_bytes(), &id), b"");
            }
            commit(batch)
        })
        .await
    }

    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        get_json(&self.inner.conversations, id.as_bytes())
    }

    async fn user_conversations(&self, user: UserId) -> StoreResult<Vec<ConversationId>> {
        let inner = Arc::clone(&self.inner);
        let ids = blocking(move || second_ids(&inner.user_conv, user.as_bytes())).await?;
        Ok(ids.into_iter().map(ConversationId::from_bytes).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(events = events.len()))]
    async fn append_events(&self, events: &[Arc<Event>]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Amendments in this batch, by target; almost every batch has none.
        let amendments: Vec<(usize, ConversationId, Seq, &MessageContent)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.kind {
                EventKind::Amend { target, content } => Some((i, e.conversation, *target, content)),
                _ => None,
            })
            .collect();
        // Encode here, so the blocking task only writes (and reads the targets of
        // amendments committed earlier).
        let mut rows = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let client_key = e
                .client_id
                .as_ref()
                .map(|c| keys::client_message(e.conversation, e.sender, c));
            // A message amended later in this same batch is written amended.
            let amendment = amendments
                .iter()
                .rev()
                .find(|(j, conv, target, _)| *j > i && *conv == e.conversation && *target == e.seq);
            let value = match (amendment, &e.kind) {
                (Some((.., content)), EventKind::Message(_)) => encode_event(&e.amended(content))?,
                _ => encode_event(e)?,
            };
            rows.push((
                keys::message(e.conversation, e.seq),
                value,
                client_key,
                e.seq,
            ));
        }
        let earlier: Vec<(keys::MessageKey, MessageContent)> = amendments
            .iter()
            .filter(|(j, conv, target, _)| {
                !events[..*j]
                    .iter()
                    .any(|e| e.conversation == *conv && e.seq == *target)
            })
            .map(|(_, conv, target, content)| (keys::message(*conv, *target), (*content).clone()))
            .collect();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = OwnedWriteBatch::with_capacity(inner.db.clone(), 2 * rows.len());
            for (key, value, client_key, seq) in rows {
                batch.insert(&inner.conv_msg, key, value);
                if let Some(client_key) = client_key {
                    batch.insert(&inner.conv_client_msg, client_key, keys::u64_bytes(seq));
                }
            }
            // Amendments of messages committed earlier: read, amend, rewrite, in the
            // same atomic batch as the amendment itself.
            for (key, content) in earlier {
                let Some(value) = inner.conv_msg.get(key).map_err(StoreError::new)? else {
                    continue;
                };
                let target = decode_event(&key, &value)?;
                if matches!(target.kind, EventKind::Message(_)) {
                    batch.insert(
                        &inner.conv_msg,
                        key,
                        encode_event(&target.amended(&content))?,
                    );
                }
            }
            commit(batch)
        })
        .await
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
        let Some(bounds) = keys::message_range(conversation, range.after, range.before) else {
            return Ok(Vec::new());
        };
        // Bounded by `limit`: read inline (see the module docs).
        let entries = self.inner.conv_msg.range(bounds);
        if range.from_newest {
            let mut newest = read_events(entries.rev(), conversation, range.limit)?;
            newest.reverse();
            Ok(newest)
        } else {
            read_events(entries, conversation, range.limit)
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn last_event(&self, conversation: ConversationId) -> StoreResult<Option<Event>> {
        let newest = self.inner.conv_msg.prefix(conversation.as_bytes()).rev();
        Ok(read_events(newest, conversation, 1)?.pop())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation))]
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        sender: UserId,
        client_id: &ClientId,
    ) -> StoreResult<Option<Event>> {
        let index_key = keys::client_message(conversation, sender, client_id);
        let Some(seq) = self
            .inner
            .conv_client_msg
            .get(index_key)
            .map_err(StoreError::new)?
        else {
            return Ok(None);
        };
        let seq = keys::u64_value(&seq)?;
        let key = keys::message(conversation, seq);
        let Some(value) = self.inner.conv_msg.get(key).map_err(StoreError::new)? else {
            return Err(StoreError::msg(format!(
                "client id {client_id} points to a missing event {conversation}/{seq}"
            )));
        };
        decode_event(&key, &value).map(Some)
    }

    async fn flush(&self) -> StoreResult<()> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            inner
                .db
                .persist(PersistMode::SyncAll)
                .map_err(StoreError::new)
        })
        .await
    }
}

/// Why a store cannot be opened because another process holds it: which process, when
/// `/proc/locks` says (fjall holds an exclusive `flock` on `lock` while open).
fn in_use(dir: &Path) -> String {
    let data_dir = dir.parent().unwrap_or(dir);
    let holder = lock_holder(&dir.join("lock")).map_or_else(
        || "another process".to_owned(),
        |(pid, command)| format!("process {pid} ({command})"),
    );
    format!(
        "the data dir {} is in use by {holder}; stop it, or give this server another --data-dir",
        data_dir.display()
    )
}

/// Elsewhere the holder is not looked up.
#[cfg(not(target_os = "linux"))]
fn lock_holder(_file: &Path) -> Option<(u32, String)> {
    None
}

/// The pid and command line of the process holding a lock on `file`, on Linux.
#[cfg(target_os = "linux")]
fn lock_holder(file: &Path) -> Option<(u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(file).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF`: pid, then dev:inode.
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|f| f.matches(':').count() == 2)?;
        let lock_inode: u64 = fields[at].rsplit(':').next()?.parse().ok()?;
        (lock_inode == inode).then(|| fields.get(at - 1)?.parse::<u32>().ok())?
    })?;
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "command unknown".to_owned());
    Some((pid, command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, FjallStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FjallStore::open(&dir.path().join("db")).unwrap();
        (dir, store)
    }

    fn conversation_id(last: u8) -> ConversationId {
        let mut bytes = [7; 16];
        bytes[15] = last;
        ConversationId::from_bytes(bytes)
    }

    #[tokio::test]
    async fn corrupt_values_are_store_errors_not_panics() {
        let (_dir, store) = open();
        let inner = &store.inner;
        let user = UserId::generate();
        let conv = conversation_id(1);
        let client_id = ClientId::parse("c-1").unwrap();
        let garbage: &[u8] = b"\xff\x00{not json";

        inner.users.insert(user.as_bytes(), garbage).unwrap();
        inner
            .conversations
            .insert(conv.as_bytes(), garbage)
            .unwrap();
        inner
            .conv_msg
            .insert(keys::message(conv, 1), garbage)
            .unwrap();
        // A key of the wrong length inside a conversation's prefix.
        let mut short = conv.as_bytes().to_vec();
        short.push(9);
        inner.conv_msg.insert(short, b"{}").unwrap();
        inner
            .user_contact
            .insert(&user.as_bytes()[..], b"")
            .unwrap(); // 16-byte key
        let email = Email::parse("ada@example.com").unwrap();
        inner.email_user.insert(email.as_str(), b"short").unwrap();
        inner
            .conv_client_msg
            .insert(keys::client_message(conv, user, &client_id), b"xyz")
            .unwrap();

        assert!(store.user(user).await.is_err());
        assert!(store.conversation(conv).await.is_err());
        assert!(store.last_event(conv).await.is_err());
        let all = HistoryRange {
            after: None,
            before: None,
            limit: 10,
            from_newest: false,
        };
        assert!(store.events(conv, all).await.is_err());
        assert!(store.user_by_email(&email).await.is_err());
        assert!(
            store
                .event_by_client_id(conv, user, &client_id)
                .await
                .is_err()
        );
        // user ++ nothing is under the user's prefix but is not an id pair.
        assert!(store.contacts(user).await.is_err());
    }

    #[tokio::test]
    async fn a_stored_client_id_that_no_longer_parses_is_an_error() {
        let (_dir, store) = open();
        let conv = conversation_id(2);
        let value = br#"{"id":"0190a8e0-0000-7000-8000-000000000000","from":"0190a8e0-0000-7000-8000-000000000001","body":"hi","client_id":"a\nb","sent_at":1}"#;
        store
            .inner
            .conv_msg
            .insert(keys::message(conv, 1), value)
            .unwrap();
        let err = store.last_event(conv).await.unwrap_err();
        assert!(err.to_string().contains("client id"), "{err}");
    }

    #[tokio::test]
    async fn records_written_before_calls_read_as_text_and_calls_read_back() {
        let (_dir, store) = open();
        let conv = conversation_id(3);
        let ids = r#""id":"0190a8e0-0000-7000-8000-000000000000","from":"0190a8e0-0000-7000-8000-000000000001""#;
        let before_calls = format!(r#"{{{ids},"body":"hi","client_id":null,"sent_at":5}}"#);
        let call = format!(
            r#"{{{ids},"body":"Audio call","client_id":null,"sent_at":6,"type":"audio","call":{{"started_at":6}}}}"#
        );
        for (seq, value) in [(1, &before_calls), (2, &call)] {
            store
                .inner
                .conv_msg
                .insert(keys::message(conv, seq), value.as_bytes())
                .unwrap();
        }
        let all = HistoryRange {
            after: None,
            before: None,
            limit: 10,
            from_newest: false,
        };
        let events = store.events(conv, all).await.unwrap();
        let contents: Vec<_> = events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Message(m) => (m.body.as_str(), m.content_type, m.call),
                other => panic!("not a message: {other:?}"),
            })
            .collect();
        let started = Timestamp::from_millis(6);
        assert_eq!(
            contents,
            vec![
                ("hi", ContentType::Text, None),
                (
                    "Audio call",
                    ContentType::Audio,
                    Some(CallInfo {
                        started_at: started,
                        ended_at: None
                    })
                ),
            ]
        );
        // A message's fields on a kind that has none is corruption, not a guess.
        let bad = format!(r#"{{{ids},"client_id":null,"sent_at":7,"delete_of":1,"type":"video"}}"#);
        store
            .inner
            .conv_msg
            .insert(keys::message(conv, 3), bad.as_bytes())
            .unwrap();
        assert!(store.last_event(conv).await.is_err());
    }

    #[tokio::test]
    async fn token_ids_fjall_cannot_store_are_refused_rather_than_panicking() {
        let (_dir, store) = open();
        assert!(
            store
                .revoke_token("", Timestamp::from_millis(1))
                .await
                .is_err()
        );
        assert!(store.is_token_revoked("").await.is_err());
        let huge = "j".repeat(70_000);
        assert!(
            store
                .revoke_token(&huge, Timestamp::from_millis(1))
                .await
                .is_err()
        );
        assert!(store.is_token_revoked(&huge).await.is_err());
    }

    #[tokio::test]
    async fn revocations_past_their_expiry_are_ignored_then_collected() {
        let (_dir, store) = open();
        let now = Timestamp::now();
        let hour = 3_600_000;
        let later = Timestamp::from_millis(now.as_millis() + hour);
        store.revoke_token("live", later).await.unwrap();
        // Written behind the store's back, as if it had been revoked an hour ago and
        // had expired since.
        store
            .inner
            .revoked_token
            .insert("expired", keys::u64_bytes(now.as_millis() - 1))
            .unwrap();
        assert!(store.is_token_revoked("live").await.unwrap());
        assert!(!store.is_token_revoked("expired").await.unwrap());

        assert_eq!(store.collect_expired(now).await.unwrap(), 1);
        assert!(store.inner.revoked_token.get("expired").unwrap().is_none());
        assert!(store.is_token_revoked("live").await.unwrap());
        // Nothing more to collect until the live one expires; then it goes too.
        assert_eq!(store.collect_expired(now).await.unwrap(), 0);
        let after = Timestamp::from_millis(later.as_millis() + 1);
        assert_eq!(store.collect_expired(after).await.unwrap(), 1);
        assert!(store.inner.revoked_token.is_empty().unwrap());
    }

    #[tokio::test]
    async fn a_revocation_already_past_its_expiry_is_not_stored() {
        let (_dir, store) = open();
        store
            .revoke_token("old", Timestamp::from_millis(1))
            .await
            .unwrap();
        assert!(store.inner.revoked_token.is_empty().unwrap());
        assert!(!store.is_token_revoked("old").await.unwrap());
    }

    #[tokio::test]
    async fn a_second_open_of_a_directory_in_use_fails_cleanly() {
        let (dir, _store) = open();
        assert!(FjallStore::open(&dir.path().join("db")).is_err());
    }

    #[test]
    fn open_creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c");
        let store = FjallStore::open(&path).unwrap();
        assert_eq!(store.path(), path);
        assert!(path.is_dir());
    }
}
