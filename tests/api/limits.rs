//! Limits: sessions per user and in total, header-read timeout, heartbeat, and hostile
//! strings stored and returned exactly.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::helpers::{spawn_app, spawn_app_with};

fn refused_with(result: Result<crate::helpers::WsClient, WsError>, status: u16) {
    match result {
        Err(WsError::Http(res)) => assert_eq!(res.status(), status),
        Err(other) => panic!("expected HTTP {status}, got {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[tokio::test]
async fn sessions_beyond_the_per_user_limit_get_503_at_upgrade() {
    let app = spawn_app_with(|c| c.max_sessions_per_user = 2).await;
    let ada = app.new_user("Ada").await;
    let _one = app.connect(&ada.token).await;
    let _two = app.connect(&ada.token).await;
    refused_with(app.connect_raw(&ada.token).await, 503);
    // Other users are not affected.
    let bob = app.new_user("Bob").await;
    let _b = app.connect(&bob.token).await;
    app.stop().await;
}

#[tokio::test]
async fn sessions_beyond_the_server_limit_get_503_at_upgrade() {
    let app = spawn_app_with(|c| c.max_connections = 2).await;
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let _a = app.connect(&ada.token).await;
    let b = app.connect(&bob.token).await;
    refused_with(app.connect_raw(&cy.token).await, 503);
    // A closed session frees its place.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match app.connect_raw(&cy.token).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the freed place was never reusable: {e}"),
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off() {
    let app = spawn_app_with(|c| c.header_read_timeout = Duration::from_millis(300)).await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // ...and never finishes. The server hangs up on it.
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await;
    match read {
        Err(_) => panic!("the connection was kept open"),
        Ok(Ok(n)) => assert!(
            n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
            "got {n} bytes"
        ),
        Ok(Err(_)) => {} // reset: also cut off
    }
    // Prompt clients are served as usual.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_dead_peer_is_closed_after_two_heartbeats_and_its_place_freed() {
    let app = spawn_app_with(|c| {
        c.heartbeat_interval = Duration::from_millis(200);
        c.max_sessions_per_user = 1;
    })
    .await;
    let ada = app.new_user("Ada").await;
    let mut dead = app.connect(&ada.token).await;
    // Not reading means not answering pings: to the server, this peer is dead.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (code, reason) = dead.closed().await;
    assert_eq!(code, 4000, "reason: {reason}");
    // Its session was detached, so the one allowed place is free again.
    let _alive = app.connect(&ada.token).await;
    app.stop().await;
}

#[tokio::test]
async fn a_live_peer_that_answers_pings_stays_connected() {
    let app = spawn_app_with(|c| c.heartbeat_interval = Duration::from_millis(100)).await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    // Reading answers pings; nothing else is sent for ten intervals.
    assert!(a.try_recv(Duration::from_millis(1000)).await.is_none());
    a.send_to(&bob.id, "still here", "h1").await;
    assert_eq!(a.recv().await["type"], "ack");
    app.stop().await;
}

#[tokio::test]
async fn injection_shaped_strings_are_stored_and_returned_exactly() {
    let app = spawn_app().await;
    let hostile_name = "Robert'); DROP TABLE users;-- <evil> \"\\ \u{1F600}";
    let email = "o'brien+\"quote\"@example.com";
    // A name that reorders the text around it is refused (see accounts::a_name_that_...).
    let res = app
        .register("Robert \u{202E}evil", email, "correct horse battery")
        .await;
    crate::helpers::assert_error(res, 400, "validation_failed").await;
    let res = app
        .register(hostile_name, email, "correct horse battery")
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["name"], hostile_name);
    assert_eq!(body["user"]["email"], email);
    let token = body["token"].as_str().unwrap().to_owned();
    let bob = app.new_user("Bob").await;
    let mut b = app.connect(&bob.token).await;

    let bodies = [
        "'; DROP TABLE messages; --",
        "SELECT * FROM users WHERE 1=1; INSERT INTO conv_msg (k) VALUES ('x') IF NOT EXISTS;",
        "nul:\u{0}:byte",
        "rtl \u{202E}override\u{202C} and \u{200F}marks",
        "\"quotes\" and \\backslashes\\ and {\"json\": true}",
        "emoji 👩\u{200D}💻 and combining e\u{301}",
        "<script>alert(1)</script>",
    ];
    for (i, text) in bodies.iter().enumerate() {
        let res = app
            .post(
                "/api/messages/send",
                Some(&token),
                &json!({"receiverId": bob.id, "content": text, "clientId": format!("h{i}")}),
            )
            .await;
        assert_eq!(res.status(), 201, "sending {text:?}");
        assert_eq!(
            b.recv().await["message"]["content"],
            *text,
            "delivered exactly"
        );
    }
    let page: Value = app
        .get(&format!("/api/messages/{}", bob.id), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let stored: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(stored, bodies, "history returns them exactly");
    let contacts: Value = app
        .get("/api/auth/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(contacts["name"], hostile_name);

    // Invalid UTF-8 (an overlong encoding of '/') is not JSON: refused, not stored.
    let res = app
        .http
        .post(app.url("/api/messages/send"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(
            [
                &b"{\"receiverId\":\""[..],
                bob.id.as_bytes(),
                b"\",\"content\":\"a\xC0\xAFb\"}",
            ]
            .concat(),
        )
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(res, 400, "malformed_json").await;
    app.stop().await;
}
