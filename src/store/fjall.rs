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
//! | `user_login`      | user_id ++ login_id                           | `Login` as JSON (the refresh token's hash, never the token) |
//! | `conversations`   | conv_id                                       | `Conversation` as JSON                                    |
//! | `user_conv`       | user_id ++ conv_id                            | empty                                                     |
//! | `conv_msg`        | conv_id ++ seq (u64 BE)                       | event as JSON (below)                                     |
//! | `conv_client_msg` | conv_id ++ sender_id ++ client_id (UTF-8)     | seq (u64 BE)                                              |
//! | `conv_receipt`    | conv_id ++ user_id                            | delivered ++ read (u64 BE each)                           |
//! | `user_block`      | blocker_id ++ blocked_id                      | blocked_at (ms, u64 BE)                                   |
//! | `user_presence`   | user_id                                       | last_seen ms (u64 BE, 0: none) ++ hide_last_seen (1 byte) |
//!
//! An event is `{id, from, body, client_id, sent_at}` plus, only where they apply,
//! `receiver` (a direct message's), `type` (`video` or `audio`; absent for text), `call`
//! (`{started_at, ended_at?}`), `edit_of`, `delete_of` or `amend_of` (the target seq),
//! `membership` and `erased` (true, with nothing else of the content: the place of a
//! message of an account that was deleted); a record with none of the last five is a
//! message, so histories written before events, and messages written before calls,
//! read back unchanged. A message that was edited has `edited_at`; one that was deleted
//! has `deleted: true` and an empty body (its text is gone from the store, not hidden).
//!
//! Appending an amendment, an edit or a delete also rewrites its target's record in the
//! same batch, with `Event::modified_by` (amended, edited, or erased), in seq order. A
//! target in the same batch is modified before it is written; a target that is missing
//! or not a message is left alone. Membership events are folded into their group's
//! `conversations` record and `user_conv` entries in the same batch too
//! (`Conversation::apply`).
//!
//! Both directions of a contact, a conversation with its `user_conv` entries, an account
//! with its email entry, and events with their `conv_client_msg` entries are each
//! written in one atomic batch, so an index never points at nothing.
//!
//! # Durability and threads
//!
//! Every write commits with [`PersistMode::SyncAll`] before it returns: an
//! acknowledgement to a client means the data is on disk. `append_events` is the group
//! commit: whatever the group-commit thread has gathered, of any conversations, goes into
//! one batch with one fsync. Writes (and [`Store::flush`]) run on
//! [`tokio::task::spawn_blocking`], since an fsync takes milliseconds, except on the
//! group commit's own thread ([`actors::store::may_block`]), where they run inline.
//! Point reads and
//! short, bounded range reads (`events` reads at most `limit` entries) run inline on
//! the async worker: they are served from fjall's memtables, block cache or the page
//! cache in microseconds. The scans whose length depends on the data (`contacts`,
//! `user_conversations`) run on the blocking pool too.
//!
//! Receipts and last-seen times are written without an fsync (`advance_receipt`'s contract): one lost in a
//! crash is a mark the client raises again, and a read receipt per message must not
//! cost a disk flush.
//!
//! If a blocking write's caller is dropped mid-await, the write still completes: it may
//! be durable without having been acknowledged, which retries with a client id cover.
//!
//! # Uniqueness
//!
//! One account per email is a check of `email_user` and the insert, under one mutex.
//! Adding contacts is the same under a second mutex, so of two concurrent adds exactly
//! one reports it made them contacts. Rotating a login's refresh token reads the login
//! and writes it back under a third, so of two rotations from one token exactly one
//! applies. Deleting an account holds all three: nothing it removes is re-created
//! half-way.
//!
//! # Expiry
//!
//! A revoked token is only remembered until its `expires_at`: `is_token_revoked`
//! ignores an entry past it, and [`Store::collect_expired`] (the server calls it
//! periodically) deletes those entries, one scan of `revoked_token` on the blocking
//! pool. Logins past their `expires_at` are likewise ignored on read and deleted by the
//! same sweep. The deletes are not fsynced: one lost in a crash is deleted again next
//! time.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actors::domain::{
    CallInfo, ClientId, ContentType, Conversation, ConversationId, Email, Event, EventId,
    EventKind, Login, LoginId, MembershipChange, MessageBody, MessageContent, PresenceRecord,
    Receipt, RefreshHash, Seq, Timestamp, UserId, UserRecord,
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
    user_login: Keyspace,
    conversations: Keyspace,
    user_conv: Keyspace,
    conv_msg: Keyspace,
    conv_client_msg: Keyspace,
    conv_receipt: Keyspace,
    user_presence: Keyspace,
    user_block: Keyspace,
    /// Held from checking `email_user` until the account is written.
    email_lock: Mutex<()>,
    /// Held from checking `user_contact` until both directions are written.
    contact_lock: Mutex<()>,
    /// Held from reading a receipt until its raised marks are written, so marks only
    /// move forward.
    receipt_lock: Mutex<()>,
    /// Held from reading a presence record until it is written back.
    presence_lock: Mutex<()>,
    /// Held from reading a login until it is written back or removed.
    login_lock: Mutex<()>,
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
            user_login: keyspace("user_login")?,
            conversations: keyspace("conversations")?,
            user_conv: keyspace("user_conv")?,
            conv_msg: keyspace("conv_msg")?,
            conv_client_msg: keyspace("conv_client_msg")?,
            conv_receipt: keyspace("conv_receipt")?,
            user_presence: keyspace("user_presence")?,
            user_block: keyspace("user_block")?,
            db,
            email_lock: Mutex::new(()),
            contact_lock: Mutex::new(()),
            receipt_lock: Mutex::new(()),
            presence_lock: Mutex::new(()),
            login_lock: Mutex::new(()),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Reads a live login, lets `change` edit it, and writes it back if `change` says
    /// so, all under the login lock. Returns whether it was written.
    async fn update_login(
        &self,
        user: UserId,
        id: LoginId,
        change: impl FnOnce(&mut Login) -> bool + Send + 'static,
    ) -> StoreResult<bool> {
        let key = keys::id_pair(user.as_bytes(), id.as_bytes());
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _logins = lock(&inner.login_lock);
            let Some(mut login) = get_json::<Login>(&inner.user_login, &key)? else {
                return Ok(false);
            };
            if !login.is_live(Timestamp::now()) || !change(&mut login) {
                return Ok(false);
            }
            let value = serde_json::to_vec(&login).map_err(StoreError::new)?;
            let mut batch = inner.db.batch();
            batch.insert(&inner.user_login, key, value);
            commit(batch)?;
            Ok(true)
        })
        .await
    }
}

