//! Read and delivered receipts: high-water marks, stored, told to the other members as
//! signals, and behind the conversation list's unread counts. Runs on both stores (see
//! `main.rs`).

use std::time::Duration;

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::{TestApp, TestUser, assert_error};

async fn send(app: &TestApp, from: &TestUser, to: &TestUser, content: &str) -> Value {
    let res = app
        .post(
            "/api/messages/send",
            Some(&from.token),
            &json!({"receiverId": to.id, "content": content}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["message"].clone()
}

/// The caller's (unread count, read mark) of the conversation `conv` in their list.
async fn unread(app: &TestApp, who: &TestUser, conv: &str) -> (u64, u64) {
    let list: Value = app
        .get("/api/conversations", Some(&who.token))
        .await
        .json()
        .await
        .unwrap();
    let entry = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == conv)
        .expect("listed")
        .clone();
    (
        entry["unreadCount"].as_u64().unwrap(),
        entry["readSeq"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_read_receipt_reaches_the_sender_and_lowers_the_unread_count() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let first = send(&app, &ada, &bob, "one").await;
    let conv = first["conversationId"].as_str().unwrap().to_owned();
    send(&app, &ada, &bob, "two").await;
    send(&app, &ada, &bob, "three").await;
    assert_eq!(unread(&app, &bob, &conv).await, (3, 0));
    // Her own messages are never unread to Ada.
    assert_eq!(unread(&app, &ada, &conv).await, (0, 0));

    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    b.send(json!({"type": "read", "conversationId": conv, "seq": 2}))
        .await;
    let answer = b.recv().await;
    assert_eq!(answer["type"], "receipt");
    assert_eq!(
        (answer["read"].as_u64(), answer["delivered"].as_u64()),
        (Some(2), Some(2))
    );
    let signal = a.recv().await;
    assert_eq!(signal["type"], "signal");
    assert_eq!(signal["signal"]["kind"], "read");
    assert_eq!(signal["signal"]["seq"], 2);
    assert_eq!(signal["signal"]["userId"], bob.id.as_str());
    assert_eq!(signal["signal"]["conversationId"], conv.as_str());
    assert_eq!(unread(&app, &bob, &conv).await, (1, 2));

    // A stale receipt changes nothing and tells nobody.
    b.send(json!({"type": "read", "conversationId": conv, "seq": 1}))
        .await;
    assert_eq!(b.recv().await["read"], 2);
    assert!(a.try_recv(Duration::from_millis(300)).await.is_none());
    // Delivered below the read mark is stale too; past the end is refused.
    b.send(json!({"type": "delivered", "conversationId": conv, "seq": 1}))
        .await;
    assert_eq!(b.recv().await["delivered"], 2);
    b.send(json!({"type": "read", "conversationId": conv, "seq": 9}))
        .await;
    assert_eq!(b.recv().await["code"], "seq_out_of_range");
    b.send(json!({"type": "read", "conversationId": conv}))
        .await;
    assert_eq!(b.recv().await["code"], "validation_failed");

    // Over REST, the same; and the marks are there for anyone in the conversation.
    let res = app
        .post(
            &format!("/api/conversations/{conv}/receipts"),
            Some(&bob.token),
            &json!({"mark": "delivered", "seq": 3}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["delivered"].as_u64(), body["read"].as_u64()),
        (Some(3), Some(2))
    );
    let signal = a.recv().await;
    assert_eq!(
        (
            signal["signal"]["kind"].as_str(),
            signal["signal"]["seq"].as_u64()
        ),
        (Some("delivered"), Some(3))
    );
    let marks: Value = app
        .get(
            &format!("/api/conversations/{conv}/receipts"),
            Some(&ada.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        marks["receipts"],
        json!([{"userId": bob.id, "delivered": 3, "read": 2}])
    );
}

#[tokio::test]
async fn receipts_are_refused_outside_the_conversation_and_on_bad_input() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Eve").await,
    );
    let first = send(&app, &ada, &bob, "hi").await;
    let conv = first["conversationId"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{conv}/receipts");
    let res = app
        .post(&path, Some(&eve.token), &json!({"mark": "read", "seq": 1}))
        .await;
    assert_error(res, 404, "conversation_not_found").await;
    assert_error(
        app.get(&path, Some(&eve.token)).await,
        404,
        "conversation_not_found",
    )
    .await;
    let res = app
        .post(&path, Some(&bob.token), &json!({"mark": "seen", "seq": 0}))
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert!(body["error"]["fields"]["mark"].is_string());
    assert!(body["error"]["fields"]["seq"].is_string());
    let res = app
        .post(&path, Some(&bob.token), &json!({"mark": "read", "seq": 2}))
        .await;
    assert_error(res, 400, "seq_out_of_range").await;
}
