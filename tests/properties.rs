//! Property tests (proptest) of the WebSocket codec and of the store's encodings: what
//! holds for every input, not just the examples in the unit tests.
//!
//! - Codec: a `send` frame's body survives parse → domain `Message` → `OutFrame` → JSON
//!   exactly; a `send` carrying a v1 field name is refused; a `sync` frame's cursors are
//!   accepted iff every key is a conversation id.
//! - Store: keys are big-endian, so byte order is seq order: `messages()` ranges over
//!   arbitrary sets of seqs return exactly the model's seqs, in order, and never reach
//!   into a neighbouring conversation; bodies, client ids, names and emails of any
//!   Unicode (NUL, RTL overrides, quotes, SQL/CQL fragments) come back byte for byte.
//!
//! The store cases do real I/O on a fjall database in a temp dir, so they run fewer
//! cases. Failures are not persisted to files; cases that once failed are plain tests.
//! Run more cases with `PROPTEST_CASES=…` (it overrides every block's count).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use actors::domain::{
    ClientId, ConversationId, DisplayName, Email, Event, EventId, EventKind, MessageBody,
    MessageContent, Seq, Timestamp, User, UserId, UserRecord,
};
use actors::store::HistoryRange;
use actors::{Store, Target};
use parley::realtime::protocol::{Command, OutFrame, parse};
use parley::store::FjallStore;
use parley::wire::MessageJson;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

const MAX_CHARS: usize = 4096;

fn config(cases: u32) -> Config {
    Config {
        // `PROPTEST_CASES` overrides every property's own count.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Strings that have broken parsers and queries elsewhere: quotes, comment markers,
/// CQL/SQL fragments, NUL and other controls, RTL/LTR overrides, zero-width joiners,
/// a BOM, the bytes of overlong UTF-8 as they arrive once decoded lossily (U+FFFD),
/// JSON and HTML metacharacters, astral-plane emoji.
const HOSTILE: &[&str] = &[
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "\"; DROP KEYSPACE parley; --",
    "Robert'); INSERT INTO messages (body) VALUES ('x",
    "SELECT * FROM users WHERE email = '' ALLOW FILTERING;",
    "a\u{0}b",
    "\u{0}",
    "\u{202e}gnp.exe",
    "\u{202d}\u{2066}\u{2069}",
    "e\u{301}\u{200d}\u{200b}\u{feff}",
    "\u{fffd}\u{fffd}",
    "\\u0000 \\\" \\\\",
    "{\"type\":\"send\"}",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "%00%27%22",
    "😀👩‍👩‍👧‍👦",
    "\u{10ffff}",
    "\r\n\t",
];

/// Any string, biased towards the hostile ones and their combinations.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
        2 => prop::collection::vec(prop::sample::select(HOSTILE), 1..4).prop_map(|v| v.concat()),
        1 => "\\PC{1,8}",
        // Around the 4,096-character limit, in 1-, 2- and 4-byte characters.
        1 => (prop::sample::select(vec!["a", "é", "😀", " "]), 4094usize..4099)
            .prop_map(|(c, n)| c.repeat(n)),
    ]
}

/// Optional client ids, valid or not.
fn client_id() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof!["[a-zA-Z0-9-]{1,64}", hostile_string(), "x{65}",])
}

fn message(conversation: ConversationId, seq: Seq, from: UserId, body: &MessageBody) -> Event {
    Event {
        id: EventId::generate(),
        conversation,
        seq,
        sender: from,
        client_id: None,
        at: Timestamp::from_millis(1_700_000_000_000),
        kind: EventKind::Message(MessageContent::text(body.clone())),
    }
}

/// Events as the group commit hands them to the store.
fn shared(events: &[Event]) -> Vec<std::sync::Arc<Event>> {
    events.iter().cloned().map(std::sync::Arc::new).collect()
}

