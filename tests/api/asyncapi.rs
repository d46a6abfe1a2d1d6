//! The AsyncAPI document of the WebSocket protocol (`docs/asyncapi.json`) describes the
//! frames the server really sends: each frame a live session produces is checked
//! against its payload schema (required fields, no undocumented ones, types), and the
//! document names exactly the frame types of docs/protocol.md.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::spawn_app;

const ASYNCAPI: &str = include_str!("../../docs/asyncapi.json");
const PROTOCOL: &str = include_str!("../../docs/protocol.md");

fn document() -> Value {
    serde_json::from_str(ASYNCAPI).expect("docs/asyncapi.json is JSON")
}

/// The schema a `$ref` points at.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let mut at = doc;
            for part in r.trim_start_matches("#/").split('/') {
                at = &at[part];
            }
            assert!(!at.is_null(), "{r} resolves");
            at
        }
        None => schema,
    }
}

/// Checks `value` against the subset of JSON Schema the document uses.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(kind) = schema["type"].as_str() {
        let ok = match kind {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            _ => true,
        };
        assert!(ok, "{at}: {value} is not {kind}");
    }
    if let Some(c) = schema.get("const") {
        assert_eq!(value, c, "{at}");
    }
    if let Some(options) = schema["enum"].as_array() {
        assert!(options.contains(value), "{at}: {value} not in {options:?}");
    }
    if let Some(min) = schema["minimum"].as_u64() {
        assert!(
            value.as_u64().is_some_and(|v| v >= min),
            "{at}: {value} < {min}"
        );
    }
    let Some(object) = value.as_object() else {
        return;
    };
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().unwrap();
        assert!(
            object.contains_key(key),
            "{at}: {key} is required in {value}"
        );
    }
    let properties = schema["properties"].as_object();
    for (key, v) in object {
        match properties.and_then(|p| p.get(key)) {
            Some(s) => check(doc, s, v, &format!("{at}.{key}")),
            None => match &schema["additionalProperties"] {
                Value::Bool(false) => panic!("{at}: {key} is not documented in {value}"),
                Value::Object(_) => check(doc, &schema["additionalProperties"], v, at),
                _ => {}
            },
        }
    }
}

fn check_frame(doc: &Value, frame: &Value) {
    let kind = frame["type"].as_str().expect("a frame has a type");
    let message = &doc["components"]["messages"][kind];
    assert!(message.is_object(), "the {kind} frame is documented");
    check(doc, &message["payload"], frame, kind);
}

#[test]
fn the_document_names_exactly_the_frames_of_the_protocol_reference() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["session"]["address"], "/ws");
    let documented: BTreeSet<&str> = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // `### \`name\`` headings under "Client frames" and "Server frames".
    let referenced: BTreeSet<&str> = PROTOCOL
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`'))
        .collect();
    assert_eq!(documented, referenced);
    // Every example in the document is valid against its own payload.
    for message in doc["components"]["messages"].as_object().unwrap().values() {
        for example in message["examples"].as_array().into_iter().flatten() {
            check(&doc, &message["payload"], &example["payload"], "example");
        }
    }
}

#[tokio::test]
async fn every_frame_a_live_session_sends_matches_its_documented_payload() {
    let doc = document();
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let mut seen = BTreeSet::new();
    let mut record = |frame: &Value| {
        check_frame(&doc, frame);
        seen.insert(frame["type"].as_str().unwrap().to_owned());
    };

    let mut to_bob = app.connect_raw(&bob.token).await.unwrap();
    record(&to_bob.recv().await); // ready
    let mut from_ada = app.connect_raw(&ada.token).await.unwrap();
    record(&from_ada.recv().await);
    from_ada.send(json!({"type": "ping"})).await;
    record(&from_ada.recv().await); // pong
    from_ada.send_to(&bob.id, "", "bad-1").await;
    record(&from_ada.recv().await); // error, with the clientId echoed
    from_ada.send_to(&bob.id, "hello", "k-1").await;
    record(&from_ada.recv().await); // ack
    from_ada.send_to(&bob.id, "hello", "k-1").await;
    record(&from_ada.recv().await); // ack, duplicate
    record(&to_bob.recv().await); // message
    to_bob.send(json!({"type": "sync", "cursors": {}})).await;
    for frame in to_bob.recv_until("synced").await {
        record(&frame);
    }
    let expected: BTreeSet<String> = ["ready", "pong", "error", "ack", "message", "synced"]
        .map(String::from)
        .into();
    // `signal` has no client frame that produces it yet; its schema is checked by the
    // examples test and by the server's own unit tests of the encoding.
    assert_eq!(seen, expected);
}
