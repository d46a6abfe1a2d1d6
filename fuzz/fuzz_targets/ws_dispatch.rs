//! Command dispatch: well-formed frames with fuzzed contents, through parse, the real
//! actor tree and store (for sends), and back out as server frames.
//!
//! The input is structured (`arbitrary`): a frame type, a target picked from the known
//! users and conversations or made up, a body, a client id, cursors, and extra fields
//! (among them, sometimes, the v1 names of a send's fields). It is written as JSON the
//! way a client would, then:
//! - `parse` must accept it iff the contents are valid and a send uses no v1 field name
//!   (the oracle is written here, independently of the domain parsers), and the command
//!   must carry them exactly;
//! - a parsed `send` becomes a domain message `Event`, then `message` and `ack` frames through
//!   `MessageJson`/`OutFrame`, whose JSON must decode back to the very same body,
//!   client id, conversation and sender;
//! - when `dispatch` is set, the send goes to the real `Messenger` (fjall store, actors),
//!   as Alice: it must succeed iff the target exists and is not Alice herself, and the
//!   committed message event, its `ack` frame and the stored history must carry the body
//!   exactly; a retry with the same client id must be a duplicate of the first.

#![no_main]

use std::collections::BTreeMap;

use actors::domain::{
    ConversationId, Event, EventId, EventKind, MessageContent, Seq, Timestamp, UserId,
};
use actors::store::HistoryRange;
use actors::{SendError, SendRequest, Target};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use parley::realtime::protocol::{Command, OutFrame, parse};
use parley::wire::MessageJson;
use parley_fuzz::{MAX_BODY_CHARS, count, fixture, json};
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug)]
enum Kind {
    Send,
    Sync,
    Ping,
    Other(String),
    Missing,
}

#[derive(Arbitrary, Debug)]
enum Who {
    Bob,
    Alice,
    Made([u8; 16]),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Key {
    AliceBob,
    Made([u8; 16]),
    Upper([u8; 16]),
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: Kind,
    /// `receiverId` (a user) when true, else `conversationId`.
    to_user: bool,
    target: Option<Who>,
    both_targets: bool,
    body: Option<String>,
    /// Repeat the body this many times (reaches the 4096-char limit cheaply).
    repeat: u8,
    client_id: Option<String>,
    cursors: Vec<(Key, u64)>,
    extra: Vec<(String, String)>,
    dispatch: bool,
}

fn is_hyphenated_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    let (alice, bob) = (fx.alice.user.id, fx.bob.user.id);
    let alice_bob = ConversationId::direct(alice, bob);

    let mut frame = Map::new();
    match &input.kind {
        Kind::Send => frame.insert("type".into(), "send".into()),
        Kind::Sync => frame.insert("type".into(), "sync".into()),
        Kind::Ping => frame.insert("type".into(), "ping".into()),
        Kind::Other(s) => frame.insert("type".into(), s.as_str().into()),
        Kind::Missing => None,
    };
    let target_text = input.target.as_ref().map(|w| match w {
        Who::Bob if input.to_user => bob.to_string(),
        Who::Bob => alice_bob.to_string(),
        Who::Alice if input.to_user => alice.to_string(),
        Who::Alice => ConversationId::direct(alice, alice).to_string(),
        Who::Made(b) => UserId::from_bytes(*b).to_string(),
        Who::Text(s) => s.clone(),
    });
    if let Some(t) = &target_text {
        let field = if input.to_user {
            "receiverId"
        } else {
            "conversationId"
        };
        frame.insert(field.into(), t.as_str().into());
        if input.both_targets {
            let other = if input.to_user {
                "conversationId"
            } else {
                "receiverId"
            };
            frame.insert(other.into(), t.as_str().into());
        }
    }
    let body = input
        .body
        .as_ref()
        .map(|b| b.repeat(usize::from(input.repeat).max(1)));
    if let Some(b) = &body {
        frame.insert("content".into(), b.as_str().into());
    }
    if let Some(c) = &input.client_id {
        frame.insert("clientId".into(), c.as_str().into());
    }
    let cursors: BTreeMap<String, u64> = input
        .cursors
        .iter()
        .map(|(k, s)| {
            let k = match k {
                Key::AliceBob => alice_bob.to_string(),
                Key::Made(b) => ConversationId::from_bytes(*b).to_string(),
                Key::Upper(b) => ConversationId::from_bytes(*b).to_string().to_uppercase(),
                Key::Text(s) => s.clone(),
            };
            (k, *s)
        })
        .collect();
    if matches!(input.kind, Kind::Sync) || !cursors.is_empty() {
        frame.insert("cursors".into(), json!(cursors));
    }
    // Unknown fields are ignored, unless they collide with a known one (then the frame is
    // not one the oracle below describes: skip the oracle, keep the other checks). The v1
    // names of a send's fields are not ignored: a send using one is refused.
    let known = [
        "type",
        "receiverId",
        "conversationId",
        "content",
        "clientId",
        "cursors",
        "seq",
        "active",
        "watch",
    ];
    let v1_names = ["to", "conversation", "body", "client_id"];
    let mut collided = false;
    let mut v1_used = false;
    for (k, v) in &input.extra {
        collided |= known.contains(&k.as_str());
        v1_used |= v1_names.contains(&k.as_str());
        frame.insert(k.clone(), v.as_str().into());
    }
    let text = Value::Object(frame).to_string();

