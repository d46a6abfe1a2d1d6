//! The WebSocket frame decoder, `parley::realtime::protocol::parse`, on raw text: the input as
//! UTF-8 when it is, and always its lossy conversion (what a client's invalid bytes would
//! look like had they got past the transport's UTF-8 check).
//!
//! Invariants, for every input:
//! - `parse` returns (no panic, no hang);
//! - `Ok(Send)`: the body has 1..=limit chars and is not blank; a client id has 1..=64
//!   printable ASCII characters;
//! - `Err`: the code is one of the documented ones and the message is not empty; malformed
//!   JSON echoes no client id; an echoed client id is the frame's own `clientId` value
//!   (`malformed_json` iff no JSON value, but see the `1e400` note below);
//! - every server frame built from the result (`message`/`ack`, `synced`, `pong`,
//!   `error`) encodes to valid JSON that decodes back to the same fields.

#![no_main]

use std::collections::BTreeMap;

use actors::Target;
use actors::domain::{
    ConversationId, Event, EventId, EventKind, MessageContent, Timestamp, UserId,
};
use libfuzzer_sys::fuzz_target;
use parley::realtime::protocol::{Command, OutFrame, parse};
use parley::wire::MessageJson;
use parley_fuzz::{FRAME_ERROR_CODES, MAX_BODY_CHARS, json, same_json};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text, MAX_BODY_CHARS);
        // A tiny limit reaches the too-long path with short inputs.
        check(text, 3);
    }
    let lossy = String::from_utf8_lossy(data);
    check(&lossy, MAX_BODY_CHARS);
});

fn check(text: &str, max: usize) {
    match parse(text, max) {
        Ok(Command::Send {
            target,
            body,
            client_id,
        }) => {
            let b = body.as_str();
            let chars = b.chars().count();
            assert!(
                (1..=max).contains(&chars),
                "body of {chars} chars accepted (limit {max})"
            );
            assert!(!b.trim().is_empty(), "blank body accepted: {b:?}");
            if let Some(c) = &client_id {
                let c = c.as_str();
                assert!(
                    (1..=64).contains(&c.len()),
                    "client id of {} bytes",
                    c.len()
                );
                assert!(
                    c.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                    "client id {c:?}"
                );
            }
            let conversation = match target {
                Target::User(u) => ConversationId::direct(u, UserId::from_bytes([1; 16])),
                Target::Conversation(c) => c,
            };
            let event = Event {
                id: EventId::from_bytes([2; 16]),
                conversation,
                seq: 1,
                sender: UserId::from_bytes([3; 16]),
                client_id: client_id.clone(),
                at: Timestamp::from_millis(1_700_000_000_000),
                kind: EventKind::Message(MessageContent::text(body.clone())),
            };
            let m = MessageJson::from(&event);
            for frame in [
                OutFrame::Message { message: m.clone() },
                OutFrame::Ack {
                    client_id: client_id.as_ref().map(|c| c.as_str()),
                    duplicate: false,
                    message: m,
                },
            ] {
                let v = json(&frame.encode(), "a message frame");
                assert_eq!(v["message"]["content"].as_str(), Some(b), "body changed");
                assert_eq!(v["message"]["type"], "text");
            }
        }
        Ok(Command::Sync { cursors }) => {
            let cursors: BTreeMap<String, u64> =
                cursors.iter().map(|(c, s)| (c.to_string(), *s)).collect();
            let v = json(
                &OutFrame::Synced {
                    cursors: cursors.clone(),
                    more: false,
                }
                .encode(),
                "a synced frame",
            );
            let back: BTreeMap<String, u64> =
                serde_json::from_value(v["cursors"].clone()).expect("cursors decode");
            assert_eq!(back, cursors);
        }
        Ok(Command::Change {
            body, client_id, ..
        }) => {
            // An edit's text and retry key hold to the same bounds as a send's.
            if let Some(b) = &body {
                let chars = b.as_str().chars().count();
                assert!((1..=max).contains(&chars), "edit of {chars} chars accepted");
                assert!(!b.as_str().trim().is_empty(), "blank edit accepted");
            }
            if let Some(c) = &client_id {
                let c = c.as_str();
                assert!(
                    (1..=64).contains(&c.len()) && c.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                    "client id {c:?}"
                );
            }
        }
        // Receipts, presence and typing carry only ids, a mark and flags, which their
        // types check when parsed; the API tests cover what each does.
        Ok(Command::Receipt { .. } | Command::WatchPresence { .. } | Command::Typing { .. }) => {}
        Ok(Command::Ping) => {
            let v = json(&OutFrame::Pong.encode(), "a pong frame");
            assert_eq!(v["type"], "pong");
        }
        Err(e) => {
            assert!(
                FRAME_ERROR_CODES.contains(&e.code),
                "undocumented code {:?} for {text:?}",
                e.code
            );
            assert!(!e.message.is_empty(), "empty message for {text:?}");
            // `malformed_json` iff the text is no JSON value, with one exception: a number
            // out of f64's range (`1e400`) is valid JSON that serde_json only refuses when
            // it builds a `Value`, not when it skips an unknown field.
            let value: Option<Value> = serde_json::from_str(text).ok();
            if e.code == "malformed_json" {
                assert!(value.is_none(), "valid JSON called malformed: {text:?}");
                assert_eq!(e.client_id, None);
            }
            if let Some(v) = &value {
                assert_ne!(e.code, "malformed_json", "{text:?}");
                if let Some(echoed) = &e.client_id {
                    assert_eq!(Some(echoed), v.get("clientId"), "echoed another id");
                }
            } else if let Some(echoed) = &e.client_id {
                // Only the frame's own (string) client id can be echoed then.
                assert!(echoed.is_string(), "echoed {echoed} from {text:?}");
            }
            let v = json(
                &OutFrame::Error {
                    code: e.code,
                    message: &e.message,
                    client_id: e.client_id.as_ref(),
                    retry_after_ms: None,
                }
                .encode(),
                "an error frame",
            );
            assert_eq!(v["code"].as_str(), Some(e.code));
            assert_eq!(v["message"].as_str(), Some(e.message.as_str()));
            match (v.get("clientId"), &e.client_id) {
                (None, None) => {}
                (Some(a), Some(b)) => assert!(same_json(a, b), "echoed {a} for {b}"),
                (a, b) => panic!("client id {a:?} in the frame, {b:?} in the error"),
            }
        }
    }
}
