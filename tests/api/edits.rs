//! Editing and deleting messages over REST and WebSocket: the edit or delete is an
//! event of the stream, delivered live; history shows the message edited (`editedAt`)
//! or as a tombstone (`deleted: true`, its text erased); who may do what. Runs on both
//! stores (see `main.rs`).

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

async fn edit(
    app: &TestApp,
    by: &TestUser,
    conv: &str,
    seq: u64,
    content: &str,
) -> reqwest::Response {
    edit_with(app, by, conv, seq, &json!({"content": content})).await
}

/// An edit with a body of the test's own (a client id, say).
async fn edit_with(
    app: &TestApp,
    by: &TestUser,
    conv: &str,
    seq: u64,
    body: &Value,
) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/api/conversations/{conv}/messages/{seq}")))
        .bearer_auth(&by.token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, by: &TestUser, conv: &str, seq: u64) -> reqwest::Response {
    app.http
        .delete(app.url(&format!("/api/conversations/{conv}/messages/{seq}")))
        .bearer_auth(&by.token)
        .send()
        .await
        .unwrap()
}

async fn messages(app: &TestApp, who: &TestUser, conv: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/api/conversations/{conv}/messages?limit=100"),
            Some(&who.token),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_sender_edits_their_message_and_everyone_sees_the_new_text() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let first = send(&app, &ada, &bob, "helo Bob").await;
    let conv = first["conversationId"].as_str().unwrap().to_owned();
    let mut b = app.connect(&bob.token).await;

    let res = edit(&app, &ada, &conv, 1, "hello Bob").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"]["edits"], 1);
    assert_eq!(body["message"]["seq"], 2);
    // Bob gets the edit live, as an event of the stream.
    let live = b.recv().await;
    assert_eq!(live["message"]["edits"], 1);
    assert_eq!(live["message"]["content"], "hello Bob");

    // History lists the message once, with its new text and when it was edited.
    let history = messages(&app, &bob, &conv).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["content"], "hello Bob");
    assert_eq!(history[0]["seq"], 1);
    assert_eq!(history[0]["editedAt"], body["message"]["createdAt"]);
    assert!(history[0].get("deleted").is_none());

    // Bob may not edit Ada's words, nor may anyone edit what does not exist.
    assert_error(
        edit(&app, &bob, &conv, 1, "Ada is wrong").await,
        403,
        "not_allowed",
    )
    .await;
    assert_error(
        edit(&app, &ada, &conv, 2, "an edit of an edit").await,
        404,
        "message_not_found",
    )
    .await;
    assert_error(
        edit(&app, &ada, &conv, 99, "nothing").await,
        404,
        "message_not_found",
    )
    .await;
    let res = edit(&app, &ada, &conv, 1, "   ").await;
    assert_error(res, 400, "validation_failed").await;
    let eve = app.new_user("Eve").await;
    assert_error(
        edit(&app, &eve, &conv, 1, "hi").await,
        404,
        "conversation_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_message_is_a_tombstone_whose_text_is_gone() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let first = send(&app, &ada, &bob, "my password is hunter2").await;
    let conv = first["conversationId"].as_str().unwrap().to_owned();
    send(&app, &bob, &ada, "oops").await;
    assert_eq!(
        edit(&app, &ada, &conv, 1, "my password is hunter3")
            .await
            .status(),
        200
    );
    // Bob may not delete Ada's message in their 1:1.
    assert_error(delete(&app, &bob, &conv, 1).await, 403, "not_allowed").await;

    let mut b = app.connect(&bob.token).await;
    let res = delete(&app, &ada, &conv, 1).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"]["deletes"], 1);
    assert_eq!(b.recv().await["message"]["deletes"], 1);

    let history = messages(&app, &bob, &conv).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["deleted"], true);
    assert_eq!(history[0]["content"], "");
    assert_eq!(history[0]["sender"], ada.id.as_str());
    assert_eq!(history[1]["content"], "oops");
    // A sync from nothing replays the stream; no frame holds the deleted text.
    let mut b2 = app.connect(&bob.token).await;
    b2.send(json!({"type": "sync", "cursors": {}})).await;
    let frames = b2.recv_until("synced").await;
    let all = serde_json::to_string(&frames).unwrap();
    assert!(!all.contains("hunter"), "{all}");
    assert_eq!(
        frames.len(),
        5,
        "message, reply, edit, delete, synced: {all}"
    );

    // A deleted message can be neither edited nor deleted again.
    assert_error(
        edit(&app, &ada, &conv, 1, "undo").await,
        409,
        "message_deleted",
    )
    .await;
    assert_error(delete(&app, &ada, &conv, 1).await, 409, "message_deleted").await;
    // Data on disk: the fjall store's files hold the text no more is checked by the
    // store conformance suite (the stored body is empty).
}