    let client_ok = input.client_id.as_deref().is_none_or(|c| {
        (1..=64).contains(&c.len()) && c.bytes().all(|b| (0x20..=0x7e).contains(&b))
    });
    let target_ok = !input.both_targets && target_text.as_deref().is_some_and(is_hyphenated_uuid);
    let body_ok = body
        .as_deref()
        .is_some_and(|b| !b.trim().is_empty() && b.chars().count() <= MAX_BODY_CHARS);
    let cursors_ok = cursors.keys().all(|k| is_hyphenated_uuid(k));

    let parsed = parse(&text, MAX_BODY_CHARS);
    count(match &parsed {
        Ok(Command::Send { .. }) => "parse: send".to_owned(),
        Ok(Command::Sync { .. }) => "parse: sync".to_owned(),
        Ok(Command::Ping) => "parse: ping".to_owned(),
        Ok(Command::Change { .. }) => "parse: change".to_owned(),
        Ok(Command::Receipt { .. }) => "parse: receipt".to_owned(),
        Ok(Command::WatchPresence { .. }) => "parse: watchPresence".to_owned(),
        Ok(Command::Typing { .. }) => "parse: typing".to_owned(),
        Err(e) => format!("parse: {}", e.code),
    });
    if !collided {
        let kind = match &input.kind {
            Kind::Send => Some("send"),
            Kind::Sync => Some("sync"),
            Kind::Ping => Some("ping"),
            Kind::Other(s) => Some(s.as_str()),
            Kind::Missing => None,
        };
        let expected_ok = match kind {
            Some("send") => client_ok && target_ok && body_ok && !v1_used,
            Some("sync") => cursors_ok,
            Some("ping") => true,
            // Types this target does not build the fields of: whatever the parser says.
            Some("edit" | "delete" | "read" | "delivered" | "presence" | "typing") => {
                parsed.is_ok()
            }
            _ => false,
        };
        assert_eq!(
            parsed.is_ok(),
            expected_ok,
            "{text} -> {parsed:?} (client {client_ok}, target {target_ok}, body {body_ok}, cursors {cursors_ok})"
        );
        if let Err(e) = &parsed {
            let code = match kind {
                None => "invalid_frame",
                Some(
                    "send" | "sync" | "edit" | "delete" | "read" | "delivered" | "presence"
                    | "typing",
                ) => "validation_failed",
                Some(_) => "unknown_type",
            };
            assert_eq!(e.code, code, "{text}");
        }
    }

    match parsed {
        Ok(Command::Send {
            target,
            body: parsed_body,
            client_id,
        }) => {
            if !collided {
                assert_eq!(Some(parsed_body.as_str()), body.as_deref());
                assert_eq!(
                    client_id.as_ref().map(|c| c.as_str()),
                    input.client_id.as_deref()
                );
            }
            let target_id = match target {
                Target::User(u) => u.to_string(),
                Target::Conversation(c) => c.to_string(),
            };
            if !collided {
                assert_eq!(
                    Some(target_id.clone()),
                    target_text.map(|t| t.to_lowercase())
                );
            }
            // The frames a session would write, from a message with the parsed contents.
            let conversation = match target {
                Target::User(u) => ConversationId::direct(alice, u),
                Target::Conversation(c) => c,
            };
            let event = Event {
                id: EventId::generate(),
                conversation,
                seq: 1,
                sender: alice,
                client_id: client_id.clone(),
                at: Timestamp::now(),
                kind: EventKind::Message(MessageContent::text(parsed_body.clone())),
            };
            check_message_frames(&event, false);

            if input.dispatch {
                dispatch(target, parsed_body, client_id, alice, bob);
            }
        }
        Ok(Command::Sync { cursors: parsed }) => {
            let out: BTreeMap<String, Seq> =
                parsed.iter().map(|(c, s)| (c.to_string(), *s)).collect();
            let v = json(
                &OutFrame::Synced {
                    cursors: out.clone(),
                    more: true,
                }
                .encode(),
                "synced",
            );
            let back: BTreeMap<String, Seq> =
                serde_json::from_value(v["cursors"].clone()).expect("cursors decode");
            assert_eq!(back, out);
            if !collided {
                // Every parsed cursor is one of the given ones (keys lower-cased).
                for (k, s) in &out {
                    assert!(
                        cursors
                            .iter()
                            .any(|(ck, cs)| ck.to_lowercase() == *k && cs == s),
                        "cursor {k}={s} was not in {text}"
                    );
                }
            }
        }
        Ok(Command::Ping) => {
            assert_eq!(json(&OutFrame::Pong.encode(), "pong")["type"], "pong");
        }
        // This target generates only send, sync and ping frames; a random type that
        // happens to name another command has nothing more to check here.
        Ok(
            Command::Change { .. }
            | Command::Receipt { .. }
            | Command::WatchPresence { .. }
            | Command::Typing { .. },
        ) => {}
        Err(e) => {
            assert!(parley_fuzz::FRAME_ERROR_CODES.contains(&e.code), "{e:?}");
            let v = json(
                &OutFrame::Error {
                    code: e.code,
                    message: &e.message,
                    client_id: e.client_id.as_ref(),
                    retry_after_ms: Some(1),
                }
                .encode(),
                "error",
            );
            assert_eq!(v["code"].as_str(), Some(e.code));
            if !collided && input.client_id.is_some() {
                assert_eq!(
                    e.client_id,
                    input.client_id.clone().map(Value::String),
                    "client id not echoed: {text}"
                );
            }
        }
    }
});

