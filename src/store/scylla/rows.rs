//! Rows to domain types and back. Decoders check what they read and return a
//! [`StoreError`] for anything malformed: stored data never causes a panic.
//!
//! No column of `events` is ever null: a null written is a tombstone (the lesson of
//! Discord's message store), and an insert that writes every column replaces a row
//! whole, so an event written again at a seq whose earlier write was in doubt never
//! keeps a stale column. Absent values are written as `''`, the nil UUID or 0 instead;
//! the `kind` column says which columns mean something.
//!
//! The `membership` column holds an event's JSON detail: a membership change's, or a
//! message's (or an amendment's) type and call, `{"type": "video", "call":
//! {"started_at": ms, "ended_at": ms}}`; `''` for a text message, so rows written before
//! calls existed read back unchanged. An edited message's detail has `edited_at`, a
//! deleted one's `deleted: true` (its body is erased: `''`). An amendment is kind `amend`, its target in
//! `target` and its whole new content in `body`, `receiver_id` and `membership`.

use scylla::deserialize::row::ColumnIterator;
use scylla::deserialize::value::DeserializeValue;
use scylla::response::query_result::QueryResult;
use scylla::value::CqlTimestamp;
use uuid::Uuid;

use actors::StoreError;
use actors::domain::{
    CallInfo, ClientId, ContentType, Conversation, ConversationId, DeviceName, DisplayName, Email,
    Event, EventId, EventKind, Login, LoginId, MembershipChange, MessageBody, MessageContent,
    RefreshHash, Seq, Timestamp, User, UserId, UserRecord,
};
use serde::{Deserialize, Serialize};

use super::buckets;

/// Whether a conditional statement (`... IF NOT EXISTS`) applied. Only `[applied]` is
/// read: Cassandra returns the existing row beside it when the condition failed,
/// ScyllaDB always returns the row's columns, possibly null, so nothing else is reliable.
pub(crate) fn applied(result: QueryResult) -> Result<bool, StoreError> {
    let context = |e: &dyn std::fmt::Display| {
        StoreError::msg(format!("reading a conditional write's [applied]: {e}"))
    };
    let rows = result.into_rows_result().map_err(|e| context(&e))?;
    let columns = rows
        .first_row::<ColumnIterator>()
        .map_err(|e| context(&e))?;
    for column in columns {
        let column = column.map_err(|e| context(&e))?;
        if column.spec.name() == "[applied]" {
            return <bool as DeserializeValue>::deserialize(column.spec.typ(), column.slice)
                .map_err(|e| context(&e));
        }
    }
    Err(StoreError::msg(
        "a conditional write's result had no [applied] column",
    ))
}

/// A timestamp as CQL holds it.
pub(super) fn timestamp(t: Timestamp) -> CqlTimestamp {
    CqlTimestamp(i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

fn from_timestamp(t: CqlTimestamp, what: &str) -> Result<Timestamp, StoreError> {
    u64::try_from(t.0)
        .map(Timestamp::from_millis)
        .map_err(|_| StoreError::msg(format!("corrupt {what}: negative timestamp {}", t.0)))
}

/// A seq as CQL holds it; a seq beyond `bigint` cannot be stored.
pub(super) fn seq(seq: Seq) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::msg(format!("seq {seq} is beyond what is stored")))
}

fn from_seq(raw: i64, what: &str) -> Result<Seq, StoreError> {
    u64::try_from(raw)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| StoreError::msg(format!("corrupt {what}: seq {raw}")))
}

