//! The store conformance suite: what every [`Store`] must do, whatever is behind it.
//!
//! Each check is a plain `async fn check_*(store: &dyn Store)`. The [`conformance!`] list
//! at the bottom turns each into one test on a fresh [`FjallStore`], one test on a
//! [`ScyllaStore`], and [`run_all`], which runs every check in turn against one store:
//! checks use fresh ids and emails, so they do not disturb each other and can share a
//! database.
//!
//! The ScyllaDB tests run when `SCYLLA_URI` names a live CQL node (`.ci/run` starts one;
//! see scripts/README.md), and otherwise return at once, with one line saying so. They
//! share one fresh keyspace per run, created with 16 seqs per bucket and pages of 5
//! rows, so that every history check crosses partitions and pages; one more run of
//! every check uses a keyspace with the default layout.

use std::collections::BTreeSet;
use std::sync::Arc;

use actors::Store;
use actors::domain::{
    CallType, ClientId, ContentType, Conversation, ConversationId, DeviceName, DisplayName, Email,
    Event, EventId, EventKind, Login, LoginId, MembershipChange, MessageBody, MessageContent,
    PresenceRecord, Receipt, RefreshHash, Role, Seq, Timestamp, User, UserId, UserRecord,
};
use actors::store::{HistoryRange, InsertUserError};
use parley::store::{FjallStore, ScyllaConfig, ScyllaStore};

#[path = "support/live_cql.rs"]
mod live_cql;

// ---- Helpers --------------------------------------------------------------------------

/// A fresh store in a temporary directory (kept alive by the returned guard).
fn fjall_store() -> (tempfile::TempDir, FjallStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FjallStore::open(&dir.path().join("store")).expect("open store");
    (dir, store)
}

/// An email no other check (or earlier run against a shared database) uses.
fn unique_email(local: &str) -> Email {
    let nonce = UserId::generate().as_uuid().simple().to_string();
    Email::parse(&format!("{local}.{nonce}@Example.COM")).expect("valid email")
}

