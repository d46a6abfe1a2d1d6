//! The account itself: changing the password signs the other devices out, deleting the
//! account erases its messages' content and frees its email, and an export hands the
//! user their data a page at a time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::{TestApp, TestUser, assert_error, str_of};

/// Makes `a` and `b` contacts and has each send the other one message.
async fn chat(app: &TestApp, a: &TestUser, b: &TestUser, from_a: &str, from_b: &str) {
    assert_eq!(app.add_contact(&a.token, &b.email).await.status(), 200);
    app.send_rest(&a.token, &b.id, from_a).await;
    app.send_rest(&b.token, &a.id, from_b).await;
}

/// The messages of `me`'s direct history with `other`, oldest first.
async fn history(app: &TestApp, me: &str, other: &str) -> Vec<Value> {
    let res = app.get(&format!("/api/messages/{other}"), Some(me)).await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn changing_the_password_signs_out_every_other_device_and_keeps_this_one() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let laptop = app.login_on(&ada, "Ada's laptop").await;
    let tablet = app.login_on(&ada, "Ada's tablet").await;
    let mut phone_ws = app.connect(&ada.token).await;
    let mut laptop_ws = app.connect(str_of(&laptop, "token")).await;

    let started = Instant::now();
    let res = app
        .change_password(&ada.token, &ada.password, "a new and better passphrase")
        .await;
    assert_eq!(res.status(), 204);
    let (code, reason) = laptop_ws.closed().await;
    assert_eq!(code, 4003, "reason: {reason}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    for other in [&laptop, &tablet] {
        assert_error(app.me(str_of(other, "token")).await, 401, "unauthorized").await;
        assert_error(
            app.refresh(str_of(other, "refreshToken")).await,
            401,
            "unauthorized",
        )
        .await;
    }
    // This device stays signed in, its session and its refresh token too.
    assert_eq!(app.me(&ada.token).await.status(), 200);
    phone_ws.send_to(&bob.id, "still me", "p1").await;
    assert_eq!(phone_ws.recv().await["type"], "ack");
    let sessions = app.sessions(&ada.token).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(app.refresh(&ada.refresh_token).await.status(), 200);
    // The old password no longer logs in; the new one does.
    assert_error(
        app.login(&ada.email, &ada.password).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login(&ada.email, "a new and better passphrase")
            .await
            .status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_current_password_is_403_and_a_weak_new_one_validation_failed_changing_nothing() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let laptop = app.login_on(&ada, "Ada's laptop").await;

    let res = app
        .change_password(&ada.token, "not my password", "a new and better passphrase")
        .await;
    assert_error(res, 403, "wrong_password").await;
    let res = app
        .change_password(&ada.token, &ada.password, "short")
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert!(body["error"]["fields"]["newPassword"].is_string(), "{body}");
    let res = app
        .post("/api/auth/password", Some(&ada.token), &json!({}))
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert!(
        body["error"]["fields"]["currentPassword"].is_string(),
        "{body}"
    );

    assert_eq!(app.me(str_of(&laptop, "token")).await.status(), 200);
    assert_eq!(app.login(&ada.email, &ada.password).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn guessing_the_current_password_slows_down_like_a_login() {
    let Some(app) = STORE
        .spawn_app_with(|c| c.login_failures_per_address = 2)
        .await
    else {
        return;
    };
    let ada = app.new_user("Ada").await;
    for _ in 0..2 {
        let res = app
            .change_password(&ada.token, "guess", "a new and better passphrase")
            .await;
        assert_error(res, 403, "wrong_password").await;
    }
    let res = app
        .change_password(&ada.token, "guess", "a new and better passphrase")
        .await;
    assert_error(res, 429, "rate_limited").await;
    app.stop().await;
}

#[tokio::test]
async fn deleting_the_account_leaves_tombstones_in_others_histories_and_frees_the_email() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    chat(&app, &ada, &bob, "ada's secret plan", "bob's answer").await;
    let mut ada_ws = app.connect(&ada.token).await;

    let res = app.delete_account(&ada.token, &ada.password).await;
    assert_eq!(res.status(), 204);
    let (code, reason) = ada_ws.closed().await;
    assert_eq!(code, 4003, "reason: {reason}");
    assert_error(app.me(&ada.token).await, 401, "unauthorized").await;
    assert_error(app.refresh(&ada.refresh_token).await, 401, "unauthorized").await;
    assert_error(
        app.login(&ada.email, &ada.password).await,
        401,
        "invalid_credentials",
    )
    .await;

    // Bob's history keeps the place of Ada's message, not its content.
    let messages = history(&app, &bob.token, &ada.id).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (
            &messages[0]["sender"],
            &messages[0]["content"],
            &messages[0]["deleted"]
        ),
        (&json!(ada.id), &json!(""), &json!(true))
    );
    assert_eq!(messages[1]["content"], "bob's answer");
    assert!(messages[1].get("deleted").is_none(), "{}", messages[1]);
    // A realtime sync says the same.
    let mut bob_ws = app.connect(&bob.token).await;
    bob_ws.send(json!({"type": "sync", "cursors": {}})).await;
    let synced = bob_ws.recv_until("synced").await;
    let tombstone = synced
        .iter()
        .find(|f| f["type"] == "message" && f["message"]["sender"] == ada.id.as_str())
        .map(|f| &f["message"])
        .expect("Ada's message is replayed");
    assert_eq!(
        (&tombstone["content"], &tombstone["deleted"]),
        (&json!(""), &json!(true))
    );
    assert!(!synced.iter().any(|f| f.to_string().contains("secret plan")));
    // Ada is no longer among Bob's contacts.
    let contacts: Value = app.contacts(&bob.token).await.json().await.unwrap();
    assert!(!contacts.to_string().contains(&ada.id), "{contacts}");

    // The email registers again, as a new account that sees none of the old data.
    let res = app
        .register("Ada", &ada.email, "another good passphrase")
        .await;
    assert_eq!(res.status(), 201);
    let again: Value = res.json().await.unwrap();
    let token = str_of(&again, "token").to_owned();
    assert_ne!(again["user"]["id"], ada.id.as_str());
    let conversations: Value = app
        .get("/api/conversations", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(conversations["conversations"], json!([]));
    let contacts: Value = app.contacts(&token).await.json().await.unwrap();
    assert!(!contacts.to_string().contains(&bob.id), "{contacts}");
    assert!(history(&app, &token, &bob.id).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn erased_content_stays_erased_after_a_restart() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    chat(&app, &ada, &bob, "ada's secret plan", "bob's answer").await;
    assert_eq!(
        app.delete_account(&ada.token, &ada.password).await.status(),
        204
    );
    let app = app.restart().await;
    let messages = history(&app, &bob.token, &ada.id).await;
    assert_eq!(
        (&messages[0]["content"], &messages[0]["deleted"]),
        (&json!(""), &json!(true))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_password_deletes_nothing() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    assert_error(
        app.delete_account(&ada.token, "not my password").await,
        403,
        "wrong_password",
    )
    .await;
    let res = app
        .delete("/api/auth/account", Some(&ada.token), Some(&json!({})))
        .await;
    assert_error(res, 400, "validation_failed").await;
    let res = app
        .delete(
            "/api/auth/account",
            None,
            Some(&json!({"password": ada.password})),
        )
        .await;
    assert_error(res, 401, "unauthorized").await;
    assert_eq!(app.me(&ada.token).await.status(), 200);
    assert_eq!(app.login(&ada.email, &ada.password).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn an_export_holds_the_users_data_in_bounded_pages() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let cy = app.new_user("Cy").await;
    chat(&app, &ada, &bob, "hi Bob", "hi Ada").await;
    // Enough for a second page (500 a page), sent over one session.
    let mut ws = app.connect(&ada.token).await;
    for i in 0..510 {
        ws.send_to(&cy.id, &format!("note {i}"), &format!("n{i}"))
            .await;
    }
    let mut acked = 0;
    while acked < 510 {
        if ws.recv().await["type"] == "ack" {
            acked += 1;
        }
    }

    let res = app.export(&ada.token, None).await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["account"]["email"], ada.email.as_str());
    assert!(
        first["account"]["createdAt"].is_string(),
        "{}",
        first["account"]
    );
    assert_eq!(first["contacts"][0]["id"], bob.id.as_str());
    assert_eq!(first["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(first["sessions"][0]["current"], true);
    assert_eq!(first["messages"].as_array().unwrap().len(), 500);
    let cursor = str_of(&first, "nextCursor").to_owned();

    let res = app.export(&ada.token, Some(&cursor)).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert!(
        second.get("account").is_none(),
        "only the first page has the account"
    );
    assert_eq!(second["nextCursor"], Value::Null);
    let mut all: Vec<Value> = first["messages"].as_array().unwrap().clone();
    all.extend(second["messages"].as_array().unwrap().iter().cloned());
    assert_eq!(all.len(), 512, "everything Ada sent and received, once");
    assert!(all.iter().any(|m| m["content"] == "hi Ada"));
    assert!(all.iter().any(|m| m["content"] == "note 509"));
    let ids: std::collections::BTreeSet<&str> = all.iter().map(|m| str_of(m, "id")).collect();
    assert_eq!(ids.len(), 512);

    // Bob's export has none of Ada's notes to Cy, and Ada's cursor is nothing to him.
    let bobs: Value = app.export(&bob.token, None).await.json().await.unwrap();
    assert_eq!(bobs["messages"].as_array().unwrap().len(), 2);
    assert_error(
        app.export(&bob.token, Some(&cursor)).await,
        404,
        "conversation_not_found",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn exports_are_rate_limited_per_user_and_refuse_a_bad_cursor() {
    let Some(app) = STORE
        .spawn_app_with(|c| c.export_pages_per_minute = 2)
        .await
    else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let body = assert_error(
        app.export(&ada.token, Some("nonsense")).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(body["error"]["fields"]["cursor"].is_string(), "{body}");
    assert_eq!(app.export(&ada.token, None).await.status(), 200);
    assert_eq!(app.export(&ada.token, None).await.status(), 200);
    let body = assert_error(app.export(&ada.token, None).await, 429, "rate_limited").await;
    assert!(body["error"]["retryAfterMs"].as_u64().is_some(), "{body}");
    // Per user: Bob is not affected.
    assert_eq!(app.export(&bob.token, None).await.status(), 200);
    app.stop().await;
}