/// A message's type and call as stored (see the module docs); text is their absence.
#[derive(Default, Serialize, Deserialize)]
struct Detail {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    content_type: Option<StoredType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call: Option<StoredCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edited_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    edits: Vec<Seq>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredType {
    Video,
    Audio,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
struct StoredCall {
    started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_at: Option<Timestamp>,
}

/// The detail column of a message's content: `''` for text without a call.
fn content_detail(content: &MessageContent) -> Result<String, StoreError> {
    let detail = Detail {
        content_type: match content.content_type {
            ContentType::Text => None,
            ContentType::Video => Some(StoredType::Video),
            ContentType::Audio => Some(StoredType::Audio),
        },
        call: content.call.map(|c| StoredCall {
            started_at: c.started_at,
            ended_at: c.ended_at,
        }),
        edited_at: content.edited_at,
        edits: content.edits.clone(),
        deleted: content.deleted,
    };
    if detail.content_type.is_none()
        && detail.call.is_none()
        && detail.edited_at.is_none()
        && detail.edits.is_empty()
        && !detail.deleted
    {
        return Ok(String::new());
    }
    serde_json::to_string(&detail).map_err(|e| StoreError::context("encoding a message's type", e))
}

/// A message's content from its columns.
fn content(body: String, receiver: Uuid, detail: &str) -> Result<MessageContent, String> {
    let detail: Detail = match detail {
        "" => Detail::default(),
        raw => serde_json::from_str(raw).map_err(|e| format!("detail {e}"))?,
    };
    Ok(MessageContent {
        body: MessageBody::from_stored(body),
        receiver: (!receiver.is_nil()).then(|| UserId::from(receiver)),
        content_type: match detail.content_type {
            None => ContentType::Text,
            Some(StoredType::Video) => ContentType::Video,
            Some(StoredType::Audio) => ContentType::Audio,
        },
        call: detail.call.map(|c| CallInfo {
            started_at: c.started_at,
            ended_at: c.ended_at,
        }),
        edited_at: detail.edited_at,
        edits: detail.edits,
        deleted: detail.deleted,
    })
}

/// The bound values of `insert_event`, in its column order.
pub(super) type EventValues<'a> = (
    Uuid,
    i64,
    i64,
    Uuid,
    Uuid,
    &'a str,
    CqlTimestamp,
    &'static str,
    &'a str,
    Uuid,
    i64,
    String,
);

/// An event as the values of one `events` row, every column set.
pub(super) fn event_values(event: &Event, bucket_size: u64) -> Result<EventValues<'_>, StoreError> {
    let (kind, body, receiver, target, membership) = match &event.kind {
        EventKind::Message(m) => (
            "message",
            m.body.as_str(),
            m.receiver.map_or(Uuid::nil(), |r| r.as_uuid()),
            0,
            content_detail(m)?,
        ),
        EventKind::Amend { target, content } => (
            "amend",
            content.body.as_str(),
            content.receiver.map_or(Uuid::nil(), |r| r.as_uuid()),
            seq(*target)?,
            content_detail(content)?,
        ),
        EventKind::Edit { target, content } => (
            "edit",
            content.as_str(),
            Uuid::nil(),
            seq(*target)?,
            String::new(),
        ),
        EventKind::Delete { target } => ("delete", "", Uuid::nil(), seq(*target)?, String::new()),
        EventKind::Erased => ("erased", "", Uuid::nil(), 0, String::new()),
        EventKind::Membership(change) => (
            "membership",
            "",
            Uuid::nil(),
            0,
            serde_json::to_string(change)
                .map_err(|e| StoreError::context("encoding a membership change", e))?,
        ),
    };
    Ok((
        event.conversation.as_uuid(),
        seq(buckets::of(event.seq, bucket_size))?,
        seq(event.seq)?,
        event.id.as_uuid(),
        event.sender.as_uuid(),
        event.client_id.as_ref().map_or("", |c| c.as_str()),
        timestamp(event.at),
        kind,
        body,
        receiver,
        target,
        membership,
    ))
}

/// The columns `events` reads select, in order (the conversation is the query's).
pub(super) const EVENT_COLUMNS: &str =
    "seq, event_id, sender_id, client_id, at, kind, body, receiver_id, target, membership";

/// One row of [`EVENT_COLUMNS`] (owned: the body moves into the event as it is).
pub(super) type EventRow = (
    i64,
    Uuid,
    Uuid,
    String,
    CqlTimestamp,
    String,
    String,
    Uuid,
    i64,
    String,
);

/// An event read back.
pub(super) fn event(conversation: ConversationId, row: EventRow) -> Result<Event, StoreError> {
    let (raw_seq, id, sender, client_id, at, kind, body, receiver, target, membership) = row;
    let seq = from_seq(raw_seq, "event")?;
    let corrupt =
        |what: &str| StoreError::msg(format!("corrupt event {conversation}/{seq}: {what}"));
    let client_id = match client_id.as_str() {
        "" => None,
        raw => Some(ClientId::from_stored(raw).map_err(|e| corrupt(&format!("client id {e}")))?),
    };
    let target = || from_seq(target, "event target").map_err(|_| corrupt("target"));
    let kind = match kind.as_str() {
        "message" => {
            EventKind::Message(content(body, receiver, &membership).map_err(|e| corrupt(&e))?)
        }
        "amend" => EventKind::Amend {
            target: target()?,
            content: content(body, receiver, &membership).map_err(|e| corrupt(&e))?,
        },
        "edit" => EventKind::Edit {
            target: target()?,
            content: MessageBody::from_stored(body),
        },
        "delete" => EventKind::Delete { target: target()? },
        "erased" => EventKind::Erased,
        "membership" => EventKind::Membership(
            serde_json::from_str::<MembershipChange>(&membership)
                .map_err(|e| corrupt(&format!("membership {e}")))?,
        ),
        other => return Err(corrupt(&format!("unknown kind {other:?}"))),
    };
    Ok(Event {
        id: EventId::from(id),
        conversation,
        seq,
        sender: UserId::from(sender),
        client_id,
        at: from_timestamp(at, "event")?,
        kind,
    })
}