// ---- Codec ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1024))]

    /// A send's body is accepted iff it is not blank and has at most the limit in chars,
    /// and then it survives parse → `Event` → `message`/`ack` frame → JSON exactly.
    #[test]
    fn send_bodies_round_trip_exactly_through_the_codec(
        body in hostile_string(),
        client_id in client_id(),
        to in any::<[u8; 16]>(),
        by_conversation in any::<bool>(),
    ) {
        let target_id = UserId::from_bytes(to).to_string();
        let mut frame = json!({"type": "send", "content": body});
        frame[if by_conversation { "conversationId" } else { "receiverId" }] = json!(target_id);
        if let Some(c) = &client_id {
            frame["clientId"] = json!(c);
        }
        let text = frame.to_string();
        let body_ok = !body.trim().is_empty() && body.chars().count() <= MAX_CHARS;
        let client_ok = client_id
            .as_deref()
            .is_none_or(|c| (1..=64).contains(&c.len()) && c.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        match parse(&text, MAX_CHARS) {
            Ok(Command::Send { target, body: parsed, client_id: parsed_client }) => {
                prop_assert!(body_ok && client_ok, "accepted {}", text);
                prop_assert_eq!(parsed.as_str(), body.as_str());
                prop_assert_eq!(parsed_client.as_ref().map(ClientId::as_str), client_id.as_deref());
                let conversation = match target {
                    Target::Conversation(c) => {
                        prop_assert!(by_conversation);
                        c
                    }
                    Target::User(u) => {
                        prop_assert!(!by_conversation);
                        prop_assert_eq!(u.to_string(), target_id.clone());
                        ConversationId::direct(u, UserId::generate())
                    }
                };
                let mut m = message(conversation, 1, UserId::generate(), &parsed);
                m.client_id = parsed_client;
                let json = MessageJson::from(&m);
                let frames = [
                    OutFrame::Message { message: json.clone() },
                    OutFrame::Ack {
                        client_id: m.client_id.as_ref().map(ClientId::as_str),
                        duplicate: false,
                        message: json,
                    },
                ];
                for out in &frames {
                    let encoded = out.encode();
                    let v: Value = serde_json::from_str(&encoded).expect("frames are JSON");
                    prop_assert_eq!(v["message"]["content"].as_str(), Some(body.as_str()));
                    prop_assert_eq!(
                        v["message"]["conversationId"].as_str().map(str::to_owned),
                        Some(conversation.to_string())
                    );
                    prop_assert_eq!(v["message"]["seq"].as_u64(), Some(1));
                    prop_assert_eq!(v["message"]["clientId"].as_str(), client_id.as_deref());
                }
            }
            Ok(other) => prop_assert!(false, "{} parsed as {:?}", text, other),
            Err(e) => {
                prop_assert!(!(body_ok && client_ok), "refused {}: {:?}", text, e);
                prop_assert_eq!(e.code, "validation_failed");
                // The client id is echoed as given, even when it was the problem.
                prop_assert_eq!(e.client_id, client_id.map(Value::String));
            }
        }
    }

    /// A valid `send` frame is refused iff it also carries a v1 field name (`to`,
    /// `conversation`, `body`, `client_id`), whatever that field's value (even `null`); the refusal
    /// names the v2 field of each and still echoes the frame's own `clientId`.
    #[test]
    fn a_send_with_any_v1_field_name_is_refused_naming_the_v2_fields(
        v1 in prop::collection::btree_set(
            prop::sample::select(vec!["to", "conversation", "body", "client_id"]),
            0..=4,
        ),
        value in prop_oneof![
            Just(json!("x")),
            Just(json!(5)),
            Just(json!({})),
            Just(json!([1])),
            Just(json!(true)),
            Just(json!(null)),
        ],
    ) {
        let mut frame = json!({
            "type": "send",
            "receiverId": UserId::generate().to_string(),
            "content": "hi",
            "clientId": "c1",
        });
        for name in &v1 {
            frame[*name] = value.clone();
        }
        let text = frame.to_string();
        match parse(&text, MAX_CHARS) {
            Ok(_) => prop_assert!(v1.is_empty(), "accepted {}", text),
            Err(e) => {
                prop_assert!(!v1.is_empty(), "refused {}: {:?}", text, e);
                prop_assert_eq!(e.code, "validation_failed");
                prop_assert_eq!(e.client_id, Some(json!("c1")));
                for name in &v1 {
                    let v2 = match *name {
                        "to" => "receiverId",
                        "conversation" => "conversationId",
                        "body" => "content",
                        _ => "clientId",
                    };
                    let expected = format!("use {v2}, not the v1 name {name}");
                    prop_assert!(e.message.contains(&expected), "{:?} in {}", expected, e.message);
                }
            }
        }
    }

    /// A `sync` frame is accepted iff every cursor key is a conversation id (hyphenated,
    /// either case); the parsed cursors are exactly the given ones.
    #[test]
    fn cursors_are_accepted_iff_every_key_is_a_conversation_id(
        cursors in prop::collection::btree_map(cursor_key(), any::<u64>(), 0..6),
    ) {
        let text = json!({"type": "sync", "cursors": cursors}).to_string();
        let all_valid = cursors.keys().all(|k| is_hyphenated_uuid(k));
        match parse(&text, MAX_CHARS) {
            Ok(Command::Sync { cursors: parsed }) => {
                prop_assert!(all_valid, "accepted {}", text);
                // Keys that differ only in case name one conversation (see the regression
                // test below); otherwise the map is carried over exactly.
                let by_id: HashMap<ConversationId, Vec<Seq>> =
                    cursors.iter().fold(HashMap::new(), |mut m, (k, s)| {
                        m.entry(k.parse().expect("valid")).or_default().push(*s);
                        m
                    });
                prop_assert_eq!(parsed.len(), by_id.len());
                for (id, seq) in &parsed {
                    prop_assert!(by_id[id].contains(seq));
                }
            }
            Ok(other) => prop_assert!(false, "{} parsed as {:?}", text, other),
            Err(e) => {
                prop_assert!(!all_valid, "refused {}: {:?}", text, e);
                prop_assert_eq!(e.code, "validation_failed");
            }
        }
    }
}

