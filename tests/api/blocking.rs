//! Blocking: the blocked user cannot message, call, add, or group the blocker, nor see
//! their presence and typing, and is never told why; the blocker is unaffected; add-
//! contact is rate-limited. Runs on both stores (see `main.rs`).

use std::time::Duration;

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::{TestApp, TestUser, assert_error};

async fn block(app: &TestApp, by: &TestUser, whom: &str) -> reqwest::Response {
    app.post(
        &format!("/api/users/{whom}/block"),
        Some(&by.token),
        &json!({}),
    )
    .await
}

async fn send(app: &TestApp, from: &TestUser, to: &TestUser, content: &str) -> reqwest::Response {
    app.post(
        "/api/messages/send",
        Some(&from.token),
        &json!({"receiverId": to.id, "content": content}),
    )
    .await
}

#[tokio::test]
async fn a_blocked_user_cannot_reach_the_blocker_and_is_not_told_why() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    // Before the block: a direct conversation and a group of all three.
    let res = send(&app, &ada, &bob, "hi Bob").await;
    let body: Value = res.json().await.unwrap();
    let direct = body["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post(
            "/api/conversations",
            Some(&cy.token),
            &json!({"name": "Three", "memberIds": [ada.id, bob.id]}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    let group = body["conversation"]["id"].as_str().unwrap().to_owned();

    let res = block(&app, &bob, &ada.id).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["blocked"], true);

    // Messages, by user and by conversation, over REST and WebSocket.
    assert_error(send(&app, &ada, &bob, "hello?").await, 403, "cannot_reach").await;
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"conversationId": direct, "content": "hello??"}),
        )
        .await;
    assert_error(res, 403, "cannot_reach").await;
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    a.send_to(&bob.id, "ws hello", "w1").await;
    let err = a.recv_until("error").await;
    assert_eq!(err.last().unwrap()["code"], "cannot_reach");
    // A call: Bob is online, but to Ada he seems not to be.
    let res = app
        .post(
            "/api/call/start",
            Some(&ada.token),
            &json!({"receiverId": bob.id, "signalData": {"sdp": "x"}}),
        )
        .await;
    assert_error(res, 404, "receiver_offline").await;
    // Adding Bob as a contact, or into a new group: no such person, as far as Ada knows.
    assert_error(
        app.add_contact(&ada.token, &bob.email).await,
        404,
        "user_not_found",
    )
    .await;
    let res = app
        .post(
            "/api/conversations",
            Some(&ada.token),
            &json!({"name": "Trap", "memberIds": [bob.id]}),
        )
        .await;
    assert_error(res, 404, "member_not_found").await;
    // Presence: neither sees the other; Cy still sees both.
    let seen: Value = app
        .get("/api/presence", Some(&ada.token))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = seen["presence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&bob.id.as_str()), "{seen}");
    assert!(ids.contains(&cy.id.as_str()), "{seen}");
    // Typing in the shared group: Cy sees Bob type, Ada does not.
    let mut c = app.connect(&cy.token).await;
    while c.try_recv(Duration::from_millis(100)).await.is_some() {}
    while a.try_recv(Duration::from_millis(100)).await.is_some() {}
    b.send(json!({"type": "typing", "conversationId": group}))
        .await;
    assert_eq!(b.recv_until("ok").await.last().unwrap()["type"], "ok");
    let typing = c.recv().await;
    assert_eq!(typing["signal"]["userId"], bob.id.as_str());
    assert!(a.try_recv(Duration::from_millis(300)).await.is_none());
    // The group itself goes on: Ada's message there reaches Bob.
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"conversationId": group, "content": "to all"}),
        )
        .await;
    assert_eq!(res.status(), 201);

    // One-way: Bob still reaches Ada.
    assert_eq!(send(&app, &bob, &ada, "I can").await.status(), 201);
    let list: Value = app
        .get("/api/users/blocked", Some(&bob.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["blocked"][0]["id"], ada.id.as_str());

    // Unblocked: Ada reaches Bob again.
    let res = app
        .http
        .delete(app.url(&format!("/api/users/{}/block", ada.id)))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(send(&app, &ada, &bob, "again").await.status(), 201);
    let list: Value = app
        .get("/api/users/blocked", Some(&bob.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["blocked"], json!([]));
}

#[tokio::test]
async fn bad_blocks_are_refused_and_adding_contacts_is_rate_limited() {
    let Some(app) = STORE
        .spawn_app_with(|c| c.contact_adds_per_minute = 3)
        .await
    else {
        return;
    };
    let ada = app.new_user("Ada").await;
    assert_error(block(&app, &ada, &ada.id).await, 400, "cannot_block_self").await;
    let stranger = "0190a8e0-0000-7000-8000-000000000001";
    let body = assert_error(block(&app, &ada, stranger).await, 404, "user_not_found").await;
    // An id names nobody: the answer speaks of a user, not of an email.
    assert_eq!(body["message"], "User not found");
    assert_error(block(&app, &ada, "nope").await, 404, "user_not_found").await;
    // Three lookups a minute, whether the emails exist or not.
    for i in 0..3 {
        let res = app
            .add_contact(&ada.token, &format!("nobody{i}@example.com"))
            .await;
        assert_eq!(res.status(), 404);
    }
    let res = app.add_contact(&ada.token, "nobody9@example.com").await;
    assert_error(res, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_user_cannot_open_more_conversations_than_are_answered() {
    let Some(app) = STORE
        .spawn_app_with(|c| c.max_unanswered_conversations = 2)
        .await
    else {
        return;
    };
    let spammer = app.new_user("Sam").await;
    let (a, b, c) = (
        app.new_user("A").await,
        app.new_user("B").await,
        app.new_user("C").await,
    );
    assert_eq!(send(&app, &spammer, &a, "buy now").await.status(), 201);
    assert_eq!(send(&app, &spammer, &b, "buy now").await.status(), 201);
    // Two openings nobody answered: a third is refused, the open ones go on.
    assert_error(
        send(&app, &spammer, &c, "buy now").await,
        409,
        "too_many_unanswered",
    )
    .await;
    assert_eq!(send(&app, &spammer, &a, "really").await.status(), 201);
    // A writes back: one opening is answered, so one more may be opened.
    assert_eq!(send(&app, &a, &spammer, "no thanks").await.status(), 201);
    assert_eq!(send(&app, &spammer, &c, "buy now").await.status(), 201);
    // Conversations the others opened are not the spammer's openings.
    let d = app.new_user("D").await;
    assert_eq!(send(&app, &d, &spammer, "hello").await.status(), 201);
    assert_eq!(send(&app, &spammer, &d, "hi").await.status(), 201);
}