/// The bound values of `insert_user`.
pub(super) fn user_values(record: &UserRecord) -> (Uuid, &str, &str, &str, CqlTimestamp) {
    (
        record.user.id.as_uuid(),
        record.user.name.as_str(),
        record.user.email.as_str(),
        record.password_hash.as_str(),
        timestamp(record.created_at),
    )
}

/// One row of `SELECT name, email, password_hash, created_at FROM users`.
pub(super) type UserRow = (String, String, String, CqlTimestamp);

/// An account read back; its fields are parsed again, as at the edge.
pub(super) fn user(
    id: UserId,
    (name, email, hash, created_at): UserRow,
) -> Result<UserRecord, StoreError> {
    let corrupt = |what: &str| StoreError::msg(format!("corrupt account {id}: {what}"));
    Ok(UserRecord {
        user: User {
            id,
            name: DisplayName::from_stored(&name).map_err(|e| corrupt(&format!("name {e}")))?,
            email: Email::parse(&email).map_err(|e| corrupt(&format!("email {e}")))?,
        },
        password_hash: hash,
        created_at: from_timestamp(created_at, "account")?,
    })
}

/// The bound values of `insert_login`, in its column order.
pub(super) type LoginValues = (
    Uuid,
    Uuid,
    String,
    CqlTimestamp,
    CqlTimestamp,
    Vec<u8>,
    CqlTimestamp,
);

/// A login as the values of one `user_logins` row.
pub(super) fn login_values(login: &Login) -> LoginValues {
    (
        login.user.as_uuid(),
        login.id.as_uuid(),
        login.device.as_str().to_owned(),
        timestamp(login.created_at),
        timestamp(login.last_seen_at),
        login.refresh_hash.0.to_vec(),
        timestamp(login.expires_at),
    )
}

/// The columns login reads select, in order (the user is the query's).
pub(super) const LOGIN_COLUMNS: &str =
    "login_id, device, created_at, last_seen_at, refresh_hash, expires_at";

/// One row of [`LOGIN_COLUMNS`]. Every column but the key may be null: a `touch` racing
/// a sign-out can leave a row of only `last_seen_at`, which reads as no login.
pub(super) type LoginRow = (
    Uuid,
    Option<String>,
    Option<CqlTimestamp>,
    Option<CqlTimestamp>,
    Option<Vec<u8>>,
    Option<CqlTimestamp>,
);

/// A login read back; `None` for the remains of one that was signed out.
pub(super) fn login(user: UserId, row: LoginRow) -> Result<Option<Login>, StoreError> {
    let (id, device, created_at, last_seen_at, hash, expires_at) = row;
    let (Some(device), Some(created_at), Some(hash), Some(expires_at)) =
        (device, created_at, hash, expires_at)
    else {
        return Ok(None);
    };
    let id = LoginId::from(id);
    let corrupt = |what: &str| StoreError::msg(format!("corrupt login {user}/{id}: {what}"));
    let created_at = from_timestamp(created_at, "login")?;
    Ok(Some(Login {
        id,
        user,
        device: DeviceName::from_stored(&device).map_err(|e| corrupt(&format!("device {e}")))?,
        created_at,
        last_seen_at: last_seen_at
            .map(|t| from_timestamp(t, "login"))
            .transpose()?
            .unwrap_or(created_at),
        refresh_hash: RefreshHash(
            hash.try_into()
                .map_err(|_| corrupt("refresh hash is not 32 bytes"))?,
        ),
        expires_at: from_timestamp(expires_at, "login")?,
    }))
}

/// One row of `SELECT participants, created_at FROM conversations`.
pub(super) type ConversationRow = (Vec<Uuid>, CqlTimestamp);

