//! Supervision under injected faults (built with `--features fault-injection`): a
//! panicking actor is restarted with its state reloaded, other conversations never
//! notice, the sender gets an error rather than silence, and a crash loop is given up.

#![cfg(feature = "fault-injection")]

use std::time::Duration;

use actors::fault::{PANIC_CONVERSATION, PANIC_USER};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_panicking_conversation_is_restarted_and_only_its_sender_notices() {
    let app = spawn_app().await;
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let mut a = app.connect(&ada.token).await;
    let mut c = app.connect(&cy.token).await;
    a.send_to(&bob.id, "first", "a1").await;
    assert_eq!(a.recv().await["message"]["seq"], 1);

    a.send_to(&bob.id, PANIC_CONVERSATION, "boom").await;
    let err = a.recv().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "conversation_failed");
    assert_eq!(err["clientId"], "boom");

    // Another conversation carries on undisturbed.
    c.send_to(&ada.id, "unrelated", "c1").await;
    assert_eq!(c.recv().await["type"], "ack");
    assert_eq!(a.recv().await["message"]["content"], "unrelated");

    // The restarted actor reloaded its seq from the store: no gap, no reuse.
    a.send_to(&bob.id, "after the crash", "a2").await;
    let ack = a.recv().await;
    assert_eq!(
        (ack["type"].as_str(), ack["message"]["seq"].as_u64()),
        (Some("ack"), Some(2))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_crash_loop_is_given_up_with_a_clear_error_while_others_carry_on() {
    let app = spawn_app().await;
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let mut a = app.connect(&ada.token).await;
    // Default intensity: more than 3 failures within a minute gives up.
    for i in 0..4 {
        a.send_to(&bob.id, PANIC_CONVERSATION, &format!("boom{i}"))
            .await;
        assert_eq!(a.recv().await["code"], "conversation_failed");
    }
    a.send_to(&bob.id, "anyone there?", "after").await;
    let err = a.recv().await;
    assert_eq!(
        (err["code"].as_str(), err["clientId"].as_str()),
        (Some("conversation_unavailable"), Some("after"))
    );
    // Over REST, the same clear answer.
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"receiverId": bob.id, "content": "x"}),
        )
        .await;
    crate::helpers::assert_error(res, 503, "conversation_unavailable").await;
    // Ada's other conversations are fine.
    a.send_to(&cy.id, "hi Cy", "cy1").await;
    assert_eq!(a.recv().await["type"], "ack");
    app.stop().await;
}

#[tokio::test]
async fn a_panicking_user_actor_resets_its_sessions_and_nothing_committed_is_lost() {
    let app = spawn_app().await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    a.send_to(&bob.id, "ordinary", "o1").await;
    assert_eq!(a.recv().await["type"], "ack");
    assert_eq!(b.recv().await["message"]["content"], "ordinary");

    // Delivering this makes Bob's user actor panic, so his session is reset. Ada's only
    // session gets the message through its ack: her user actor is not involved.
    a.send_to(&bob.id, PANIC_USER, "u1").await;
    let (code, reason) = b.closed().await;
    assert_eq!(code, 1012, "reason: {reason}");
    assert_eq!(a.recv().await["type"], "ack");
    // With a second session, Ada's user actor delivers it too, panics, and resets both.
    let mut laptop = app.connect(&ada.token).await;
    a.send_to(&bob.id, PANIC_USER, "u2").await;
    for ws in [&mut a, &mut laptop] {
        let (code, reason) = ws.closed().await;
        assert_eq!(code, 1012, "reason: {reason}");
    }

    // Bob reconnects and syncs: the message that crashed his actor is in history.
    let mut b = app.connect(&bob.token).await;
    b.send(json!({"type": "sync", "cursors": {}})).await;
    let frames = b.recv_until("synced").await;
    let seqs: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["message"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    // And live delivery works again (through a restarted or fresh user actor).
    let mut a = app.connect(&ada.token).await;
    a.send_to(&bob.id, "welcome back", "o2").await;
    let live = b
        .try_recv(Duration::from_secs(5))
        .await
        .expect("live delivery resumes");
    assert_eq!(live["message"]["content"], "welcome back");
    app.stop().await;
}

#[tokio::test]
async fn a_failed_commit_is_reported_nothing_is_acked_and_its_seqs_are_reused() {
    use actors::fault::STORE_ERROR;
    let app = spawn_app().await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    a.send_to(&bob.id, "one", "s1").await;
    assert_eq!(a.recv().await["message"]["seq"], 1);
    assert_eq!(b.recv().await["message"]["seq"], 1);

    a.send_to(&bob.id, STORE_ERROR, "s2").await;
    let err = a.recv().await;
    assert_eq!(
        (
            err["type"].as_str(),
            err["code"].as_str(),
            err["clientId"].as_str()
        ),
        (Some("error"), Some("store_unavailable"), Some("s2"))
    );
    assert!(
        b.try_recv(Duration::from_millis(300)).await.is_none(),
        "nothing undurable is delivered"
    );

    // The store "recovers": the next message takes seq 2, so history has no gap.
    a.send_to(&bob.id, "two", "s3").await;
    assert_eq!(a.recv().await["message"]["seq"], 2);
    assert_eq!(b.recv().await["message"]["content"], "two");
    let page: serde_json::Value = app
        .get(&format!("/api/messages/{}", bob.id), Some(&ada.token))
        .await
        .json()
        .await
        .unwrap();
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
    app.stop().await;
}