/// A retry's answer is the original's: an edit whose answer was lost, retried with its
/// client id after the message was deleted, gets its edit back, not 409.
#[tokio::test]
async fn a_retried_edit_gets_the_original_answer_after_the_message_is_deleted() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let first = send(&app, &ada, &bob, "typo").await;
    let conv = first["conversationId"].as_str().unwrap().to_owned();
    let with_id = json!({"content": "fixed", "clientId": "edit-1"});
    let res = edit_with(&app, &ada, &conv, 1, &with_id).await;
    assert_eq!(res.status(), 200);
    let original: Value = res.json().await.unwrap();
    assert_eq!(original["duplicate"], false);
    assert_eq!(delete(&app, &ada, &conv, 1).await.status(), 200);

    let res = edit_with(&app, &ada, &conv, 1, &with_id).await;
    assert_eq!(res.status(), 200, "a retry is not a new edit");
    let retried: Value = res.json().await.unwrap();
    assert_eq!(retried["duplicate"], true);
    assert_eq!(retried["message"]["seq"], original["message"]["seq"]);
    assert_eq!(retried["message"]["id"], original["message"]["id"]);
    // The delete erased the edit's text too; the retry does not bring it back.
    assert_ne!(retried["message"]["content"], "fixed");
    // A new edit of the deleted message is still refused.
    assert_error(
        edit(&app, &ada, &conv, 1, "again").await,
        409,
        "message_deleted",
    )
    .await;
}

#[tokio::test]
async fn edits_and_deletes_go_over_the_websocket_with_acks_and_error_frames() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    a.send_to(&bob.id, "first", "c1").await;
    let ack = a.recv().await;
    let conv = ack["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.recv().await["message"]["seq"], 1);

    a.send(json!({"type": "edit", "conversationId": conv, "seq": 1, "content": "first!", "clientId": "e1"}))
        .await;
    let ack = a.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["clientId"], "e1");
    assert_eq!(ack["message"]["edits"], 1);
    assert_eq!(b.recv().await["message"]["content"], "first!");

    a.send(json!({"type": "delete", "conversationId": conv, "seq": 1, "clientId": "d1"}))
        .await;
    assert_eq!(a.recv().await["message"]["deletes"], 1);
    assert_eq!(b.recv().await["message"]["deletes"], 1);

    // Bad frames answer with an error frame; the connection stays open.
    a.send(json!({"type": "edit", "conversationId": conv, "content": "x", "clientId": "e2"}))
        .await;
    let err = a.recv().await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("validation_failed"))
    );
    a.send(
        json!({"type": "edit", "conversationId": conv, "seq": 1, "content": "x", "clientId": "e3"}),
    )
    .await;
    let err = a.recv().await;
    assert_eq!(err["code"], "message_deleted");
    assert_eq!(err["clientId"], "e3");
    b.send(json!({"type": "delete", "conversationId": conv, "seq": 3}))
        .await;
    assert_eq!(b.recv().await["code"], "message_not_found");
}

#[tokio::test]
async fn an_edit_racing_a_delete_is_decided_in_one_order_and_the_text_is_gone_either_way() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    for round in 0..5 {
        let sent = send(&app, &ada, &bob, &format!("draft {round}")).await;
        let conv = sent["conversationId"].as_str().unwrap().to_owned();
        let target = sent["seq"].as_u64().unwrap();
        let secret = format!("secret {round}");
        let (edited, deleted) = tokio::join!(
            edit(&app, &ada, &conv, target, &secret),
            delete(&app, &ada, &conv, target)
        );
        assert_eq!(deleted.status(), 200, "the delete always wins its turn");
        let deleted: Value = deleted.json().await.unwrap();
        match edited.status().as_u16() {
            // The edit came first: it is sequenced before the delete.
            200 => {
                let edited: Value = edited.json().await.unwrap();
                assert!(edited["message"]["seq"].as_u64() < deleted["message"]["seq"].as_u64());
            }
            // The delete came first: the edit is refused.
            _ => {
                assert_error(edited, 409, "message_deleted").await;
            }
        }
        // Either way the message is a tombstone and no text of it is left.
        let history = messages(&app, &bob, &conv).await;
        let kept = history
            .iter()
            .find(|m| m["seq"].as_u64() == Some(target))
            .expect("the message keeps its place");
        assert_eq!(kept["deleted"], true);
        assert_eq!(kept["content"], "");
        assert!(!history.iter().any(|m| m.to_string().contains("secret")));
    }
}

#[tokio::test]
async fn group_admins_may_delete_anyones_message_and_members_only_their_own() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let res = app
        .post(
            "/api/conversations",
            Some(&ada.token),
            &json!({"name": "Mods", "memberIds": [bob.id, cy.id]}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    let group = body["conversation"]["id"].as_str().unwrap().to_owned();
    for (who, text) in [(&bob, "spam"), (&cy, "more spam")] {
        let res = app
            .post(
                "/api/messages/send",
                Some(&who.token),
                &json!({"conversationId": group, "content": text}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    // Seqs: 1 created, 2 Bob's, 3 Cy's.
    assert_error(delete(&app, &cy, &group, 2).await, 403, "not_allowed").await;
    assert_eq!(delete(&app, &cy, &group, 3).await.status(), 200);
    assert_eq!(delete(&app, &ada, &group, 2).await.status(), 200);
    // The creation event is no message.
    assert_error(
        delete(&app, &ada, &group, 1).await,
        404,
        "message_not_found",
    )
    .await;
    let history = messages(&app, &bob, &group).await;
    let deleted: Vec<bool> = history.iter().map(|m| m["deleted"] == true).collect();
    assert_eq!(deleted, [false, true, true]);
}
