//! Typing over the WebSocket: a signal to the other members, holding for a few seconds
//! unless renewed, rate-limited per session, refused outside the conversation.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn typing_reaches_the_other_members_and_not_the_typist_or_outsiders() {
    let app = spawn_app().await;
    let (ada, bob, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Eve").await,
    );
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"receiverId": bob.id, "content": "hi"}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    let conv = body["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut a = app.connect(&ada.token).await;
    let mut a2 = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    let mut e = app.connect(&eve.token).await;

    a.send(json!({"type": "typing", "conversationId": conv}))
        .await;
    assert_eq!(a.recv().await, json!({"type": "ok"}));
    let signal = b.recv().await;
    assert_eq!(signal["signal"]["kind"], "typing");
    assert_eq!(signal["signal"]["active"], true);
    assert_eq!(signal["signal"]["expiresInMs"], 5000);
    assert_eq!(signal["signal"]["userId"], ada.id.as_str());
    a.send(json!({"type": "typing", "conversationId": conv, "active": false}))
        .await;
    assert_eq!(a.recv().await["type"], "ok");
    let stop = b.recv().await;
    assert_eq!(stop["signal"]["active"], false);
    assert!(stop["signal"].get("expiresInMs").is_none());
    // Ada's other tab and an outsider hear nothing.
    assert!(a2.try_recv(Duration::from_millis(200)).await.is_none());
    assert!(e.try_recv(Duration::from_millis(50)).await.is_none());

    // An outsider cannot type into it; a bad frame is refused.
    e.send(json!({"type": "typing", "conversationId": conv}))
        .await;
    assert_eq!(e.recv().await["code"], "conversation_not_found");
    e.send(json!({"type": "typing"})).await;
    assert_eq!(e.recv().await["code"], "validation_failed");

    // A session that floods typing is slowed down (5 at once, then 2 a second).
    let mut refused = 0;
    for _ in 0..10 {
        a2.send(json!({"type": "typing", "conversationId": conv}))
            .await;
        if a2.recv().await["code"] == "rate_limited" {
            refused += 1;
        }
    }
    assert!(refused >= 4, "refused {refused} of 10");
}
