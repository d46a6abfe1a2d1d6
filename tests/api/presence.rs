//! Presence: online, offline and last seen, told to contacts and co-members only, as
//! signals; the state by REST; a hidden last seen. Runs on both stores (see `main.rs`).

use std::time::Duration;

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::{TestApp, TestUser, WsClient, assert_error};

async fn presence_of(app: &TestApp, viewer: &TestUser, user: &TestUser) -> Option<Value> {
    let res = app.get("/api/presence", Some(&viewer.token)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["presence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["userId"] == user.id.as_str())
        .cloned()
}

/// The next presence signal about `user`, skipping any other frame.
async fn next_presence(ws: &mut WsClient, user: &TestUser) -> Value {
    loop {
        let frame = ws.recv().await;
        if frame["signal"]["kind"] == "presence" && frame["signal"]["userId"] == user.id.as_str() {
            return frame["signal"].clone();
        }
    }
}

/// Asks for presence signals on this session (they are off by default).
async fn watch(ws: &mut WsClient) {
    ws.send(json!({"type": "presence"})).await;
    assert_eq!(ws.recv_until("ok").await.last().unwrap()["type"], "ok");
}

async fn set_hidden(app: &TestApp, user: &TestUser, hide: bool) {
    let res = app
        .http
        .patch(app.url("/api/presence"))
        .bearer_auth(&user.token)
        .json(&json!({"hideLastSeen": hide}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn contacts_and_co_members_see_online_offline_and_last_seen_and_nobody_else() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
        app.new_user("Eve").await,
    );
    assert_eq!(app.add_contact(&ada.token, &bob.email).await.status(), 200);
    let res = app
        .post(
            "/api/conversations",
            Some(&cy.token),
            &json!({"name": "Club", "memberIds": [bob.id]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mut a = app.connect(&ada.token).await;
    let mut c = app.connect(&cy.token).await;
    let mut e = app.connect(&eve.token).await;
    // A session that does not ask hears no presence at all.
    let mut quiet = app.connect(&ada.token).await;
    for ws in [&mut a, &mut c, &mut e] {
        watch(ws).await;
    }

    let b = app.connect(&bob.token).await;
    for ws in [&mut a, &mut c] {
        let online = next_presence(ws, &bob).await;
        assert_eq!(online["online"], true);
        assert!(online.get("conversationId").is_none());
    }
    assert_eq!(presence_of(&app, &ada, &bob).await.unwrap()["online"], true);

    drop(b);
    let offline = next_presence(&mut a, &bob).await;
    assert_eq!(offline["online"], false);
    let last_seen = offline["lastSeen"]
        .as_str()
        .expect("a last seen time")
        .to_owned();
    assert_eq!(
        next_presence(&mut c, &bob).await["lastSeen"],
        last_seen.as_str()
    );
    // The state by REST, after the fact.
    let state = presence_of(&app, &cy, &bob).await.unwrap();
    assert_eq!(state["online"], false);
    assert_eq!(state["lastSeen"], last_seen.as_str());

    // Eve shares nothing with Bob: no signal, nothing by REST.
    let mut saw = Vec::new();
    while let Some(f) = e.try_recv(Duration::from_millis(200)).await {
        saw.push(f);
    }
    assert!(
        saw.iter().all(|f| f["signal"]["userId"] != bob.id.as_str()),
        "{saw:?}"
    );
    assert!(presence_of(&app, &eve, &bob).await.is_none());
    let mut heard = Vec::new();
    while let Some(f) = quiet.try_recv(Duration::from_millis(100)).await {
        heard.push(f);
    }
    assert!(heard.is_empty(), "{heard:?}");

    // Bob hides his last seen: online and offline still show, the time does not.
    set_hidden(&app, &bob, true).await;
    assert!(
        presence_of(&app, &ada, &bob)
            .await
            .unwrap()
            .get("lastSeen")
            .is_none()
    );
    let b = app.connect(&bob.token).await;
    assert_eq!(next_presence(&mut a, &bob).await["online"], true);
    drop(b);
    let offline = next_presence(&mut a, &bob).await;
    assert_eq!(offline["online"], false);
    assert!(offline.get("lastSeen").is_none(), "{offline}");
    set_hidden(&app, &bob, false).await;
    assert!(presence_of(&app, &ada, &bob).await.unwrap()["lastSeen"].is_string());
}

#[tokio::test]
async fn a_second_tab_is_no_news_and_bad_settings_are_refused() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    assert_eq!(app.add_contact(&ada.token, &bob.email).await.status(), 200);
    let mut a = app.connect(&ada.token).await;
    watch(&mut a).await;
    let _b1 = app.connect(&bob.token).await;
    assert_eq!(next_presence(&mut a, &bob).await["online"], true);
    let b2 = app.connect(&bob.token).await;
    drop(b2);
    // Bob is still online in his first tab: neither the second tab nor its end is news.
    assert!(a.try_recv(Duration::from_millis(400)).await.is_none());
    let res = app
        .http
        .patch(app.url("/api/presence"))
        .bearer_auth(&ada.token)
        .json(&json!({"hideLastSeen": "yes"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "validation_failed").await;
    let res = app
        .http
        .patch(app.url("/api/presence"))
        .bearer_auth(&ada.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "validation_failed").await;
}