/// Encodes a message `event` as the `message` and `ack` frames and decodes them again.
fn check_message_frames(event: &Event, duplicate: bool) {
    let EventKind::Message(content) = &event.kind else {
        panic!("not a message: {event:?}");
    };
    let m = MessageJson::from(event);
    let client_id = event.client_id.as_ref().map(|c| c.as_str());
    for frame in [
        OutFrame::Message { message: m.clone() },
        OutFrame::Ack {
            client_id,
            duplicate,
            message: m,
        },
    ] {
        let v = json(&frame.encode(), "message frame");
        let got = &v["message"];
        assert_eq!(
            got["content"].as_str(),
            Some(content.body.as_str()),
            "body changed"
        );
        assert_eq!(got["clientId"].as_str(), client_id);
        assert_eq!(got["id"].as_str(), Some(event.id.to_string().as_str()));
        assert_eq!(
            got["conversationId"].as_str(),
            Some(event.conversation.to_string().as_str())
        );
        assert_eq!(
            got["sender"].as_str(),
            Some(event.sender.to_string().as_str())
        );
        assert_eq!(
            got["receiver"].as_str(),
            content.receiver.map(|r| r.to_string()).as_deref()
        );
        assert_eq!(got["seq"].as_u64(), Some(event.seq));
        assert_eq!(got["type"], "text");
        if v["type"] == "ack" {
            assert_eq!(v["duplicate"].as_bool(), Some(duplicate));
            assert_eq!(v["clientId"].as_str(), client_id);
        }
    }
}

/// Sends through the real messenger as Alice and checks the outcome against the store.
fn dispatch(
    target: Target,
    body: actors::domain::MessageBody,
    client_id: Option<actors::domain::ClientId>,
    alice: UserId,
    bob: UserId,
) {
    let fx = fixture();
    let alice_bob = ConversationId::direct(alice, bob);
    let request = SendRequest {
        from: alice,
        target,
        kind: EventKind::Message(MessageContent::text(body.clone())),
        client_id: client_id.clone(),
        origin: None,
    };
    let reaches_bob = matches!(target, Target::User(u) if u == bob)
        || matches!(target, Target::Conversation(c) if c == alice_bob);
    fx.rt.block_on(async {
        let first = fx.state.messenger().send(request.clone()).await;
        count(match &first {
            Ok(sent) if sent.duplicate => "send: duplicate".to_owned(),
            Ok(_) => "send: committed".to_owned(),
            Err(e) => format!("send: {e:?}"),
        });
        match (&first, reaches_bob) {
            (Ok(sent), true) => {
                let m = &sent.event;
                assert_eq!(m.conversation, alice_bob);
                assert_eq!(m.sender, alice);
                assert_eq!(m.client_id, client_id);
                assert!(
                    matches!(m.kind, EventKind::Message(_)),
                    "a send committed {m:?}"
                );
                if !sent.duplicate {
                    assert_eq!(
                        m.text().map(|t| t.as_str()),
                        Some(body.as_str()),
                        "committed another body"
                    );
                }
                check_message_frames(m, sent.duplicate);
                // Durable, and read back exactly.
                let stored = fx
                    .store
                    .events(
                        alice_bob,
                        HistoryRange {
                            after: Some(m.seq - 1),
                            before: None,
                            limit: 1,
                            from_newest: false,
                        },
                    )
                    .await
                    .expect("read history");
                assert_eq!(
                    stored.first(),
                    Some(m.as_ref()),
                    "history differs from the ack"
                );
                // A retry with the same client id is a duplicate of this message.
                if client_id.is_some() {
                    let again = fx.state.messenger().send(request).await.expect("retry");
                    assert!(again.duplicate, "a retry was committed twice");
                    assert_eq!(again.event, sent.event);
                }
            }
            (Err(SendError::CannotMessageSelf), false) => {
                assert!(matches!(target, Target::User(u) if u == alice));
            }
            (Err(SendError::RecipientNotFound), false) => {
                assert!(matches!(target, Target::User(_)));
            }
            (Err(SendError::NotParticipant), false) => {
                assert!(matches!(target, Target::Conversation(_)));
            }
            (other, _) => panic!("send to {target:?} (reaches Bob: {reaches_bob}): {other:?}"),
        }
    });
}