fn is_hyphenated_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn cursor_key() -> impl Strategy<Value = String> {
    let valid = any::<[u8; 16]>().prop_map(|b| ConversationId::from_bytes(b).to_string());
    prop_oneof![
        4 => valid.clone(),
        1 => valid.clone().prop_map(|s| s.to_uppercase()),
        1 => valid.clone().prop_map(|s| s.replace('-', "")),
        1 => valid.prop_map(|s| format!("{{{s}}}")),
        1 => any::<String>(),
    ]
}

// ---- Store ----------------------------------------------------------------------------

/// One runtime and one store for a whole property (cases use fresh conversation ids).
struct Fixture {
    rt: tokio::runtime::Runtime,
    store: FjallStore,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FjallStore::open(&dir.path().join("store")).expect("open store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            rt,
            store,
            _dir: dir,
        }
    }
}

/// Seqs that matter to a big-endian key: around every byte boundary and the extremes.
fn seq() -> impl Strategy<Value = Seq> {
    let boundaries: Vec<Seq> = (0..8)
        .flat_map(|i| {
            let p = 1u64 << (8 * i);
            [p.saturating_sub(1), p, p + 1]
        })
        .chain([0, 1, u64::MAX - 1, u64::MAX, 1 << 63, (1 << 63) - 1])
        .collect();
    prop_oneof![
        3 => 0..600u64,
        2 => prop::sample::select(boundaries),
        1 => any::<u64>(),
    ]
}

fn history_range() -> impl Strategy<Value = HistoryRange> {
    (
        prop::option::of(seq()),
        prop::option::of(seq()),
        0usize..40,
        any::<bool>(),
    )
        .prop_map(|(after, before, limit, from_newest)| HistoryRange {
            after,
            before,
            limit,
            from_newest,
        })
}

/// What `messages()` must return: the seqs strictly between the bounds, the `limit`
/// oldest or newest of them, oldest first.
fn model(seqs: &BTreeSet<Seq>, r: HistoryRange) -> Vec<Seq> {
    let inside = seqs
        .iter()
        .copied()
        .filter(|&s| r.after.is_none_or(|a| s > a) && r.before.is_none_or(|b| s < b));
    if r.from_newest {
        let mut newest: Vec<Seq> = inside.rev().take(r.limit).collect();
        newest.reverse();
        newest
    } else {
        inside.take(r.limit).collect()
    }
}

/// Two conversations that are neighbours bytewise (…00 and …01).
fn adjacent_conversations(base: [u8; 16]) -> (ConversationId, ConversationId) {
    let mut bytes = base;
    bytes[15] = 0;
    let a = ConversationId::from_bytes(bytes);
    bytes[15] = 1;
    (a, ConversationId::from_bytes(bytes))
}