/// A conversation read back.
/// A conversation read back, with its group record (JSON) when it is a group.
pub(super) fn conversation(
    id: ConversationId,
    (participants, created_at): ConversationRow,
    group: Option<String>,
) -> Result<Conversation, StoreError> {
    let group = group
        .map(|info| serde_json::from_str(&info))
        .transpose()
        .map_err(|e| StoreError::context(format!("decoding group {id}"), e))?;
    Ok(Conversation {
        id,
        participants: participants.into_iter().map(UserId::from).collect(),
        created_at: from_timestamp(created_at, "conversation")?,
        group,
    })
}

#[cfg(test)]
mod tests {
    use actors::domain::CallType;

    use super::*;

    fn sample(kind: EventKind) -> Event {
        Event {
            id: EventId::generate(),
            conversation: ConversationId::from(Uuid::now_v7()),
            seq: 1025,
            sender: UserId::generate(),
            client_id: Some(ClientId::parse("c-1").unwrap()),
            at: Timestamp::from_millis(1_700_000_000_000),
            kind,
        }
    }

    /// Encodes and decodes through the row shapes, as a write then a read would.
    fn round_trip(event: &Event) -> Event {
        let v = event_values(event, 1024).unwrap();
        assert_eq!(v.1, 1, "seq 1025 is in bucket 1 of 1024");
        let row: EventRow = (
            v.2,
            v.3,
            v.4,
            v.5.to_owned(),
            v.6,
            v.7.to_owned(),
            v.8.to_owned(),
            v.9,
            v.10,
            v.11,
        );
        super::event(event.conversation, row).unwrap()
    }

    #[test]
    fn every_kind_of_event_round_trips_with_no_null_column() {
        let body = MessageBody::parse("hi", 100).unwrap();
        for kind in [
            EventKind::Message(MessageContent::text(body.clone())),
            EventKind::Message(MessageContent {
                receiver: Some(UserId::generate()),
                ..MessageContent::text(body.clone())
            }),
            EventKind::Message(MessageContent::call(
                body.clone(),
                CallType::Audio,
                Timestamp::from_millis(1_700_000_000_000),
            )),
            EventKind::Amend {
                target: 2,
                content: MessageContent {
                    receiver: Some(UserId::generate()),
                    call: Some(CallInfo {
                        started_at: Timestamp::from_millis(1_700_000_000_000),
                        ended_at: Some(Timestamp::from_millis(1_700_000_009_000)),
                    }),
                    ..MessageContent::call(
                        body.clone(),
                        CallType::Video,
                        Timestamp::from_millis(1_700_000_000_000),
                    )
                },
            },
            EventKind::Edit {
                target: 3,
                content: body,
            },
            EventKind::Delete { target: 4 },
            EventKind::Erased,
            EventKind::Membership(MembershipChange::Renamed {
                name: "x'); --".into(),
            }),
        ] {
            let mut event = sample(kind);
            assert_eq!(round_trip(&event), event);
            event.client_id = None;
            assert_eq!(round_trip(&event), event);
        }
    }

    #[test]
    fn malformed_rows_are_errors_not_panics() {
        let conv = ConversationId::from(Uuid::now_v7());
        let at = CqlTimestamp(1);
        let row = |seq, client_id: &str, at, kind: &str, membership: &str| -> EventRow {
            let (id, nil) = (Uuid::nil(), Uuid::nil());
            let target = 0;
            (
                seq,
                id,
                id,
                client_id.into(),
                at,
                kind.into(),
                "b".into(),
                nil,
                target,
                membership.into(),
            )
        };
        assert!(event(conv, row(1, "", at, "message", "")).is_ok());
        for bad in [
            row(0, "", at, "message", ""),
            row(1, "a\nb", at, "message", ""),
            row(1, "", at, "poke", ""),
            row(1, "", at, "edit", ""),
            row(1, "", at, "membership", "{"),
            row(1, "", at, "message", "{"),
            row(1, "", at, "amend", ""),
            row(1, "", CqlTimestamp(-5), "message", ""),
        ] {
            let shown = format!("{bad:?}");
            assert!(event(conv, bad).is_err(), "{shown} was accepted");
        }
        let user_row: UserRow = ("".into(), "ada@example.com".into(), "h".into(), at);
        assert!(user(UserId::generate(), user_row).is_err());
        assert!(seq(u64::MAX).is_err());
    }
}
