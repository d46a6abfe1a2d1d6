//! A realtime session lives no longer than its token, and a client looping reconnects or
//! syncs is slowed down instead of making the server send without bound.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn logging_out_ends_the_sessions_of_that_token_within_a_second_and_no_other() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    // A second device of Ada's, logged in with a token of its own.
    let login: Value = app
        .login(&ada.email, &ada.password)
        .await
        .json()
        .await
        .unwrap();
    let laptop_token = login["token"].as_str().unwrap().to_owned();
    let mut phone = app.connect(&ada.token).await;
    let mut laptop = app.connect(&laptop_token).await;

    let started = Instant::now();
    assert_eq!(app.logout(&ada.token).await.status(), 200);
    let (code, reason) = phone.closed().await;
    assert_eq!(code, 4003, "reason: {reason}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    // The laptop's token is still good: its session carries on.
    laptop.send_to(&bob.id, "still here", "l1").await;
    let ack = laptop.recv().await;
    assert_eq!(
        (ack["type"].as_str(), ack["clientId"].as_str()),
        (Some("ack"), Some("l1"))
    );
    // And the revoked token opens nothing new.
    assert!(app.connect_raw(&ada.token).await.is_err());
    app.stop().await;
}

#[tokio::test]
async fn a_session_ends_when_its_token_expires() {
    let app = spawn_app_with(|c| c.token_ttl = Duration::from_secs(2)).await;
    let ada = app.new_user("Ada").await;
    let mut ws = app.connect(&ada.token).await;
    let opened = Instant::now();
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4001, "reason: {reason}");
    // Tokens count whole seconds: this one had one to two seconds left at the connect.
    let lived = opened.elapsed();
    assert!(
        lived < Duration::from_millis(3000),
        "closed within a second of the expiry, after {lived:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn syncs_beyond_the_per_user_rate_are_refused_with_a_time_to_retry() {
    let app = spawn_app_with(|c| c.syncs_per_minute = 2).await;
    let ada = app.new_user("Ada").await;
    let mut ws = app.connect(&ada.token).await;
    for _ in 0..2 {
        ws.send(json!({"type": "sync", "cursors": {}})).await;
        assert_eq!(ws.recv().await["type"], "synced");
    }
    // The budget is the user's, not the session's: a second tab shares it.
    let mut tab = app.connect(&ada.token).await;
    tab.send(json!({"type": "sync", "cursors": {}})).await;
    let refused = tab.recv().await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("rate_limited")),
        "{refused}"
    );
    assert!(
        refused["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0),
        "{refused}"
    );
    app.stop().await;
}

#[tokio::test]
async fn session_opens_beyond_the_per_user_rate_are_refused_with_429() {
    let app = spawn_app_with(|c| c.session_opens_per_minute = 2).await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    for _ in 0..2 {
        drop(app.connect(&ada.token).await);
    }
    match app.connect_raw(&ada.token).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            assert!(body["error"]["retryAfterMs"].as_u64().is_some(), "{body}");
        }
        Err(other) => panic!("refused otherwise: {other}"),
        Ok(_) => panic!("a third open within the minute was accepted"),
    }
    // Another user is not affected.
    drop(app.connect(&bob.token).await);
    app.stop().await;
}