#[test]
fn history_ranges_return_exactly_the_seqs_in_range_in_order() {
    let fx = Fixture::new();
    let body = MessageBody::parse("x", 1).expect("valid");
    let mut runner = proptest::test_runner::TestRunner::new(config(32));
    runner
        .run(
            &(
                prop::collection::btree_set(seq(), 0..60),
                prop::collection::btree_set(seq(), 0..10),
                prop::collection::vec(history_range(), 1..12),
            ),
            |(seqs, neighbour_seqs, ranges)| {
                // Fresh conversations per case; the neighbour is filled too, and on both
                // sides of the prefix (…00 is below, …01 above), so a spill shows up.
                let (below, conv) = adjacent_conversations(*UserId::generate().as_bytes());
                let (_, above) = adjacent_conversations(*conv.as_bytes());
                let above = ConversationId::from_bytes({
                    let mut b = *above.as_bytes();
                    b[15] = 2;
                    b
                });
                let from = UserId::generate();
                let mut batch: Vec<Event> = seqs
                    .iter()
                    .map(|&s| message(conv, s, from, &body))
                    .collect();
                for &s in &neighbour_seqs {
                    batch.push(message(below, s, from, &body));
                    batch.push(message(above, s, from, &body));
                }
                fx.rt.block_on(async {
                    fx.store
                        .append_events(&shared(&batch))
                        .await
                        .expect("append");
                    let all = HistoryRange {
                        after: None,
                        before: None,
                        limit: usize::MAX,
                        from_newest: false,
                    };
                    let mut ranges = ranges;
                    ranges.push(all);
                    ranges.push(HistoryRange {
                        from_newest: true,
                        ..all
                    });
                    for r in ranges {
                        let got: Vec<Seq> = fx
                            .store
                            .events(conv, r)
                            .await
                            .expect("read")
                            .iter()
                            .map(|m| {
                                assert_eq!(m.conversation, conv, "read another conversation");
                                m.seq
                            })
                            .collect();
                        prop_assert_eq!(got, model(&seqs, r), "range {:?}", r);
                    }
                    let last = fx.store.last_event(conv).await.expect("read");
                    prop_assert_eq!(last.map(|m| m.seq), seqs.last().copied());
                    Ok(())
                })
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn message_bodies_and_client_ids_round_trip_exactly_through_the_store() {
    let fx = Fixture::new();
    let mut runner = proptest::test_runner::TestRunner::new(config(64));
    runner
        .run(
            &prop::collection::vec(
                (
                    hostile_string().prop_filter("not blank", |s| !s.trim().is_empty()),
                    client_id(),
                ),
                1..8,
            ),
            |messages| {
                let conv = ConversationId::from_bytes(*UserId::generate().as_bytes());
                let from = UserId::generate();
                let batch: Vec<Event> = messages
                    .iter()
                    .zip(1..)
                    .map(|((body, client_id), seq)| {
                        let body = MessageBody::parse(body, usize::MAX).expect("not blank");
                        let mut m = message(conv, seq, from, &body);
                        // Distinct per message: one client id maps to one message.
                        m.client_id = client_id
                            .as_deref()
                            .and_then(|c| ClientId::from_stored(&format!("{seq}{c}")).ok());
                        m
                    })
                    .collect();
                fx.rt.block_on(async {
                    fx.store
                        .append_events(&shared(&batch))
                        .await
                        .expect("append");
                    let read = fx
                        .store
                        .events(
                            conv,
                            HistoryRange {
                                after: None,
                                before: None,
                                limit: 100,
                                from_newest: false,
                            },
                        )
                        .await
                        .expect("read");
                    prop_assert_eq!(&read, &batch);
                    for m in &batch {
                        if let Some(c) = &m.client_id {
                            let found = fx
                                .store
                                .event_by_client_id(conv, from, c)
                                .await
                                .expect("read");
                            prop_assert_eq!(found.as_ref(), Some(m));
                        }
                    }
                    Ok(())
                })
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

fn record(name: DisplayName, email: Email) -> UserRecord {
    UserRecord {
        user: User {
            id: UserId::generate(),
            name,
            email,
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        created_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

/// Hostile strings made into names: control chars dropped, at most 64 chars, not blank.
fn hostile_name() -> impl Strategy<Value = String> {
    hostile_string().prop_map(|s| {
        let name: String = s.chars().filter(|c| !c.is_control()).take(64).collect();
        if name.trim().is_empty() {
            format!("x{name}")
        } else {
            name
        }
    })
}

/// Emails of ASCII and injection-shaped characters. Letters that grow when lower-cased
/// are left to [`an_account_whose_email_grows_when_lower_cased_can_be_read_back`].
fn hostile_email() -> impl Strategy<Value = String> {
    let local = prop_oneof![
        "[a-zA-Z0-9._%+'\"`;=*/\\\\-]{1,40}".boxed(),
        prop::sample::select(vec![
            "'or'1'='1",
            "\"quoted\"",
            "a;DROP-TABLE",
            "x'--",
            "\u{202e}evil",
            "\u{200b}zw",
            "é\u{301}",
            "%00",
        ])
        .prop_map(str::to_owned)
        .boxed(),
    ];
    (local, "[a-zA-Z0-9]{1,20}", "[a-z]{2,6}").prop_map(|(l, d, t)| format!("{l}@{d}.{t}"))
}

#[test]
fn names_and_emails_round_trip_exactly_through_the_store() {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let fx = Fixture::new();
    let mut runner = proptest::test_runner::TestRunner::new(config(64));
    runner
        .run(&(hostile_name(), hostile_email()), |(name, email)| {
            // Invalid input is not stored; proptest fails if too many cases are skipped.
            let (Ok(name), Ok(email)) = (DisplayName::parse(&name), Email::parse(&email)) else {
                return Err(TestCaseError::reject("not a valid name and email"));
            };
            // Unique per case: a counter in front of the local part.
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let email = Email::parse(&format!("{n}{}", email.as_str()))
                .map_err(|e| TestCaseError::fail(format!("{email:?}: {e}")))?;
            let rec = record(name, email);
            fx.rt.block_on(async {
                fx.store.insert_user(&rec).await.expect("insert");
                let by_id = fx.store.user(rec.user.id).await.expect("read by id");
                let by_email = fx
                    .store
                    .user_by_email(&rec.user.email)
                    .await
                    .expect("read by email");
                prop_assert_eq!(by_id.as_ref().map(|r| &r.user), Some(&rec.user));
                prop_assert_eq!(by_email.as_ref().map(|r| &r.user), Some(&rec.user));
                Ok(())
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---- Fuzz corpus ----------------------------------------------------------------------

/// Replays the committed `ws_frame` fuzz corpus (see `fuzz/README.md`) through the
/// decoder on stable Rust, so every input the fuzzer ever found interesting stays
/// covered by the ordinary test run: no panic, only documented error codes, and every
/// accepted body within the limits.
#[test]
fn the_ws_frame_fuzz_corpus_parses_without_surprises() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ws_frame");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // a source tree without the fuzz directory
    };
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("read a corpus file");
        let text = String::from_utf8_lossy(&data);
        for max in [MAX_CHARS, 3] {
            match parse(&text, max) {
                Ok(Command::Send { body, .. }) => {
                    let chars = body.as_str().chars().count();
                    assert!((1..=max).contains(&chars), "{}", path.display());
                    assert!(!body.as_str().trim().is_empty(), "{}", path.display());
                }
                Ok(_) => {}
                Err(e) => assert!(
                    [
                        "malformed_json",
                        "invalid_frame",
                        "unknown_type",
                        "validation_failed"
                    ]
                    .contains(&e.code),
                    "{}: {e:?}",
                    path.display()
                ),
            }
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no corpus files in {}", dir.display());
}

// ---- Regressions and known bugs -------------------------------------------------------

/// Regression: found by `email_normalisation_is_idempotent` (actors/tests/properties.rs).
/// An address that grew past a limit when lower-cased used to be stored and then be
/// unreadable (stored records are decoded through `Email::parse`): 500 on /me and login.
/// Limits now apply to the normalised form, so every accepted email reads back.
#[test]
fn an_account_whose_email_grows_when_lower_cased_can_be_read_back() {
    assert!(Email::parse(&format!("{}@example.com", "\u{130}".repeat(32))).is_err());
    let fx = Fixture::new();
    let email = Email::parse(&format!("{}@example.com", "\u{130}".repeat(21))).expect("valid");
    let rec = record(DisplayName::parse("Ada").expect("valid"), email);
    fx.rt.block_on(async {
        fx.store.insert_user(&rec).await.expect("insert");
        let by_id = fx.store.user(rec.user.id).await;
        let by_email = fx.store.user_by_email(&rec.user.email).await;
        assert_eq!(
            by_id.expect("read by id").map(|r| r.user),
            Some(rec.user.clone())
        );
        assert_eq!(
            by_email.expect("read by email").map(|r| r.user),
            Some(rec.user.clone())
        );
    });
}

/// Two cursor keys that differ only in case name the same conversation; which seq wins
/// must not depend on hash-map iteration order. Today the parse keeps whichever comes
/// last in a `HashMap` walk, so the smaller cursor (the safe one: replay more) is not
/// guaranteed. Documented as a property of the current code, not a crash.
#[test]
fn cursor_keys_differing_only_in_case_name_one_conversation() {
    let id = ConversationId::from_bytes([0xab; 16]);
    let lower = id.to_string();
    let upper = lower.to_uppercase();
    let cursors: BTreeMap<&str, Seq> = [(lower.as_str(), 3), (upper.as_str(), 7)].into();
    let text = json!({"type": "sync", "cursors": cursors}).to_string();
    let Ok(Command::Sync { cursors }) = parse(&text, MAX_CHARS) else {
        panic!("{text} refused");
    };
    assert_eq!(cursors.len(), 1);
    assert!(matches!(cursors[&id], 3 | 7));
}