impl FjallStore {
    /// Reads, changes and writes back a presence record (not fsynced: see the module
    /// docs), under a lock so the two fields' writers do not undo each other.
    fn update_presence(
        &self,
        user: UserId,
        change: impl FnOnce(&mut PresenceRecord),
    ) -> StoreResult<()> {
        let inner = &self.inner;
        let _guard = lock(&inner.presence_lock);
        let mut record = match inner
            .user_presence
            .get(user.as_bytes())
            .map_err(StoreError::new)?
        {
            None => PresenceRecord::default(),
            Some(value) => decode_presence(&value)?,
        };
        change(&mut record);
        let mut value = [0u8; 9];
        value[..8].copy_from_slice(&keys::u64_bytes(
            record.last_seen.map_or(0, |t| t.as_millis()),
        ));
        value[8] = u8::from(record.hide_last_seen);
        inner
            .user_presence
            .insert(user.as_bytes(), value)
            .map_err(StoreError::new)
    }
}

fn decode_presence(value: &[u8]) -> StoreResult<PresenceRecord> {
    if value.len() != 9 {
        return Err(StoreError::msg(format!(
            "corrupt presence of {} bytes",
            value.len()
        )));
    }
    let last_seen = keys::u64_value(&value[..8])?;
    Ok(PresenceRecord {
        last_seen: (last_seen > 0).then(|| Timestamp::from_millis(last_seen)),
        hide_last_seen: value[8] != 0,
    })
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
    /// A message's last edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edited_at: Option<Timestamp>,
    /// A message's edits, by seq (so a delete can erase them too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    edits: Vec<Seq>,
    /// A deleted message (its body is erased: empty).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    erased: bool,
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
        edited_at: None,
        edits: Vec::new(),
        deleted: false,
        erased: false,
    };
    match &event.kind {
        EventKind::Message(m) => {
            set_content(&mut stored, m);
            stored.receiver = m.receiver;
            stored.edited_at = m.edited_at;
            stored.edits.clone_from(&m.edits);
            stored.deleted = m.deleted;
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
        EventKind::Erased => stored.erased = true,
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
        Some(raw) => {
            Some(ClientId::from_stored(&raw).map_err(|e| corrupt(&format!("client id {e}")))?)
        }
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
    let message_only = stored.edited_at.is_some() || stored.deleted || !stored.edits.is_empty();
    let content = |body| MessageContent {
        body,
        receiver: stored.receiver,
        content_type,
        call,
        edited_at: stored.edited_at,
        edits: stored.edits.clone(),
        deleted: stored.deleted,
    };
    let targets = (stored.delete_of, stored.edit_of, stored.amend_of);
    let kind = match (stored.membership, targets, body) {
        (None, (None, None, None), None) if stored.erased && !has_content_fields => {
            EventKind::Erased
        }
        _ if stored.erased => return Err(corrupt("erased, yet with content")),
        (Some(change), (None, None, None), None) if !has_content_fields => {
            EventKind::Membership(change)
        }
        (None, (Some(target), None, None), None) if !has_content_fields => {
            EventKind::Delete { target }
        }
        (None, (None, Some(target), None), Some(content)) if !has_content_fields => {
            EventKind::Edit { target, content }
        }
        (None, (None, None, Some(target)), Some(body)) if !message_only => EventKind::Amend {
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

fn decode_receipt(value: &[u8]) -> StoreResult<Receipt> {
    if value.len() != 16 {
        return Err(StoreError::msg(format!(
            "corrupt receipt of {} bytes",
            value.len()
        )));
    }
    Ok(Receipt {
        delivered: keys::u64_value(&value[..8])?,
        read: keys::u64_value(&value[8..])?,
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

/// Folds membership events into their conversations' records (with
/// [`Conversation::apply`], as the conversation actor does) and the `user_conv` index:
/// a member who joins gets an entry, one who leaves or is removed loses it. A
/// conversation without a record is left alone.
fn fold_memberships(
    inner: &Inner,
    batch: &mut OwnedWriteBatch,
    events: &[Arc<Event>],
) -> StoreResult<()> {
    let mut ids: Vec<ConversationId> = events.iter().map(|e| e.conversation).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let Some(mut conversation) = get_json::<Conversation>(&inner.conversations, id.as_bytes())?
        else {
            continue;
        };
        let before = conversation.participants.clone();
        let mut changed = false;
        for event in events.iter().filter(|e| e.conversation == id) {
            changed |= conversation.apply(event);
        }
        if !changed {
            continue;
        }
        let value = serde_json::to_vec(&conversation).map_err(StoreError::new)?;
        batch.insert(&inner.conversations, *id.as_bytes(), value);
        for user in &conversation.participants {
            if !before.contains(user) {
                batch.insert(
                    &inner.user_conv,
                    keys::id_pair(user.as_bytes(), id.as_bytes()),
                    b"",
                );
            }
        }
        for user in &before {
            if !conversation.has(*user) {
                batch.remove(
                    &inner.user_conv,
                    keys::id_pair(user.as_bytes(), id.as_bytes()),
                );
            }
        }
    }
    Ok(())
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

/// Runs blocking work (an fsync, an unbounded scan) off the async workers; inline on
/// the group commit's own thread, which exists to wait for it.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    if actors::store::may_block() {
        return work();
    }
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
                    expired.push((&inner.revoked_token, key));
                }
            }
            let _logins = lock(&inner.login_lock);
            for guard in inner.user_login.iter() {
                let (key, value) = guard.into_inner().map_err(StoreError::new)?;
                if !decode_json::<Login>(&value)?.is_live(now) {
                    expired.push((&inner.user_login, key));
                }
            }
            if expired.is_empty() {
                return Ok(0);
            }
            let count = expired.len();
            let mut batch = inner.db.batch();
            for (keyspace, key) in expired {
                batch.remove(keyspace, key);
            }
            batch.commit().map_err(StoreError::new)?;
            tracing::debug!(count, "expired revocations collected");
            Ok(count)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn set_password_hash(&self, user: UserId, password_hash: &str) -> StoreResult<bool> {
        let hash = password_hash.to_owned();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            // Under the email lock, which `delete_user` holds too: a deleted account is
            // never written back.
            let _account = lock(&inner.email_lock);
            let Some(mut record) = get_json::<UserRecord>(&inner.users, user.as_bytes())? else {
                return Ok(false);
            };
            record.password_hash = hash;
            let value = serde_json::to_vec(&record).map_err(StoreError::new)?;
            let mut batch = inner.db.batch();
            batch.insert(&inner.users, user.as_bytes(), value);
            commit(batch)?;
            Ok(true)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn delete_user(&self, user: UserId) -> StoreResult<()> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let id = user.as_bytes();
            let _account = lock(&inner.email_lock);
            let _contacts = lock(&inner.contact_lock);
            let _logins = lock(&inner.login_lock);
            let mut batch = inner.db.batch();
            if let Some(record) = get_json::<UserRecord>(&inner.users, id)? {
                let email = record.user.email.as_str();
                // Only this account's claim on the email: never free another's.
                let owner = inner.email_user.get(email).map_err(StoreError::new)?;
                if owner.as_deref() == Some(&id[..]) {
                    batch.remove(&inner.email_user, email.to_owned());
                }
                batch.remove(&inner.users, *id);
            }
            for contact in second_ids(&inner.user_contact, id)? {
                batch.remove(&inner.user_contact, keys::id_pair(id, &contact));
                batch.remove(&inner.user_contact, keys::id_pair(&contact, id));
            }
            for keyspace in [&inner.user_login, &inner.user_conv] {
                for guard in keyspace.prefix(id) {
                    batch.remove(keyspace, guard.key().map_err(StoreError::new)?);
                }
            }
            commit(batch)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %login.user))]
    async fn insert_login(&self, login: &Login) -> StoreResult<()> {
        let key = keys::id_pair(login.user.as_bytes(), login.id.as_bytes());
        let value = serde_json::to_vec(login).map_err(StoreError::new)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = inner.db.batch();
            batch.insert(&inner.user_login, key, value);
            commit(batch)
        })
        .await
    }

    async fn login(&self, user: UserId, id: LoginId) -> StoreResult<Option<Login>> {
        let key = keys::id_pair(user.as_bytes(), id.as_bytes());
        let login = get_json::<Login>(&self.inner.user_login, &key)?;
        Ok(login.filter(|l| l.is_live(Timestamp::now())))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn user_logins(&self, user: UserId) -> StoreResult<Vec<Login>> {
        let inner = Arc::clone(&self.inner);
        let now = Timestamp::now();
        blocking(move || {
            let mut logins = Vec::new();
            for guard in inner.user_login.prefix(user.as_bytes()) {
                let (_, value) = guard.into_inner().map_err(StoreError::new)?;
                let login: Login = decode_json(&value)?;
                if login.is_live(now) {
                    logins.push(login);
                }
            }
            Ok(logins)
        })
        .await
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
        self.update_login(user, id, move |login| {
            if login.refresh_hash != from {
                return false;
            }
            login.refresh_hash = to;
            login.expires_at = expires_at;
            login.last_seen_at = at;
            true
        })
        .await
    }

    async fn touch_login(&self, user: UserId, id: LoginId, at: Timestamp) -> StoreResult<()> {
        self.update_login(user, id, move |login| {
            login.last_seen_at = login.last_seen_at.max(at);
            true
        })
        .await
        .map(|_| ())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn delete_login(&self, user: UserId, id: LoginId) -> StoreResult<bool> {
        let key = keys::id_pair(user.as_bytes(), id.as_bytes());
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _logins = lock(&inner.login_lock);
            let Some(login) = get_json::<Login>(&inner.user_login, &key)? else {
                return Ok(false);
            };
            let mut batch = inner.db.batch();
            batch.remove(&inner.user_login, key);
            commit(batch)?;
            Ok(login.is_live(Timestamp::now()))
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
        // Amendments, edits and deletes in this batch, by target; almost every batch
        // has none.
        let modifiers: Vec<(usize, ConversationId, Seq)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.kind.target().map(|t| (i, e.conversation, t)))
            .collect();
        // Encode here, so the blocking task only writes (and reads the targets of
        // modifiers committed earlier).
        let mut rows = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let client_key = e
                .client_id
                .as_ref()
                .map(|c| keys::client_message(e.conversation, e.sender, c));
            // A message modified later in this same batch is written modified, by each
            // of its modifiers in seq order.
            let mut value = e.as_ref().clone();
            // An edit whose message is deleted later in this batch is written erased.
            if let EventKind::Edit { target, .. } = &e.kind
                && events[i + 1..].iter().any(|d| {
                    d.conversation == e.conversation
                        && matches!(d.kind, EventKind::Delete { target: t } if t == *target)
                })
            {
                value = value.erased_edit();
            }
            for (j, ..) in modifiers
                .iter()
                .filter(|(j, conv, target)| *j > i && *conv == e.conversation && *target == e.seq)
            {
                value = value.modified_by(&events[*j]);
            }
            rows.push((
                keys::message(e.conversation, e.seq),
                encode_event(&value)?,
                client_key,
                e.seq,
            ));
        }
        // Targets committed earlier: read, modify and rewrite in the blocking task, in
        // the same atomic batch as their modifiers.
        let earlier: Vec<(keys::MessageKey, Arc<Event>)> = modifiers
            .iter()
            .filter(|(j, conv, target)| {
                !events[..*j]
                    .iter()
                    .any(|e| e.conversation == *conv && e.seq == *target)
            })
            .map(|(j, conv, target)| (keys::message(*conv, *target), events[*j].clone()))
            .collect();
        // Membership changes, folded into their conversation's record below.
        let memberships: Vec<Arc<Event>> = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Membership(_)))
            .cloned()
            .collect();
        let batch_seqs: std::collections::HashSet<(ConversationId, Seq)> =
            events.iter().map(|e| (e.conversation, e.seq)).collect();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = OwnedWriteBatch::with_capacity(inner.db.clone(), 2 * rows.len());
            // In the same atomic batch as the events: the record and the `user_conv`
            // index never disagree with the stream.
            fold_memberships(&inner, &mut batch, &memberships)?;
            for (key, value, client_key, seq) in rows {
                batch.insert(&inner.conv_msg, key, value);
                if let Some(client_key) = client_key {
                    batch.insert(&inner.conv_client_msg, client_key, keys::u64_bytes(seq));
                }
            }
            // Modifiers of messages committed earlier, in seq order; a target modified
            // twice here is read once and rewritten once.
            let mut rewritten: Vec<(keys::MessageKey, Event)> = Vec::new();
            for (key, modifier) in earlier {
                let current = match rewritten.iter().position(|(k, _)| *k == key) {
                    Some(at) => rewritten.remove(at).1,
                    None => {
                        let Some(value) = inner.conv_msg.get(key).map_err(StoreError::new)? else {
                            continue;
                        };
                        decode_event(&key, &value)?
                    }
                };
                rewritten.push((key, current.modified_by(&modifier)));
            }
            for (key, target) in rewritten {
                let EventKind::Message(m) = &target.kind else {
                    continue;
                };
                batch.insert(&inner.conv_msg, key, encode_event(&target)?);
                if !m.deleted {
                    continue;
                }
                // Deleted: the text its edits carried goes too (edits in this batch
                // were written erased above).
                for &seq in &m.edits {
                    if batch_seqs.contains(&(target.conversation, seq)) {
                        continue;
                    }
                    let edit_key = keys::message(target.conversation, seq);
                    let Some(value) = inner.conv_msg.get(edit_key).map_err(StoreError::new)? else {
                        continue;
                    };
                    let edit = decode_event(&edit_key, &value)?;
                    batch.insert(
                        &inner.conv_msg,
                        edit_key,
                        encode_event(&edit.erased_edit())?,
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

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation, events = seqs.len()))]
    async fn erase_events(&self, conversation: ConversationId, seqs: &[Seq]) -> StoreResult<()> {
        let seqs = seqs.to_vec();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = inner.db.batch();
            for seq in seqs {
                let key = keys::message(conversation, seq);
                let Some(value) = inner.conv_msg.get(key).map_err(StoreError::new)? else {
                    continue;
                };
                let mut event = decode_event(&key, &value)?;
                event.kind = EventKind::Erased;
                // Overwritten in place: the old value is gone once the LSM tree compacts
                // it away, and no read ever returns it again.
                batch.insert(&inner.conv_msg, key, encode_event(&event)?);
            }
            commit(batch)
        })
        .await
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

    async fn receipt(&self, conversation: ConversationId, user: UserId) -> StoreResult<Receipt> {
        let key = keys::id_pair(conversation.as_bytes(), user.as_bytes());
        match self.inner.conv_receipt.get(key).map_err(StoreError::new)? {
            None => Ok(Receipt::default()),
            Some(value) => decode_receipt(&value),
        }
    }

    async fn receipts(&self, conversation: ConversationId) -> StoreResult<Vec<(UserId, Receipt)>> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            inner
                .conv_receipt
                .prefix(conversation.as_bytes())
                .map(|guard| {
                    let (key, value) = guard.into_inner().map_err(StoreError::new)?;
                    let user = UserId::from_bytes(keys::second_id(&key)?);
                    Ok((user, decode_receipt(&value)?))
                })
                .collect()
        })
        .await
    }

    async fn advance_receipt(
        &self,
        conversation: ConversationId,
        user: UserId,
        receipt: Receipt,
    ) -> StoreResult<()> {
        let key = keys::id_pair(conversation.as_bytes(), user.as_bytes());
        let _guard = lock(&self.inner.receipt_lock);
        let stored = match self.inner.conv_receipt.get(key).map_err(StoreError::new)? {
            None => Receipt::default(),
            Some(value) => decode_receipt(&value)?,
        };
        let merged = stored.merged(receipt);
        if merged == stored {
            return Ok(());
        }
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&keys::u64_bytes(merged.delivered));
        value[8..].copy_from_slice(&keys::u64_bytes(merged.read));
        // No fsync (see the module docs): a memtable insert, fast enough under the lock.
        self.inner
            .conv_receipt
            .insert(key, value)
            .map_err(StoreError::new)
    }

    async fn presence(&self, user: UserId) -> StoreResult<PresenceRecord> {
        match self
            .inner
            .user_presence
            .get(user.as_bytes())
            .map_err(StoreError::new)?
        {
            None => Ok(PresenceRecord::default()),
            Some(value) => decode_presence(&value),
        }
    }

    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()> {
        self.update_presence(user, |p| p.last_seen = Some(at))
    }

    async fn set_hide_last_seen(&self, user: UserId, hide: bool) -> StoreResult<()> {
        self.update_presence(user, |p| p.hide_last_seen = hide)
    }

    async fn block_user(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> StoreResult<()> {
        let key = keys::id_pair(blocker.as_bytes(), blocked.as_bytes());
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = inner.db.batch();
            batch.insert(&inner.user_block, key, keys::u64_bytes(at.as_millis()));
            commit(batch)
        })
        .await
    }

    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<()> {
        let key = keys::id_pair(blocker.as_bytes(), blocked.as_bytes());
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut batch = inner.db.batch();
            batch.remove(&inner.user_block, key);
            commit(batch)
        })
        .await
    }

    async fn blocked_users(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        let inner = Arc::clone(&self.inner);
        let ids = blocking(move || second_ids(&inner.user_block, blocker.as_bytes())).await?;
        Ok(ids.into_iter().map(UserId::from_bytes).collect())
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
