//! Bad input on the WebSocket: recoverable mistakes get an error frame and the
//! connection stays open; protocol violations close it with the proper code.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{WsClient, spawn_app, spawn_app_with};

/// Sends a raw text frame and returns the error frame it earned.
async fn error_for(ws: &mut WsClient, text: &str) -> Value {
    ws.ws.send(WsMessage::text(text)).await.unwrap();
    let f = ws.recv().await;
    assert_eq!(
        f["type"], "error",
        "expected an error frame for {text}: {f}"
    );
    assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()));
    f
}

/// Proves the connection is still usable.
async fn still_open(ws: &mut WsClient) {
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");
}

#[tokio::test]
async fn recoverable_mistakes_get_error_frames_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut ws = app.connect(&ada.token).await;
    let to = &bob.id;

    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("{not json".into(), "malformed_json", None),
        ("[1,2]".into(), "invalid_frame", None),
        (r#"{"content":"no type"}"#.into(), "invalid_frame", None),
        (
            r#"{"type":"shout","clientId":"k1"}"#.into(),
            "unknown_type",
            Some("k1"),
        ),
        (
            format!(r#"{{"type":"send","receiverId":"{to}","clientId":"k2"}}"#),
            "validation_failed",
            Some("k2"),
        ),
        (
            format!(r#"{{"type":"send","receiverId":"{to}","content":5,"clientId":"k3"}}"#),
            "invalid_frame",
            Some("k3"),
        ),
        (
            format!(r#"{{"type":"send","receiverId":"{to}","content":"   ","clientId":"k4"}}"#),
            "validation_failed",
            Some("k4"),
        ),
        (
            format!(
                r#"{{"type":"send","receiverId":"{to}","content":"{}","clientId":"k5"}}"#,
                "x".repeat(4097)
            ),
            "validation_failed",
            Some("k5"),
        ),
        (
            r#"{"type":"send","content":"hi","clientId":"k6"}"#.into(),
            "validation_failed",
            Some("k6"),
        ),
        (
            r#"{"type":"send","receiverId":"not-an-id","content":"hi","clientId":"k7"}"#.into(),
            "validation_failed",
            Some("k7"),
        ),
        (
            format!(
                r#"{{"type":"send","receiverId":"{to}","conversationId":"{to}","content":"hi","clientId":"k9"}}"#
            ),
            "validation_failed",
            Some("k9"),
        ),
    ];
    for (text, code, client_id) in cases {
        let f = error_for(&mut ws, &text).await;
        assert_eq!(f["code"], code, "for {text}");
        assert_eq!(
            f["clientId"].as_str(),
            client_id,
            "clientId echoed for {text}"
        );
    }
    // A body of exactly the limit is fine.
    ws.send_to(to, &"x".repeat(4096), "k8").await;
    assert_eq!(ws.recv().await["type"], "ack");
    still_open(&mut ws).await;
    app.stop().await;
}

#[tokio::test]
async fn v1_field_names_are_refused_naming_the_v2_fields_and_nothing_is_sent() {
    let app = spawn_app().await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    let v1 = json!({"type": "send", "to": bob.id, "body": "hi", "client_id": "v1"}).to_string();
    let f = error_for(&mut a, &v1).await;
    assert_eq!(f["code"], "validation_failed", "{f}");
    let message = f["message"].as_str().unwrap();
    for v2 in ["receiverId", "content", "clientId"] {
        assert!(message.contains(v2), "{v2} named in {message:?}");
    }
    // A v1 name is never read as its v2 field, not even beside the v2 ones.
    let mixed = json!({"type": "send", "receiverId": bob.id, "content": "hi", "client_id": "v1"});
    let f = error_for(&mut a, &mixed.to_string()).await;
    assert_eq!(f["code"], "validation_failed", "{f}");
    assert!(f["message"].as_str().unwrap().contains("clientId"), "{f}");
    assert!(
        b.try_recv(Duration::from_millis(300)).await.is_none(),
        "nothing was sent"
    );
    still_open(&mut a).await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_recipients_and_foreign_conversations_are_refused() {
    let app = spawn_app().await;
    let (ada, bob, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Eve").await,
    );
    let mut a = app.connect(&ada.token).await;
    a.send_to(&bob.id, "private", "p1").await;
    let conv = a.recv().await["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut e = app.connect(&eve.token).await;
    e.send(
        json!({"type": "send", "conversationId": conv, "content": "let me in", "clientId": "e1"}),
    )
    .await;
    let f = e.recv().await;
    assert_eq!(
        (f["code"].as_str(), f["clientId"].as_str()),
        (Some("not_participant"), Some("e1"))
    );

    let nobody = "01000000-0000-7000-8000-000000000000";
    e.send_to(nobody, "hello?", "e2").await;
    let f = e.recv().await;
    assert_eq!(
        (f["code"].as_str(), f["clientId"].as_str()),
        (Some("recipient_not_found"), Some("e2"))
    );

    e.send_to(&eve.id, "me, myself", "e3").await;
    assert_eq!(e.recv().await["code"], "cannot_message_self");
    still_open(&mut e).await;
    app.stop().await;
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_with_1009() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let mut ws = app.connect(&ada.token).await;
    ws.ws
        .send(WsMessage::text("x".repeat(65 * 1024)))
        .await
        .unwrap();
    assert_eq!(ws.closed().await.0, 1009);
    app.stop().await;
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let mut ws = app.connect(&ada.token).await;
    ws.ws
        .send(WsMessage::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(ws.closed().await.0, 1003);
    app.stop().await;
}

#[tokio::test]
async fn a_text_frame_of_invalid_utf8_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let mut ws = app.connect(&ada.token).await;
    // A text frame whose payload is an overlong encoding of '/': not UTF-8.
    let frame = Frame::message(
        &b"{\"type\":\"ping\xC0\xAF\"}"[..],
        OpCode::Data(Data::Text),
        true,
    );
    ws.ws.send(WsMessage::Frame(frame)).await.unwrap();
    let (code, reason) = ws.closed().await;
    assert_eq!(
        code, 1007,
        "the close says the payload was invalid: {reason}"
    );
    // The next session of the same user is unaffected.
    let mut again = app.connect(&ada.token).await;
    still_open(&mut again).await;
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_bad_token_is_refused_with_401_before_the_upgrade() {
    use tokio_tungstenite::tungstenite::Error;
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    for token in ["", "garbage", &format!("{}x", ada.token)] {
        match app.connect_raw(token).await {
            Err(Error::Http(res)) => assert_eq!(res.status(), 401),
            Err(other) => panic!("expected an HTTP 401, got {other}"),
            Ok(_) => panic!("a bad token was accepted"),
        }
    }
    // Logged-out tokens too.
    assert_eq!(app.logout(&ada.token).await.status(), 200);
    assert!(matches!(app.connect_raw(&ada.token).await, Err(Error::Http(r)) if r.status() == 401));
    app.stop().await;
}

#[tokio::test]
async fn browsers_can_authenticate_with_a_token_query_parameter() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let request = format!("ws://{}/ws?token={}", app.addr, ada.token)
        .into_client_request()
        .unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("query token accepted");
    let mut ws = WsClient { ws };
    let ready = ws.recv().await;
    assert_eq!(ready["user"]["id"], ada.id.as_str());
    assert!(ready["sessionId"].is_string(), "{ready}");
    app.stop().await;
}

#[tokio::test]
async fn a_sender_over_its_rate_gets_rate_limited_errors_with_a_retry_time() {
    let app = spawn_app_with(|c| {
        c.send_rate_per_second = 1;
        c.send_burst = 3;
    })
    .await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut ws = app.connect(&ada.token).await;
    for i in 0..5 {
        ws.send_to(&bob.id, "flood", &format!("f{i}")).await;
    }
    let mut acks = 0;
    let mut limited = Vec::new();
    for _ in 0..5 {
        let f = ws.recv().await;
        match f["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => limited.push(f),
            _ => panic!("unexpected frame {f}"),
        }
    }
    assert_eq!(acks, 3, "the burst goes through");
    assert_eq!(limited.len(), 2);
    for f in &limited {
        assert_eq!(f["code"], "rate_limited");
        assert!(
            f["retryAfterMs"]
                .as_u64()
                .is_some_and(|ms| ms > 0 && ms <= 1000),
            "{f}"
        );
        assert!(f["clientId"].as_str().is_some());
    }
    // The limit is per user, across sessions and REST.
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"receiverId": bob.id, "content": "x"}),
        )
        .await;
    crate::helpers::assert_error(res, 429, "rate_limited").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.send_to(&bob.id, "later", "f-later").await;
    assert_eq!(
        ws.recv().await["type"],
        "ack",
        "allowed again after the wait"
    );
    app.stop().await;
}