fn record(name: &str, email: &Email) -> UserRecord {
    UserRecord {
        user: User {
            id: UserId::generate(),
            name: DisplayName::parse(name).expect("valid name"),
            email: email.clone(),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        created_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

fn message(conversation: ConversationId, seq: Seq, from: UserId, body: &str) -> Event {
    event(
        conversation,
        seq,
        from,
        EventKind::Message(MessageContent::text(
            MessageBody::parse(body, 100_000).expect("valid body"),
        )),
    )
}

fn event(conversation: ConversationId, seq: Seq, sender: UserId, kind: EventKind) -> Event {
    Event {
        id: EventId::generate(),
        conversation,
        seq,
        sender,
        client_id: None,
        at: Timestamp::from_millis(1_700_000_000_000 + seq),
        kind,
    }
}

/// Appends events through the store's group-commit entry point.
async fn append(store: &dyn Store, events: &[Event]) -> actors::store::StoreResult<()> {
    let shared: Vec<Arc<Event>> = events.iter().cloned().map(Arc::new).collect();
    store.append_events(&shared).await
}

fn text_of(e: &Event) -> &str {
    e.text().map_or("", |t| t.as_str())
}

/// A client id as a store may hold it: ids stored before they were held to printable
/// ASCII may be any 64 bytes without controls, and must still round-trip.
fn with_client_id(mut m: Event, client_id: &str) -> Event {
    m.client_id = Some(ClientId::from_stored(client_id).expect("valid client id"));
    m
}

/// Two conversation ids that are neighbours bytewise (…00 and …01), fresh per call, so
/// a range that spills over its conversation's prefix shows up.
fn adjacent_conversations() -> (ConversationId, ConversationId) {
    let mut bytes = *UserId::generate().as_bytes();
    bytes[15] = 0;
    let a = ConversationId::from_bytes(bytes);
    bytes[15] = 1;
    (a, ConversationId::from_bytes(bytes))
}

fn range(after: Option<Seq>, before: Option<Seq>, limit: usize, from_newest: bool) -> HistoryRange {
    HistoryRange {
        after,
        before,
        limit,
        from_newest,
    }
}

async fn seqs(store: &dyn Store, conversation: ConversationId, r: HistoryRange) -> Vec<Seq> {
    let messages = store.events(conversation, r).await.expect("messages");
    for m in &messages {
        assert_eq!(
            m.conversation, conversation,
            "{r:?} leaked a message of another conversation"
        );
    }
    messages.iter().map(|m| m.seq).collect()
}

/// A login of `user` that is live for another day, with a refresh hash made of `seed`.
fn login(user: UserId, device: &str, seed: u8) -> Login {
    let now = Timestamp::now().as_millis();
    Login {
        id: LoginId::generate(),
        user,
        device: DeviceName::parse(device).expect("valid device"),
        created_at: Timestamp::from_millis(now - 1000),
        last_seen_at: Timestamp::from_millis(now - 1000),
        refresh_hash: RefreshHash([seed; 32]),
        expires_at: Timestamp::from_millis(now + 86_400_000),
    }
}

fn in_a_day() -> Timestamp {
    Timestamp::from_millis(Timestamp::now().as_millis() + 86_400_000)
}

fn sorted<T: Ord>(v: Vec<T>) -> Vec<T> {
    let mut v = v;
    v.sort();
    v
}

// ---- Checks ---------------------------------------------------------------------------

/// 1. Accounts are found by id and by normalised email; unknown ones are not.
async fn check_accounts_are_found_by_id_and_by_normalised_email(store: &dyn Store) {
    let email = unique_email("Ada");
    assert!(email.as_str().chars().all(|c| !c.is_uppercase()));
    let ada = record("Ada Lovelace", &email);
    store.insert_user(&ada).await.expect("insert");

    assert_eq!(store.user(ada.user.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(
        store.user_by_email(&email).await.unwrap(),
        Some(ada.clone())
    );
    let shouted = Email::parse(&format!("  {}  ", email.as_str().to_uppercase())).unwrap();
    assert_eq!(
        store.user_by_email(&shouted).await.unwrap(),
        Some(ada.clone())
    );

    assert_eq!(store.user(UserId::generate()).await.unwrap(), None);
    assert_eq!(
        store.user_by_email(&unique_email("nobody")).await.unwrap(),
        None
    );
}

/// 2. One account per email, even when many sign up at once.
async fn check_one_account_per_email_even_under_concurrency(store: &dyn Store) {
    let email = unique_email("grace");
    store
        .insert_user(&record("Grace", &email))
        .await
        .expect("first insert");
    let again = record("Grace Again", &email);
    assert!(matches!(
        store.insert_user(&again).await,
        Err(InsertUserError::EmailTaken)
    ));
    assert_eq!(
        store.user(again.user.id).await.unwrap(),
        None,
        "the loser was stored"
    );

    // 50 sign-ups of one fresh email in flight at once.
    let email = unique_email("race");
    let records: Vec<UserRecord> = (0..50)
        .map(|i| record(&format!("Racer {i}"), &email))
        .collect();
    let results =
        futures_util::future::join_all(records.iter().map(|r| store.insert_user(r))).await;
    let winners: Vec<&UserRecord> = records
        .iter()
        .zip(&results)
        .filter_map(|(r, result)| match result {
            Ok(()) => Some(r),
            Err(InsertUserError::EmailTaken) => None,
            Err(e) => panic!("insert failed: {e}"),
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent insert must win");
    assert_eq!(
        store.user_by_email(&email).await.unwrap().as_ref(),
        Some(winners[0])
    );
    for r in &records {
        let stored = store.user(r.user.id).await.unwrap();
        assert_eq!(stored.is_some(), r.user.id == winners[0].user.id);
    }
}

/// 3. Contacts are mutual and added once.
async fn check_contacts_are_mutual_and_added_once(store: &dyn Store) {
    let (a, b, c) = (UserId::generate(), UserId::generate(), UserId::generate());
    let at = Timestamp::from_millis(1_700_000_000_000);
    assert!(store.contacts(a).await.unwrap().is_empty());

    assert!(store.add_contacts(a, b, at).await.unwrap());
    assert!(
        !store.add_contacts(a, b, at).await.unwrap(),
        "second add reported new"
    );
    assert!(
        !store.add_contacts(b, a, at).await.unwrap(),
        "reverse add reported new"
    );
    assert!(store.add_contacts(a, c, at).await.unwrap());

    assert_eq!(sorted(store.contacts(a).await.unwrap()), sorted(vec![b, c]));
    assert_eq!(store.contacts(b).await.unwrap(), vec![a]);
    assert_eq!(store.contacts(c).await.unwrap(), vec![a]);
    assert!(store.contacts(UserId::generate()).await.unwrap().is_empty());

    // Concurrent adds of one pair: exactly one makes them contacts.
    let (d, e) = (UserId::generate(), UserId::generate());
    let adds = (0..20).map(|i| {
        if i % 2 == 0 {
            store.add_contacts(d, e, at)
        } else {
            store.add_contacts(e, d, at)
        }
    });
    let results = futures_util::future::join_all(adds).await;
    let new = results
        .into_iter()
        .map(|r| r.expect("add"))
        .filter(|&n| n)
        .count();
    assert_eq!(new, 1);
    assert_eq!(store.contacts(d).await.unwrap(), vec![e]);
    assert_eq!(store.contacts(e).await.unwrap(), vec![d]);
}

/// 4. Revoked tokens are remembered; others are not revoked.
async fn check_revoked_tokens_are_remembered(store: &dyn Store) {
    let jti = format!("jti-{}", UserId::generate());
    let other = format!("jti-{}", UserId::generate());
    assert!(!store.is_token_revoked(&jti).await.unwrap());
    store
        .revoke_token(&jti, Timestamp::from_millis(1_800_000_000_000))
        .await
        .unwrap();
    assert!(store.is_token_revoked(&jti).await.unwrap());
    assert!(!store.is_token_revoked(&other).await.unwrap());
    // A prefix of a revoked id is a different id.
    assert!(!store.is_token_revoked(&jti[..jti.len() - 1]).await.unwrap());
    // Revoking twice is harmless.
    store
        .revoke_token(&jti, Timestamp::from_millis(1_800_000_000_000))
        .await
        .unwrap();
    assert!(store.is_token_revoked(&jti).await.unwrap());
}

/// 4b. A revocation lasts until its expiry and no longer: one already expired is not
///     remembered, one that expires while stored is forgotten (by a TTL, or on read and
///     by the sweep).
async fn check_revocations_expire(store: &dyn Store) {
    let now = Timestamp::now().as_millis();
    let old = format!("jti-{}", UserId::generate());
    store
        .revoke_token(&old, Timestamp::from_millis(now - 1))
        .await
        .unwrap();
    assert!(!store.is_token_revoked(&old).await.unwrap());

    let soon = format!("jti-{}", UserId::generate());
    let expires_at = now + 1_500;
    store
        .revoke_token(&soon, Timestamp::from_millis(expires_at))
        .await
        .unwrap();
    assert!(store.is_token_revoked(&soon).await.unwrap());
    // A TTL counts whole seconds, rounded up: give it one more.
    let wait = (expires_at + 1_200).saturating_sub(Timestamp::now().as_millis());
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    assert!(!store.is_token_revoked(&soon).await.unwrap());
    store
        .collect_expired(Timestamp::now())
        .await
        .expect("collecting expired records");
    assert!(!store.is_token_revoked(&soon).await.unwrap());
}

/// 5. Conversations round-trip, are indexed under their participants only, and
///    inserting one again is harmless.
async fn check_conversations_are_indexed_under_their_participants(store: &dyn Store) {
    let (a, b, outsider) = (UserId::generate(), UserId::generate(), UserId::generate());
    let direct = Conversation::direct(a, b, Timestamp::from_millis(1_700_000_000_000));
    assert_eq!(store.conversation(direct.id).await.unwrap(), None);

    store.insert_conversation(&direct).await.unwrap();
    store.insert_conversation(&direct).await.unwrap();
    assert_eq!(
        store.conversation(direct.id).await.unwrap(),
        Some(direct.clone())
    );
    assert_eq!(store.user_conversations(a).await.unwrap(), vec![direct.id]);
    assert_eq!(store.user_conversations(b).await.unwrap(), vec![direct.id]);
    assert!(store.user_conversations(outsider).await.unwrap().is_empty());

    let other = Conversation::direct(a, outsider, Timestamp::from_millis(1_700_000_000_001));
    store.insert_conversation(&other).await.unwrap();
    assert_eq!(
        sorted(store.user_conversations(a).await.unwrap()),
        sorted(vec![direct.id, other.id])
    );
    assert_eq!(store.user_conversations(b).await.unwrap(), vec![direct.id]);
    assert_eq!(
        store.user_conversations(outsider).await.unwrap(),
        vec![other.id]
    );
    assert_eq!(
        store
            .conversation(ConversationId::direct(b, outsider))
            .await
            .unwrap(),
        None
    );
}

/// A group's record (name, roles, join points) reads back whole, and its membership
/// events, appended through the group commit, are folded into the record and the
/// index in that commit: the added list it, the removed and the leaver no longer do,
/// and the same events appended again change nothing.
async fn check_membership_events_are_folded_into_the_group_and_its_index(store: &dyn Store) {
    let (ada, bob, cy, dee) = (
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
    );
    let id = ConversationId::generate();
    let created_at = Timestamp::from_millis(1_700_000_000_000);
    let group = Conversation::group(id, ada, &[bob], "Tea \"club\" ☕".into(), created_at);
    store.insert_conversation(&group).await.unwrap();
    assert_eq!(store.conversation(id).await.unwrap(), Some(group.clone()));
    assert_eq!(store.user_conversations(bob).await.unwrap(), vec![id]);

    let change = |seq, sender, change| event(id, seq, sender, EventKind::Membership(change));
    let events = [
        change(1, ada, MembershipChange::Created { name: "Tea".into() }),
        message(id, 2, bob, "hello"),
        change(
            3,
            ada,
            MembershipChange::Added {
                users: vec![cy, dee],
            },
        ),
        change(
            4,
            ada,
            MembershipChange::RoleChanged {
                user: cy,
                role: Role::Admin,
            },
        ),
    ];
    // Two commits: the fold reads what the first one wrote.
    append(store, &events[..2]).await.unwrap();
    append(store, &events[2..]).await.unwrap();
    let later = vec![
        change(5, cy, MembershipChange::Removed { users: vec![bob] }),
        change(6, dee, MembershipChange::Left),
        change(
            7,
            cy,
            MembershipChange::Renamed {
                name: "Coffee".into(),
            },
        ),
    ];
    append(store, &later).await.unwrap();
    // A retried commit folds nothing twice.
    append(store, &later).await.unwrap();

    let mut expected = group.clone();
    for e in events.iter().chain(&later) {
        expected.apply(e);
    }
    let back = store.conversation(id).await.unwrap().expect("the group");
    assert_eq!(back, expected);
    assert_eq!(back.participants, sorted(vec![ada, cy]));
    let g = back.group.as_ref().unwrap();
    assert_eq!(g.name, "Coffee");
    assert_eq!(g.as_of, 7);
    assert_eq!(back.visible_from(cy), 3);
    assert_eq!(back.role(cy), Some(Role::Admin));
    assert_eq!(store.user_conversations(ada).await.unwrap(), vec![id]);
    assert_eq!(store.user_conversations(cy).await.unwrap(), vec![id]);
    assert!(store.user_conversations(bob).await.unwrap().is_empty());
    assert!(store.user_conversations(dee).await.unwrap().is_empty());
    let all = store
        .events(id, range(None, None, 100, false))
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
}

/// Receipt marks only move forward, whatever order raises arrive in; reading implies
/// receiving; a conversation lists exactly the members with marks.
async fn check_receipts_are_monotonic_high_water_marks(store: &dyn Store) {
    let (conv, other) = adjacent_conversations();
    let (ada, bob) = (UserId::generate(), UserId::generate());
    assert_eq!(store.receipt(conv, ada).await.unwrap(), Receipt::default());
    assert!(store.receipts(conv).await.unwrap().is_empty());
    let mark = |delivered, read| Receipt { delivered, read };
    store.advance_receipt(conv, ada, mark(5, 0)).await.unwrap();
    store.advance_receipt(conv, ada, mark(3, 2)).await.unwrap();
    assert_eq!(store.receipt(conv, ada).await.unwrap(), mark(5, 2));
    store.advance_receipt(conv, ada, mark(0, 9)).await.unwrap();
    assert_eq!(store.receipt(conv, ada).await.unwrap(), mark(9, 9));
    // Concurrent raises, landing in any order: the highest wins.
    let raises: Vec<_> = (1..=20u64)
        .rev()
        .map(|seq| store.advance_receipt(conv, bob, mark(seq, seq / 2)))
        .collect();
    for r in futures_util::future::join_all(raises).await {
        r.unwrap();
    }
    assert_eq!(store.receipt(conv, bob).await.unwrap(), mark(20, 10));
    let mut all = store.receipts(conv).await.unwrap();
    all.sort_by_key(|(u, _)| *u);
    let mut expected = vec![(ada, mark(9, 9)), (bob, mark(20, 10))];
    expected.sort_by_key(|(u, _)| *u);
    assert_eq!(all, expected);
    assert!(store.receipts(other).await.unwrap().is_empty());
    assert_eq!(store.receipt(other, ada).await.unwrap(), Receipt::default());
}

/// A user's last seen time and their choice to hide it are kept apart: setting one
/// leaves the other; unknown users have the defaults.
async fn check_presence_keeps_last_seen_and_the_choice_to_hide_it(store: &dyn Store) {
    let (ada, bob) = (UserId::generate(), UserId::generate());
    assert_eq!(
        store.presence(ada).await.unwrap(),
        PresenceRecord::default()
    );
    let at = Timestamp::from_millis(1_700_000_123_456);
    store.set_last_seen(ada, at).await.unwrap();
    store.set_hide_last_seen(ada, true).await.unwrap();
    let later = Timestamp::from_millis(1_700_000_999_000);
    store.set_last_seen(ada, later).await.unwrap();
    assert_eq!(
        store.presence(ada).await.unwrap(),
        PresenceRecord {
            last_seen: Some(later),
            hide_last_seen: true
        }
    );
    store.set_hide_last_seen(bob, false).await.unwrap();
    assert_eq!(
        store.presence(bob).await.unwrap(),
        PresenceRecord::default()
    );
}

/// Blocks are one-way, listed per blocker, added and removed idempotently.
async fn check_blocks_are_one_way_and_undone(store: &dyn Store) {
    let (ada, bob, cy) = (UserId::generate(), UserId::generate(), UserId::generate());
    let at = Timestamp::from_millis(1_700_000_000_000);
    assert!(store.blocked_users(ada).await.unwrap().is_empty());
    store.block_user(ada, bob, at).await.unwrap();
    store.block_user(ada, bob, at).await.unwrap();
    store.block_user(ada, cy, at).await.unwrap();
    assert_eq!(
        sorted(store.blocked_users(ada).await.unwrap()),
        sorted(vec![bob, cy])
    );
    assert!(store.blocked_users(bob).await.unwrap().is_empty());
    store.unblock_user(ada, bob).await.unwrap();
    store.unblock_user(ada, bob).await.unwrap();
    assert_eq!(store.blocked_users(ada).await.unwrap(), vec![cy]);
}

/// A history range (after, before, limit, from_newest) and the seqs it must return.
type RangeCase = (Option<Seq>, Option<Seq>, usize, bool, &'static [Seq]);

/// 6. History ranges are exact at their boundaries, oldest first, and never leak across
///    conversations.
async fn check_history_ranges_are_exact_and_stay_in_their_conversation(store: &dyn Store) {
    let (conv, neighbour) = adjacent_conversations();
    let (alice, bob) = (UserId::generate(), UserId::generate());
    // One group commit spanning both conversations, interleaved and out of order.
    let mut batch = Vec::new();
    for seq in (1..=10).rev() {
        batch.push(message(
            conv,
            seq,
            if seq % 2 == 0 { alice } else { bob },
            &format!("a{seq}"),
        ));
        if seq <= 5 {
            batch.push(message(neighbour, seq, alice, &format!("n{seq}")));
        }
    }
    append(store, &batch).await.unwrap();
    append(store, &[]).await.unwrap();

    let all = store
        .events(conv, range(None, None, 100, false))
        .await
        .unwrap();
    let mut expected: Vec<Event> = batch
        .iter()
        .filter(|m| m.conversation == conv)
        .cloned()
        .collect();
    expected.sort_by_key(|m| m.seq);
    assert_eq!(all, expected, "messages do not round-trip in seq order");
    assert_eq!(
        seqs(store, neighbour, range(None, None, 100, false)).await,
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        seqs(store, neighbour, range(None, None, 100, true)).await,
        vec![1, 2, 3, 4, 5]
    );

    const ALL: &[Seq] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let cases: &[RangeCase] = &[
        (Some(3), Some(7), 100, false, &[4, 5, 6]),
        (Some(3), Some(7), 100, true, &[4, 5, 6]),
        (Some(3), Some(4), 100, false, &[]),
        (Some(3), Some(3), 100, false, &[]),
        (Some(7), Some(3), 100, false, &[]),
        (Some(10), None, 100, false, &[]),
        (Some(9), None, 100, true, &[10]),
        (Some(0), None, 100, false, ALL),
        (None, Some(1), 100, true, &[]),
        (None, Some(2), 100, true, &[1]),
        (None, Some(11), 100, true, ALL),
        (Some(Seq::MAX), None, 100, true, &[]),
        (None, Some(Seq::MAX), 100, true, ALL),
        (None, None, 3, false, &[1, 2, 3]),
        (None, None, 3, true, &[8, 9, 10]),
        (None, None, 1, true, &[10]),
        (None, None, 0, true, &[]),
        (None, None, 0, false, &[]),
        (None, None, 10, true, ALL),
        (None, None, 11, false, ALL),
        (Some(2), Some(9), 3, false, &[3, 4, 5]),
        (Some(2), Some(9), 3, true, &[6, 7, 8]),
        (Some(8), None, 5, false, &[9, 10]),
        (None, Some(3), 5, true, &[1, 2]),
        (Some(4), Some(6), 5, true, &[5]),
    ];
    for &(after, before, limit, from_newest, want) in cases {
        let r = range(after, before, limit, from_newest);
        assert_eq!(seqs(store, conv, r).await, want, "{r:?}");
    }

    assert_eq!(
        store.last_event(conv).await.unwrap().map(|m| m.seq),
        Some(10)
    );
    assert_eq!(
        store.last_event(neighbour).await.unwrap().as_ref(),
        batch
            .iter()
            .find(|m| m.conversation == neighbour && m.seq == 5)
    );
    let (empty, _) = adjacent_conversations();
    assert_eq!(store.last_event(empty).await.unwrap(), None);
    assert!(
        store
            .events(empty, range(None, None, 100, true))
            .await
            .unwrap()
            .is_empty()
    );

    // A later commit moves the end of the conversation.
    let eleventh = message(conv, 11, bob, "a11");
    append(store, std::slice::from_ref(&eleventh))
        .await
        .unwrap();
    assert_eq!(store.last_event(conv).await.unwrap(), Some(eleventh));
    assert_eq!(
        seqs(store, conv, range(Some(9), None, 100, false)).await,
        vec![10, 11]
    );
    assert_eq!(
        store.last_event(neighbour).await.unwrap().map(|m| m.seq),
        Some(5)
    );
}

/// 7. A message is found by its sender's client id, and only in its conversation and
///    for its sender.
async fn check_messages_are_found_by_client_id_per_sender_and_conversation(store: &dyn Store) {
    let (conv, neighbour) = adjacent_conversations();
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let a1 = with_client_id(message(conv, 1, alice, "first"), "c-1");
    let plain = message(conv, 2, alice, "no client id");
    let a10 = with_client_id(message(conv, 3, alice, "tenth"), "c-10");
    let b1 = with_client_id(message(conv, 4, bob, "bob's c-1"), "c-1");
    let n1 = with_client_id(message(neighbour, 1, alice, "elsewhere"), "n-1");
    append(
        store,
        &[
            a1.clone(),
            plain.clone(),
            a10.clone(),
            b1.clone(),
            n1.clone(),
        ],
    )
    .await
    .unwrap();

    let find = |conversation, from, client_id: &str| {
        let client_id = ClientId::from_stored(client_id).unwrap();
        async move {
            store
                .event_by_client_id(conversation, from, &client_id)
                .await
                .unwrap()
        }
    };
    assert_eq!(find(conv, alice, "c-1").await, Some(a1));
    assert_eq!(find(conv, alice, "c-10").await, Some(a10));
    assert_eq!(find(conv, bob, "c-1").await, Some(b1));
    assert_eq!(find(neighbour, alice, "n-1").await, Some(n1));

    assert_eq!(
        find(conv, bob, "c-10").await,
        None,
        "found for another sender"
    );
    assert_eq!(
        find(neighbour, alice, "c-1").await,
        None,
        "found in another conversation"
    );
    assert_eq!(
        find(conv, alice, "n-1").await,
        None,
        "found in another conversation"
    );
    assert_eq!(find(conv, alice, "c-").await, None, "found by a prefix");
    assert_eq!(find(conv, alice, "c-100").await, None);
    assert_eq!(find(conv, UserId::generate(), "c-1").await, None);
}

/// 7b. Appending events that are already stored (a retried group commit) is harmless:
///     each is there once, unchanged, and still found by its client id.
async fn check_appending_the_same_events_again_is_harmless(store: &dyn Store) {
    let (conv, neighbour) = adjacent_conversations();
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let batch: Vec<Event> = (1..=6)
        .map(|seq| {
            let from = if seq % 2 == 0 { alice } else { bob };
            with_client_id(
                message(conv, seq, from, &format!("m{seq}")),
                &format!("c{seq}"),
            )
        })
        .chain([message(neighbour, 1, alice, "elsewhere")])
        .collect();
    append(store, &batch).await.unwrap();
    append(store, &batch).await.unwrap();
    // Part of it again, as a retry after a failure that wrote only some of it would.
    append(store, &batch[2..4]).await.unwrap();

    let history = store
        .events(conv, range(None, None, 100, false))
        .await
        .unwrap();
    assert_eq!(history, batch[..6]);
    assert_eq!(
        seqs(store, neighbour, range(None, None, 100, true)).await,
        vec![1]
    );
    assert_eq!(
        store.last_event(conv).await.unwrap().as_ref(),
        Some(&batch[5])
    );
    for m in &batch[..6] {
        let found = store
            .event_by_client_id(conv, m.sender, m.client_id.as_ref().unwrap())
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(m));
    }
}

/// 7c. A long history reads back whole and in order, in both directions and in small
///     pages, across whatever partitions the store splits a conversation into.
async fn check_a_long_history_reads_back_whole_in_pages(store: &dyn Store) {
    const N: Seq = 300;
    let (conv, neighbour) = adjacent_conversations();
    let from = UserId::generate();
    let all: Vec<Event> = (1..=N)
        .map(|seq| {
            with_client_id(
                message(conv, seq, from, &format!("m{seq}")),
                &format!("c{seq}"),
            )
        })
        .collect();
    // In several commits of uneven sizes, as the group commit would.
    for chunk in all.chunks(37) {
        append(store, chunk).await.unwrap();
    }
    append(store, &[message(neighbour, 1, from, "next door")])
        .await
        .unwrap();

    let every: Vec<Seq> = (1..=N).collect();
    for from_newest in [false, true] {
        let whole = store
            .events(conv, range(None, None, 1000, from_newest))
            .await
            .unwrap();
        assert_eq!(whole, all, "from_newest: {from_newest}");
    }
    // Forwards from a cursor, 7 at a time, as a sync does.
    let mut forwards = Vec::new();
    let mut after = 0;
    loop {
        let page = seqs(store, conv, range(Some(after), None, 7, false)).await;
        let Some(&last) = page.last() else { break };
        assert!(page.len() <= 7);
        forwards.extend(page);
        after = last;
    }
    assert_eq!(forwards, every);
    // Backwards from the newest, 11 at a time, as the history endpoint does.
    let mut backwards = Vec::new();
    let mut before = None;
    loop {
        let page = seqs(store, conv, range(None, before, 11, true)).await;
        let Some(&first) = page.first() else { break };
        assert!(page.len() <= 11);
        backwards.splice(0..0, page);
        before = Some(first);
    }
    assert_eq!(backwards, every);
    assert_eq!(
        seqs(store, conv, range(Some(250), Some(260), 1000, true)).await,
        (251..260).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(store, conv, range(Some(5), None, 3, true)).await,
        vec![N - 2, N - 1, N]
    );
    assert_eq!(store.last_event(conv).await.unwrap().as_ref(), all.last());
    let c1 = ClientId::parse("c1").unwrap();
    assert_eq!(
        store
            .event_by_client_id(conv, from, &c1)
            .await
            .unwrap()
            .as_ref(),
        all.first()
    );
}

/// Strings that break naive quoting, escaping, truncation or NUL-terminated code.
const HOSTILE: &[&str] = &[
    "O'Brien said \"hi\" \\ back`slash`",
    "'; DROP TABLE users; --",
    "x'); INSERT INTO messages (id) VALUES (now()) IF NOT EXISTS; --",
    "BEGIN BATCH DELETE FROM users WHERE id = 1; APPLY BATCH;",
    "\u{202E}evil\u{202D} txt.exe",
    "👩‍👩‍👧‍👦 🏳️‍🌈 ﷽ Zalgo: Z̷̛̺a̴l̸g̵o̶",
    "%s %n {0} ${jndi:ldap://x} <script>alert(1)</script>",
];

/// 8. Names, client ids and bodies come back byte for byte, whatever they contain.
async fn check_hostile_strings_round_trip_exactly(store: &dyn Store) {
    // A name that reorders the text around it (bidi controls) never gets this far:
    // `DisplayName` refuses it. Bodies, below, still carry every one.
    let names = HOSTILE
        .iter()
        .enumerate()
        .filter(|(_, h)| DisplayName::parse(h).is_ok());
    for (i, hostile) in names {
        let email = Email::parse(&format!(
            "o'brien+\"{i}\".{}@example.com",
            UserId::generate().as_uuid().simple()
        ))
        .unwrap();
        let r = record(hostile, &email);
        store.insert_user(&r).await.unwrap();
        assert_eq!(store.user(r.user.id).await.unwrap(), Some(r.clone()));
        assert_eq!(
            store
                .user_by_email(&email)
                .await
                .unwrap()
                .map(|u| u.user.name),
            Some(r.user.name)
        );
    }

    let (conv, _) = adjacent_conversations();
    let from = UserId::generate();
    let long: String = "é👍a\u{0}".chars().cycle().take(4096).collect();
    assert_eq!(long.chars().count(), 4096);
    let mut bodies: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    bodies.extend([
        "\u{0}".to_owned(),
        "a\u{0}b\u{0}".to_owned(),
        "\u{202E}".to_owned(),
        "  leading and trailing whitespace\r\n\t ".to_owned(),
        "\u{FEFF}\u{200B}zero width\u{2028}line sep".to_owned(),
        "\"}],\"seq\":999,\"body\":\"forged".to_owned(),
        long,
    ]);
    let messages: Vec<Event> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let seq = i as Seq + 1;
            let m = message(conv, seq, from, body);
            // Client ids cannot hold control characters; everything else goes.
            match HOSTILE.get(i) {
                Some(hostile) if hostile.len() <= 64 => with_client_id(m, hostile),
                _ => with_client_id(m, &format!("cid-{seq}")),
            }
        })
        .collect();
    append(store, &messages).await.unwrap();

    let back = store
        .events(conv, range(None, None, 1000, false))
        .await
        .unwrap();
    assert_eq!(back.len(), bodies.len());
    for (got, body) in back.iter().zip(&bodies) {
        assert_eq!(text_of(got).as_bytes(), body.as_bytes());
    }
    assert_eq!(back, messages);
    for m in &messages {
        let client_id = m.client_id.as_ref().unwrap();
        assert_eq!(
            store
                .event_by_client_id(conv, from, client_id)
                .await
                .unwrap()
                .as_ref(),
            Some(m)
        );
    }
    assert_eq!(
        store.last_event(conv).await.unwrap().as_ref(),
        messages.last()
    );

    // Token ids are opaque bytes too.
    for hostile in HOSTILE {
        let jti = format!("{hostile}{}", UserId::generate());
        store
            .revoke_token(&jti, Timestamp::from_millis(1_800_000_000_000))
            .await
            .unwrap();
        assert!(store.is_token_revoked(&jti).await.unwrap());
    }
}

/// What [`write_durable_fixture`] wrote, for [`check_durable_fixture`] to find again.
struct Fixture {
    ada: UserRecord,
    bob: UserRecord,
    jti: String,
    login: Login,
    conversation: Conversation,
    messages: Vec<Event>,
}

/// 9a. Writes one of everything (then flushes), to be read back after a restart.
async fn write_durable_fixture(store: &dyn Store) -> Fixture {
    let ada = record("Ada", &unique_email("ada"));
    let bob = record("Bob", &unique_email("bob"));
    store.insert_user(&ada).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    assert!(
        store
            .add_contacts(ada.user.id, bob.user.id, Timestamp::from_millis(5))
            .await
            .unwrap()
    );
    let jti = format!("jti-{}", UserId::generate());
    store
        .revoke_token(&jti, Timestamp::from_millis(1_800_000_000_000))
        .await
        .unwrap();
    let login = login(ada.user.id, "Ada's phone", 9);
    store.insert_login(&login).await.unwrap();
    let conversation = Conversation::direct(ada.user.id, bob.user.id, Timestamp::from_millis(6));
    store.insert_conversation(&conversation).await.unwrap();
    let messages: Vec<Event> = (1..=3)
        .map(|seq| {
            with_client_id(
                message(conversation.id, seq, ada.user.id, &format!("m{seq}")),
                &format!("c{seq}"),
            )
        })
        .collect();
    append(store, &messages[..2]).await.unwrap();
    append(store, &messages[2..]).await.unwrap();
    store.flush().await.unwrap();
    Fixture {
        ada,
        bob,
        jti,
        login,
        conversation,
        messages,
    }
}

/// 9b. Finds everything [`write_durable_fixture`] wrote.
async fn check_durable_fixture(store: &dyn Store, f: &Fixture) {
    let (ada, bob) = (f.ada.user.id, f.bob.user.id);
    assert_eq!(store.user(ada).await.unwrap().as_ref(), Some(&f.ada));
    assert_eq!(
        store
            .user_by_email(&f.bob.user.email)
            .await
            .unwrap()
            .as_ref(),
        Some(&f.bob)
    );
    assert_eq!(store.contacts(ada).await.unwrap(), vec![bob]);
    assert_eq!(store.contacts(bob).await.unwrap(), vec![ada]);
    assert!(
        !store
            .add_contacts(bob, ada, Timestamp::from_millis(7))
            .await
            .unwrap()
    );
    assert!(matches!(
        store.insert_user(&record("Ada 2", &f.ada.user.email)).await,
        Err(InsertUserError::EmailTaken)
    ));
    assert!(store.is_token_revoked(&f.jti).await.unwrap());
    assert_eq!(
        store.login(ada, f.login.id).await.unwrap().as_ref(),
        Some(&f.login)
    );
    assert_eq!(store.user_logins(ada).await.unwrap(), vec![f.login.clone()]);
    assert_eq!(
        store
            .conversation(f.conversation.id)
            .await
            .unwrap()
            .as_ref(),
        Some(&f.conversation)
    );
    assert_eq!(
        store.user_conversations(ada).await.unwrap(),
        vec![f.conversation.id]
    );
    assert_eq!(
        store.user_conversations(bob).await.unwrap(),
        vec![f.conversation.id]
    );
    assert_eq!(
        store
            .events(f.conversation.id, range(None, None, 10, true))
            .await
            .unwrap(),
        f.messages
    );
    assert_eq!(
        store.last_event(f.conversation.id).await.unwrap().as_ref(),
        f.messages.last()
    );
    let c2 = ClientId::parse("c2").unwrap();
    assert_eq!(
        store
            .event_by_client_id(f.conversation.id, ada, &c2)
            .await
            .unwrap()
            .as_ref(),
        Some(&f.messages[1])
    );
}

/// 9. (Against one store, without a restart.) What is written is read back.
async fn check_a_written_fixture_reads_back(store: &dyn Store) {
    let fixture = write_durable_fixture(store).await;
    check_durable_fixture(store, &fixture).await;
}

// ---- The list -------------------------------------------------------------------------

/// Every kind of event reads back as it was written, in one stream with messages: a
/// direct message keeps its receiver, edits and deletes their target, membership changes
/// their users and roles.
async fn check_every_kind_of_event_round_trips(store: &dyn Store) {
    let (conv, _) = adjacent_conversations();
    let (ada, bob) = (UserId::generate(), UserId::generate());
    let text = |s: &str| MessageBody::parse(s, 100).expect("valid body");
    let mut direct = message(conv, 1, ada, "hello");
    if let EventKind::Message(m) = &mut direct.kind {
        m.receiver = Some(bob);
    }
    let events = vec![
        direct,
        event(
            conv,
            2,
            ada,
            EventKind::Edit {
                target: 1,
                content: text("hello, Bob"),
            },
        ),
        event(conv, 3, ada, EventKind::Delete { target: 1 }),
        event(
            conv,
            4,
            ada,
            EventKind::Membership(MembershipChange::Added { users: vec![bob] }),
        ),
        event(
            conv,
            5,
            ada,
            EventKind::Membership(MembershipChange::RoleChanged {
                user: bob,
                role: Role::Admin,
            }),
        ),
        event(conv, 6, bob, EventKind::Membership(MembershipChange::Left)),
        event(
            conv,
            7,
            ada,
            EventKind::Membership(MembershipChange::Renamed {
                name: "Tea \"club\"".into(),
            }),
        ),
    ];
    append(store, &events).await.unwrap();
    let back = store
        .events(conv, range(None, None, 100, false))
        .await
        .unwrap();
    // Every event is stored as it was given, but the message, which its edit and
    // delete (in the same batch) left a tombstone, and the edit, whose text the delete
    // erased too.
    let mut expected = events.clone();
    expected[0] = expected[0].modified_by(&events[1]).modified_by(&events[2]);
    expected[1] = events[1].erased_edit();
    assert_eq!(back, expected);
    assert_eq!(
        store.last_event(conv).await.unwrap().as_ref(),
        events.last()
    );
}

/// An edit rewrites its target's text and sets `edited_at`; a delete erases the text
/// from the store (not hidden: the stored body is empty) and marks it deleted, and
/// nothing after a delete brings the text back. Targets in the same batch and targets
/// committed earlier end the same; the edits and deletes stay in the stream.
async fn check_edits_and_deletes_rewrite_their_target_and_erase_deleted_text(store: &dyn Store) {
    let (conv, _) = adjacent_conversations();
    let (ada, bob) = (UserId::generate(), UserId::generate());
    let text = |s: &str| MessageBody::parse(s, 100).expect("valid body");
    let edit = |seq, target, body: &str| {
        event(
            conv,
            seq,
            ada,
            EventKind::Edit {
                target,
                content: text(body),
            },
        )
    };
    let first = with_client_id(message(conv, 1, ada, "secret one"), "m1");
    let second = message(conv, 2, bob, "secret two");
    append(store, &[first.clone(), second.clone()])
        .await
        .unwrap();
    // Earlier targets: edited, then deleted in a later commit.
    append(store, &[edit(3, 1, "fixed one")]).await.unwrap();
    let delete_second = event(conv, 4, ada, EventKind::Delete { target: 2 });
    append(store, std::slice::from_ref(&delete_second))
        .await
        .unwrap();
    // A target in the same batch as its edit and its delete, then an edit after the
    // delete (which the actor refuses; the store must not resurrect the message anyway,
    // though it keeps the stray edit as given).
    let third = message(conv, 5, ada, "secret three");
    let batch = [
        third.clone(),
        edit(6, 5, "three, edited"),
        event(conv, 7, ada, EventKind::Delete { target: 5 }),
        edit(8, 2, "back from the dead"),
    ];
    append(store, &batch).await.unwrap();

    let back = store
        .events(conv, range(None, None, 100, false))
        .await
        .unwrap();
    assert_eq!(back.len(), 8);
    let message_of = |e: &Event| match &e.kind {
        EventKind::Message(m) => m.clone(),
        other => panic!("not a message: {other:?}"),
    };
    let one = message_of(&back[0]);
    assert_eq!((one.body.as_str(), one.deleted), ("fixed one", false));
    assert_eq!(one.edited_at, Some(back[2].at));
    assert_eq!(back[0].id, first.id);
    for erased in [&back[1], &back[4]] {
        let m = message_of(erased);
        assert_eq!((m.body.as_str(), m.deleted), ("", true), "{erased:?}");
    }
    assert!(matches!(back[6].kind, EventKind::Delete { target: 5 }));
    assert_eq!(back[3], delete_second);
    // The retry index still finds the (edited) message.
    let found = store
        .event_by_client_id(conv, ada, &ClientId::parse("m1").unwrap())
        .await
        .unwrap()
        .expect("found by client id");
    assert_eq!(message_of(&found).body.as_str(), "fixed one");
    // No stored event anywhere holds the deleted texts.
    for e in &back {
        let t = text_of(e);
        assert!(!t.contains("two") && !t.contains("three"), "{e:?}");
    }
    // An edited message deleted in a later commit: its edit's text goes too.
    let fourth = message(conv, 9, ada, "secret four");
    append(store, &[fourth, edit(10, 9, "four, edited")])
        .await
        .unwrap();
    append(
        store,
        &[event(conv, 11, ada, EventKind::Delete { target: 9 })],
    )
    .await
    .unwrap();
    let back = store
        .events(conv, range(Some(8), None, 100, false))
        .await
        .unwrap();
    assert_eq!(back.len(), 3);
    assert!(
        back.iter().all(|e| !text_of(e).contains("four")),
        "{back:?}"
    );
}

/// Logins are listed per user, rotated once from their current refresh hash (never
/// from an old one, and of concurrent rotations from one hash exactly one applies),
/// touched, and signed out once; an expired one is as good as gone.
async fn check_logins_rotate_once_and_sign_out_once(store: &dyn Store) {
    let (ada, bob) = (UserId::generate(), UserId::generate());
    let phone = login(ada, "Ada's phone", 1);
    let laptop = login(ada, "Ada's laptop", 2);
    let bobs = login(bob, "Bob's phone", 3);
    for l in [&phone, &laptop, &bobs] {
        store.insert_login(l).await.unwrap();
    }
    let mut listed = store.user_logins(ada).await.unwrap();
    listed.sort_by_key(|l| l.device.as_str().to_owned());
    assert_eq!(listed, vec![laptop.clone(), phone.clone()]);
    assert_eq!(
        store.login(ada, phone.id).await.unwrap(),
        Some(phone.clone())
    );
    // A login is found under its own user only.
    assert_eq!(store.login(bob, phone.id).await.unwrap(), None);

    let (h1, h2, h3) = (
        RefreshHash([1; 32]),
        RefreshHash([11; 32]),
        RefreshHash([12; 32]),
    );
    let at = Timestamp::now();
    assert!(
        store
            .rotate_login(ada, phone.id, h1, h2, in_a_day(), at)
            .await
            .unwrap()
    );
    // The hash that was just traded no longer rotates anything.
    assert!(
        !store
            .rotate_login(ada, phone.id, h1, h3, in_a_day(), at)
            .await
            .unwrap()
    );
    let rotated = store
        .login(ada, phone.id)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!((rotated.refresh_hash, rotated.last_seen_at), (h2, at));
    assert_eq!(
        (rotated.device, rotated.created_at),
        (phone.device.clone(), phone.created_at)
    );

    // Eight rotations race from one hash: exactly one wins.
    let wins = futures_util::future::join_all((0..8u8).map(|i| {
        store.rotate_login(
            ada,
            phone.id,
            h2,
            RefreshHash([100 + i; 32]),
            in_a_day(),
            at,
        )
    }))
    .await;
    assert_eq!(wins.into_iter().filter(|w| *w.as_ref().unwrap()).count(), 1);

    let later = Timestamp::from_millis(at.as_millis() + 60_000);
    store.touch_login(ada, laptop.id, later).await.unwrap();
    assert_eq!(
        store
            .login(ada, laptop.id)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        later
    );

    assert!(store.delete_login(ada, laptop.id).await.unwrap());
    assert!(!store.delete_login(ada, laptop.id).await.unwrap());
    assert_eq!(store.login(ada, laptop.id).await.unwrap(), None);
    // A use that races a sign-out does not bring the login back.
    store.touch_login(ada, laptop.id, later).await.unwrap();
    assert_eq!(store.login(ada, laptop.id).await.unwrap(), None);
    assert!(
        !store
            .rotate_login(ada, laptop.id, h2, h3, in_a_day(), at)
            .await
            .unwrap()
    );
    let ids: Vec<LoginId> = store
        .user_logins(ada)
        .await
        .unwrap()
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, vec![phone.id]);
    // Another user's login is not touched by any of it.
    assert_eq!(store.user_logins(bob).await.unwrap(), vec![bobs]);

    let mut expired = login(ada, "Old tablet", 4);
    expired.expires_at = Timestamp::from_millis(Timestamp::now().as_millis() - 1);
    store.insert_login(&expired).await.unwrap();
    assert_eq!(store.login(ada, expired.id).await.unwrap(), None);
    assert!(
        !store
            .user_logins(ada)
            .await
            .unwrap()
            .iter()
            .any(|l| l.id == expired.id)
    );
    assert!(
        !store
            .rotate_login(ada, expired.id, RefreshHash([4; 32]), h3, in_a_day(), at)
            .await
            .unwrap()
    );
}

/// A password hash is replaced on an account that exists, and creates nothing where
/// none does.
async fn check_a_password_hash_is_replaced_only_on_an_account(store: &dyn Store) {
    let ada = record("Ada", &unique_email("ada"));
    store.insert_user(&ada).await.unwrap();
    assert!(
        store
            .set_password_hash(ada.user.id, "$argon2id$new")
            .await
            .unwrap()
    );
    let back = store.user(ada.user.id).await.unwrap().unwrap();
    assert_eq!(back.password_hash, "$argon2id$new");
    assert_eq!(back.user, ada.user);
    let nobody = UserId::generate();
    assert!(
        !store
            .set_password_hash(nobody, "$argon2id$x")
            .await
            .unwrap()
    );
    assert_eq!(store.user(nobody).await.unwrap(), None);
}

/// Deleting an account removes it, its contacts both ways, its logins and its
/// conversation index, and frees its email for a new, unrelated account; the
/// conversation stays for the other member. Deleting it again is harmless.
async fn check_deleting_an_account_frees_its_email_and_unlinks_it(store: &dyn Store) {
    let ada = record("Ada", &unique_email("ada"));
    let bob = record("Bob", &unique_email("bob"));
    let cy = record("Cy", &unique_email("cy"));
    for r in [&ada, &bob, &cy] {
        store.insert_user(r).await.unwrap();
    }
    let (a, b, c) = (ada.user.id, bob.user.id, cy.user.id);
    assert!(
        store
            .add_contacts(a, b, Timestamp::from_millis(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .add_contacts(b, c, Timestamp::from_millis(2))
            .await
            .unwrap()
    );
    let conversation = Conversation::direct(a, b, Timestamp::from_millis(3));
    store.insert_conversation(&conversation).await.unwrap();
    store
        .insert_login(&login(a, "Ada's phone", 5))
        .await
        .unwrap();
    let bobs = login(b, "Bob's phone", 6);
    store.insert_login(&bobs).await.unwrap();

    store.delete_user(a).await.unwrap();

    assert_eq!(store.user(a).await.unwrap(), None);
    assert_eq!(store.user_by_email(&ada.user.email).await.unwrap(), None);
    assert_eq!(store.contacts(a).await.unwrap(), Vec::<UserId>::new());
    assert_eq!(store.contacts(b).await.unwrap(), vec![c]);
    assert_eq!(store.user_logins(a).await.unwrap(), Vec::new());
    assert_eq!(store.user_logins(b).await.unwrap(), vec![bobs]);
    assert_eq!(store.user_conversations(a).await.unwrap(), Vec::new());
    assert_eq!(
        store.user_conversations(b).await.unwrap(),
        vec![conversation.id]
    );
    assert_eq!(
        store.conversation(conversation.id).await.unwrap(),
        Some(conversation)
    );

    // The email registers again, as a new account with nothing of the old one's.
    let again = record("Ada again", &ada.user.email);
    store.insert_user(&again).await.unwrap();
    assert_eq!(
        store
            .user_by_email(&ada.user.email)
            .await
            .unwrap()
            .map(|r| r.user.id),
        Some(again.user.id)
    );
    assert_eq!(
        store.contacts(again.user.id).await.unwrap(),
        Vec::<UserId>::new()
    );
    // And the new account can become Bob's contact afresh.
    assert!(
        store
            .add_contacts(again.user.id, b, Timestamp::from_millis(4))
            .await
            .unwrap()
    );

    // Deleting the old account again touches nothing of the new one's.
    store.delete_user(a).await.unwrap();
    assert_eq!(
        store
            .user_by_email(&ada.user.email)
            .await
            .unwrap()
            .map(|r| r.user.id),
        Some(again.user.id)
    );
    assert_eq!(store.contacts(b).await.unwrap().len(), 2);
}

/// Erased events keep their place (id, seq, sender, client id, time) and lose their
/// content; other senders' events are untouched, a retry by client id still finds the
/// erased event, and erasing again, or a seq that holds nothing, is harmless.
async fn check_erased_events_keep_their_place_and_lose_their_content(store: &dyn Store) {
    let (conv, neighbour) = adjacent_conversations();
    let (ada, bob) = (UserId::generate(), UserId::generate());
    let text = |s: &str| MessageBody::parse(s, 100).expect("valid body");
    let events = vec![
        with_client_id(message(conv, 1, ada, "secret one"), "a1"),
        with_client_id(message(conv, 2, bob, "bob's reply"), "b1"),
        event(
            conv,
            3,
            ada,
            EventKind::Edit {
                target: 1,
                content: text("secret edited"),
            },
        ),
        event(conv, 4, ada, EventKind::Delete { target: 2 }),
        message(conv, 5, ada, "secret two"),
    ];
    append(store, &events).await.unwrap();
    let other = message(neighbour, 1, ada, "elsewhere");
    append(store, std::slice::from_ref(&other)).await.unwrap();

    store.erase_events(conv, &[1, 3, 5, 99]).await.unwrap();
    store.erase_events(conv, &[1]).await.unwrap();

    let back = store
        .events(conv, range(None, None, 100, false))
        .await
        .unwrap();
    let mut expected = events.clone();
    // Bob's reply was deleted at seq 4 before any erasure: it stays a tombstone.
    expected[1] = expected[1].modified_by(&events[3]);
    for i in [0, 2, 4] {
        expected[i].kind = EventKind::Erased;
    }
    assert_eq!(back, expected);
    for e in &back {
        assert!(!text_of(e).contains("secret"), "{e:?} kept its content");
    }
    assert_eq!(
        store
            .event_by_client_id(conv, ada, &ClientId::parse("a1").unwrap())
            .await
            .unwrap(),
        Some(expected[0].clone())
    );
    assert_eq!(
        store.last_event(conv).await.unwrap(),
        Some(expected[4].clone())
    );
    // Another conversation is not touched, even at the same seq.
    assert_eq!(store.last_event(neighbour).await.unwrap(), Some(other));
}

/// A call is a message of type video or audio with its start; appending an amendment
/// stores it at its own seq (history stays gapless and ordered) and rewrites its target's
/// body, type and call in the same commit, keeping the target's id, sender, client id,
/// time and receiver. A target in the same batch is written amended; a missing target or
/// one that is not a message is left alone, and the amendment is still stored.
async fn check_amendments_rewrite_their_target_and_stay_in_the_stream(store: &dyn Store) {
    let (conv, other_conv) = adjacent_conversations();
    let (ada, bob) = (UserId::generate(), UserId::generate());
    let text = |s: &str| MessageBody::parse(s, 100).expect("valid body");
    let started = Timestamp::from_millis(1_700_000_000_000);
    let ended = Timestamp::from_millis(1_700_000_042_999);
    let call = |call_type, receiver| {
        let mut c = MessageContent::call(text("Video call"), call_type, started);
        c.receiver = Some(receiver);
        c
    };
    let ended_call = |c: &MessageContent, receiver| {
        let mut c = c.clone();
        c.receiver = Some(receiver);
        if let Some(info) = &mut c.call {
            info.ended_at = Some(ended);
        }
        c
    };
    let video = call(CallType::Video, bob);
    let audio = call(CallType::Audio, bob);
    let start = with_client_id(event(conv, 1, ada, EventKind::Message(video.clone())), "k1");
    let chat = message(conv, 2, bob, "hello");
    append(store, &[start.clone(), chat.clone()]).await.unwrap();
    // Bob hangs up: the amendment's receiver is Ada, the call's stays Bob.
    let end = event(
        conv,
        3,
        bob,
        EventKind::Amend {
            target: 1,
            content: ended_call(&video, ada),
        },
    );
    append(store, std::slice::from_ref(&end)).await.unwrap();

    let back = store
        .events(conv, range(None, None, 10, false))
        .await
        .unwrap();
    let mut amended_start = start.clone();
    amended_start.kind = EventKind::Message(ended_call(&video, bob));
    assert_eq!(back, vec![amended_start.clone(), chat.clone(), end.clone()]);
    let EventKind::Message(m) = &back[0].kind else {
        panic!("the call is still a message");
    };
    assert_eq!(m.content_type, ContentType::Video);
    assert_eq!(m.call.and_then(|c| c.duration_secs()), Some(42));
    assert_eq!(
        store
            .event_by_client_id(conv, ada, &ClientId::parse("k1").unwrap())
            .await
            .unwrap(),
        Some(amended_start),
        "the client-id index finds the amended message"
    );
    assert_eq!(store.last_event(conv).await.unwrap(), Some(end));

    // A call started and ended in one batch is written ended; an amendment of a seq that
    // does not exist, or of one that is not a message, changes nothing else.
    let amend = |seq, target| {
        let content = ended_call(&audio, bob);
        event(other_conv, seq, ada, EventKind::Amend { target, content })
    };
    let start2 = event(other_conv, 1, ada, EventKind::Message(audio.clone()));
    let (end2, stray) = (amend(2, 1), amend(3, 99));
    let delete = event(other_conv, 4, ada, EventKind::Delete { target: 1 });
    let at_delete = amend(5, 4);
    append(
        store,
        &[
            start2.clone(),
            end2.clone(),
            stray.clone(),
            delete.clone(),
            at_delete.clone(),
        ],
    )
    .await
    .unwrap();
    let back = store
        .events(other_conv, range(None, None, 10, false))
        .await
        .unwrap();
    // Amended, then deleted (a tombstone keeps its type and call, not its text); the
    // amendment aimed at the delete, which is no message, left it alone.
    let mut ended2 = start2.clone();
    ended2.kind = EventKind::Message(ended_call(&audio, bob));
    let ended2 = ended2.modified_by(&delete);
    assert_eq!(back, vec![ended2, end2, stray, delete, at_delete]);
    // Neither conversation's amendments touched the other.
    assert_eq!(
        store
            .events(conv, range(None, None, 10, false))
            .await
            .unwrap()
            .len(),
        3
    );
}

/// The keyspace the ScyllaDB tests of this run share, created by the first to need it.
static SHARED_KEYSPACE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Small partitions and pages, so history reads cross both.
const TEST_BUCKET_SIZE: u64 = 16;
const TEST_PAGE_SIZE: u32 = 5;

/// A store on this run's shared keyspace, or `None` without a live node.
async fn scylla_store() -> Option<ScyllaStore> {
    let uri = live_cql::uri()?;
    let keyspace = SHARED_KEYSPACE
        .get_or_init(|| async {
            live_cql::drop_stale_keyspaces(&uri).await;
            live_cql::unique_keyspace()
        })
        .await;
    let mut config = live_cql::config(&uri, keyspace);
    config.bucket_size = TEST_BUCKET_SIZE;
    config.page_size = TEST_PAGE_SIZE;
    let store = ScyllaStore::connect(&config)
        .await
        .expect("connect to SCYLLA_URI");
    assert_eq!(store.bucket_size(), TEST_BUCKET_SIZE);
    Some(store)
}

/// Declares every check once: a test per check on a fresh fjall store, one on the
/// shared ScyllaDB keyspace, and [`run_all`].
macro_rules! conformance {
    ($($test:ident => $check:ident,)*) => {
        /// Runs every check, in turn, against one store.
        async fn run_all(store: &dyn Store) {
            $(
                eprintln!("conformance: {}", stringify!($test));
                $check(store).await;
            )*
        }

        mod fjall {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let (_dir, store) = fjall_store();
                    $check(&store).await;
                }
            )*
        }

        mod on_scylla {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(store) = scylla_store().await else { return };
                    $check(&store).await;
                }
            )*
        }
    };
}

conformance! {
    accounts_are_found_by_id_and_by_normalised_email => check_accounts_are_found_by_id_and_by_normalised_email,
    one_account_per_email_even_under_concurrency => check_one_account_per_email_even_under_concurrency,
    contacts_are_mutual_and_added_once => check_contacts_are_mutual_and_added_once,
    revoked_tokens_are_remembered => check_revoked_tokens_are_remembered,
    revocations_expire => check_revocations_expire,
    conversations_are_indexed_under_their_participants => check_conversations_are_indexed_under_their_participants,
    history_ranges_are_exact_and_stay_in_their_conversation => check_history_ranges_are_exact_and_stay_in_their_conversation,
    messages_are_found_by_client_id_per_sender_and_conversation => check_messages_are_found_by_client_id_per_sender_and_conversation,
    appending_the_same_events_again_is_harmless => check_appending_the_same_events_again_is_harmless,
    a_long_history_reads_back_whole_in_pages => check_a_long_history_reads_back_whole_in_pages,
    hostile_strings_round_trip_exactly => check_hostile_strings_round_trip_exactly,
    a_written_fixture_reads_back => check_a_written_fixture_reads_back,
    every_kind_of_event_round_trips => check_every_kind_of_event_round_trips,
    amendments_rewrite_their_target_and_stay_in_the_stream => check_amendments_rewrite_their_target_and_stay_in_the_stream,
    membership_events_are_folded_into_the_group_and_its_index => check_membership_events_are_folded_into_the_group_and_its_index,
    edits_and_deletes_rewrite_their_target_and_erase_deleted_text => check_edits_and_deletes_rewrite_their_target_and_erase_deleted_text,
    receipts_are_monotonic_high_water_marks => check_receipts_are_monotonic_high_water_marks,
    presence_keeps_last_seen_and_the_choice_to_hide_it => check_presence_keeps_last_seen_and_the_choice_to_hide_it,
    blocks_are_one_way_and_undone => check_blocks_are_one_way_and_undone,
    logins_rotate_once_and_sign_out_once => check_logins_rotate_once_and_sign_out_once,
    a_password_hash_is_replaced_only_on_an_account => check_a_password_hash_is_replaced_only_on_an_account,
    deleting_an_account_frees_its_email_and_unlinks_it => check_deleting_an_account_frees_its_email_and_unlinks_it,
    erased_events_keep_their_place_and_lose_their_content => check_erased_events_keep_their_place_and_lose_their_content,
}

// ---- Whole-suite and store-specific tests ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_check_passes_in_turn_on_one_shared_fjall_store() {
    let (_dir, store) = fjall_store();
    run_all(&store).await;
    // And again: checks must not trip over what earlier runs left behind.
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everything_written_survives_closing_and_reopening_the_fjall_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let fixture = {
        let store = FjallStore::open(&path).unwrap();
        write_durable_fixture(&store).await
    };
    let reopened = FjallStore::open(&path).expect("reopen after the store was dropped");
    check_durable_fixture(&reopened, &fixture).await;
    drop(reopened);
    // Reopened twice: recovery does not lose or duplicate anything either.
    let again = FjallStore::open(&path).unwrap();
    check_durable_fixture(&again, &fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_tasks_registering_one_email_at_once_create_exactly_one_account() {
    let (_dir, store) = fjall_store();
    let store = Arc::new(store);
    let email = unique_email("stampede");
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, start, email) = (Arc::clone(&store), Arc::clone(&start), email.clone());
            tokio::spawn(async move {
                let r = record(&format!("Stampede {i}"), &email);
                start.wait().await;
                (r.user.id, store.insert_user(&r).await)
            })
        })
        .collect();
    let mut winners = BTreeSet::new();
    for task in tasks {
        let (id, result) = task.await.unwrap();
        match result {
            Ok(()) => {
                winners.insert(id);
            }
            Err(InsertUserError::EmailTaken) => {}
            Err(e) => panic!("insert failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = store
        .user_by_email(&email)
        .await
        .unwrap()
        .expect("the winner is stored");
    assert!(winners.contains(&stored.user.id));
}

#[tokio::test]
async fn the_scylla_tests_say_when_they_are_skipped() {
    if live_cql::uri().is_none() {
        live_cql::say_skipped("the ScyllaDB store conformance tests");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_check_passes_in_turn_on_a_scylla_store_with_the_default_layout() {
    let Some(uri) = live_cql::uri() else { return };
    let keyspace = live_cql::unique_keyspace();
    let store = ScyllaStore::connect(&live_cql::config(&uri, &keyspace))
        .await
        .expect("connect");
    assert_eq!(store.bucket_size(), ScyllaConfig::DEFAULT_BUCKET_SIZE);
    run_all(&store).await;
    drop(store);
    live_cql::drop_keyspace(&uri, &keyspace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everything_written_is_found_by_a_new_scylla_session() {
    let Some(first) = scylla_store().await else {
        return;
    };
    let fixture = write_durable_fixture(&first).await;
    drop(first);
    let second = scylla_store().await.expect("still configured");
    check_durable_fixture(&second, &fixture).await;
}

/// Writes rows behind the store's back, as a batch that failed half-way leaves them.
async fn raw(statement: &str, values: impl scylla::serialize::row::SerializeRow) {
    let uri = live_cql::uri().expect("live");
    let keyspace = SHARED_KEYSPACE.get().expect("created");
    live_cql::session(&uri)
        .await
        .query_unpaged(statement.replace("{ks}", keyspace), values)
        .await
        .expect("raw write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_id_entry_whose_event_never_landed_finds_nothing() {
    let Some(store) = scylla_store().await else {
        return;
    };
    let (conv, _) = adjacent_conversations();
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let ghost = ClientId::parse("ghost").unwrap();
    // Step 1 of a commit landed (the entry), step 2 did not (the event).
    raw(
        "INSERT INTO {ks}.client_ids (conversation_id, sender_id, client_id, seq) VALUES (?, ?, ?, ?)",
        (conv.as_uuid(), alice.as_uuid(), "ghost", 2_i64),
    )
    .await;
    assert_eq!(
        store.event_by_client_id(conv, alice, &ghost).await.unwrap(),
        None
    );
    // Its seq was handed out again, to another event: still nothing for "ghost".
    append(
        &store,
        &[
            message(conv, 1, bob, "one"),
            with_client_id(message(conv, 2, bob, "two"), "other"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        store.event_by_client_id(conv, alice, &ghost).await.unwrap(),
        None
    );
    assert_eq!(
        seqs(&store, conv, range(None, None, 10, false)).await,
        vec![1, 2]
    );
    // A retry of the ghost send stores it at a new seq, and then it is found.
    let retried = with_client_id(message(conv, 3, alice, "ghost, again"), "ghost");
    append(&store, std::slice::from_ref(&retried))
        .await
        .unwrap();
    assert_eq!(
        store.event_by_client_id(conv, alice, &ghost).await.unwrap(),
        Some(retried)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_opened_bucket_whose_events_never_landed_is_walked_past() {
    let Some(store) = scylla_store().await else {
        return;
    };
    let (conv, _) = adjacent_conversations();
    let from = UserId::generate();
    let written: Vec<Event> = (1..=20)
        .map(|seq| message(conv, seq, from, &format!("m{seq}")))
        .collect();
    append(&store, &written).await.unwrap();
    // A batch starting at seq 32 opened bucket 2 and failed before its events.
    raw(
        "INSERT INTO {ks}.event_buckets (conversation_id, bucket) VALUES (?, ?)",
        (conv.as_uuid(), 2_i64),
    )
    .await;
    assert_eq!(
        store.last_event(conv).await.unwrap().as_ref(),
        written.last()
    );
    assert_eq!(
        seqs(&store, conv, range(None, None, 3, true)).await,
        vec![18, 19, 20]
    );
    assert_eq!(
        seqs(&store, conv, range(Some(18), None, 100, false)).await,
        vec![19, 20]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyspace_keeps_its_bucket_size_and_refuses_a_newer_schema() {
    let Some(uri) = live_cql::uri() else { return };
    let keyspace = live_cql::unique_keyspace();
    let mut config = live_cql::config(&uri, &keyspace);
    config.bucket_size = 8;
    let first = ScyllaStore::connect(&config).await.expect("create");
    assert_eq!(first.bucket_size(), 8);
    drop(first);
    // Started again with another size (or by a server with another default): kept.
    config.bucket_size = 4096;
    let again = ScyllaStore::connect(&config).await.expect("reconnect");
    assert_eq!(again.bucket_size(), 8);
    drop(again);
    // A newer Parley migrated it: this one must not write to it.
    live_cql::session(&uri)
        .await
        .query_unpaged(
            format!(
                "INSERT INTO {keyspace}.schema_version (component, version, description) \
                 VALUES ('parley', 999, 'from the future')"
            ),
            &[],
        )
        .await
        .expect("raw write");
    let refused = ScyllaStore::connect(&config).await.expect_err("refused");
    assert!(refused.to_string().contains("newer"), "{refused}");
    live_cql::drop_keyspace(&uri, &keyspace).await;
}
