//! Real-time messaging over WebSocket: delivery, ordering, catch-up, deduplication,
//! durability across restarts, and backpressure. Runs on both stores (see `main.rs`).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::STORE;
use crate::helpers::{TestApp, WsClient};

fn seq(frame: &Value) -> u64 {
    frame["message"]["seq"].as_u64().expect("frame has a seq")
}

async fn history(app: &TestApp, token: &str, contact: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/api/messages/{contact}?limit=100"), Some(token))
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn two_users_chat_both_ways_with_acks_and_ordered_seqs() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;

    a.send_to(&bob.id, "hello Bob", "a1").await;
    let ack = a.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["clientId"], "a1");
    assert_eq!(ack["duplicate"], false);
    assert_eq!(seq(&ack), 1);
    let got = b.recv().await;
    assert_eq!(got["type"], "message");
    assert_eq!(got["message"]["content"], "hello Bob");
    assert_eq!(got["message"]["sender"], ada.id.as_str());
    assert_eq!(got["message"]["id"], ack["message"]["id"]);
    assert!(got["message"]["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(got["message"]["type"], "text");
    assert_eq!(got["message"]["clientId"], "a1");

    b.send_to(&ada.id, "hi Ada", "b1").await;
    assert_eq!(seq(&b.recv().await), 2);
    let got = a.recv().await;
    assert_eq!((got["type"].as_str(), seq(&got)), (Some("message"), 2));
    assert_eq!(
        got["message"]["conversationId"],
        ack["message"]["conversationId"]
    );
    app.stop().await;
}

#[tokio::test]
async fn every_session_of_the_recipient_and_the_senders_other_sessions_receive() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut bobs = vec![
        app.connect(&bob.token).await,
        app.connect(&bob.token).await,
        app.connect(&bob.token).await,
    ];
    let mut ada_phone = app.connect(&ada.token).await;
    let mut ada_laptop = app.connect(&ada.token).await;

    ada_phone
        .send_to(&bob.id, "to all your devices", "m1")
        .await;
    assert_eq!(ada_phone.recv().await["type"], "ack");
    for b in &mut bobs {
        let f = b.recv().await;
        assert_eq!(
            (f["type"].as_str(), f["message"]["content"].as_str()),
            (Some("message"), Some("to all your devices"))
        );
    }
    let mirrored = ada_laptop.recv().await;
    assert_eq!(
        mirrored["type"], "message",
        "the sender's other session gets a copy"
    );
    // The sending session got its ack and no second copy.
    assert!(
        ada_phone
            .try_recv(Duration::from_millis(300))
            .await
            .is_none()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_senders_other_session_gets_a_copy_even_when_the_sending_one_is_gone() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut ada_laptop = app.connect(&ada.token).await;
    // The conversation's actor runs before the phones come and go. A send that must
    // first load its conversation can be dropped with its session (below); on a store
    // with network round trips (ScyllaDB) every one was, and the copies went untested.
    ada_laptop.send_to(&bob.id, "hello", "laptop-1").await;
    assert_eq!(ada_laptop.recv().await["type"], "ack");
    for i in 0..20 {
        // The phone sends and hangs up without waiting for its ack: whether it is gone
        // before or after the commit, the laptop must not miss a stored message.
        let mut ada_phone = app.connect(&ada.token).await;
        let body = format!("sent and gone {i}");
        ada_phone.send_to(&bob.id, &body, &format!("p{i}")).await;
        drop(ada_phone);
        match ada_laptop.try_recv(Duration::from_secs(2)).await {
            Some(copy) => assert_eq!(
                (copy["type"].as_str(), copy["message"]["content"].as_str()),
                (Some("message"), Some(body.as_str()))
            ),
            // A send whose session ended before it reached the conversation was never
            // accepted (no ack, nothing stored): the client retries it. Anything stored
            // must have reached the laptop.
            None => assert!(
                !history(&app, &ada.token, &bob.id)
                    .await
                    .iter()
                    .any(|m| m["content"] == body.as_str()),
                "{body} was stored but the laptop never got it"
            ),
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn an_offline_user_catches_up_on_sync_in_order_exactly_once() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    // Bob has never connected: the conversation is created while he is away.
    for i in 1..=5 {
        a.send_to(&bob.id, &format!("m{i}"), &format!("c{i}")).await;
        assert_eq!(a.recv().await["type"], "ack");
    }
    let mut b = app.connect(&bob.token).await;
    b.send(json!({"type": "sync", "cursors": {}})).await;
    let frames = b.recv_until("synced").await;
    let bodies: Vec<&str> = frames
        .iter()
        .filter_map(|f| f["message"]["content"].as_str())
        .collect();
    assert_eq!(bodies, ["m1", "m2", "m3", "m4", "m5"]);
    let synced = frames.last().unwrap();
    assert_eq!(synced["more"], false);
    let conv = frames[0]["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(synced["cursors"][&conv], 5);

    // Live messages continue after the replay, with no repeat.
    a.send_to(&bob.id, "m6", "c6").await;
    assert_eq!(seq(&b.recv().await), 6);
    assert!(b.try_recv(Duration::from_millis(200)).await.is_none());

    // Reconnect having seen up to 3: exactly 4, 5, 6 come back.
    drop(b);
    let mut b = app.connect(&bob.token).await;
    b.send(json!({"type": "sync", "cursors": {conv.clone(): 3}}))
        .await;
    let seqs: Vec<u64> = b
        .recv_until("synced")
        .await
        .iter()
        .filter(|f| f["type"] == "message")
        .map(seq)
        .collect();
    assert_eq!(seqs, [4, 5, 6]);
    app.stop().await;
}

#[tokio::test]
async fn a_capped_sync_says_more_and_resumes_from_its_cursors() {
    let Some(app) = STORE.spawn_app_with(|c| c.sync_batch = 10).await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    for i in 0..25 {
        a.send_to(&bob.id, &format!("m{i}"), &format!("c{i}")).await;
    }
    for _ in 0..25 {
        assert_eq!(a.recv().await["type"], "ack");
    }
    let mut b = app.connect(&bob.token).await;
    let mut cursors = json!({});
    let mut seen = Vec::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        b.send(json!({"type": "sync", "cursors": cursors})).await;
        let frames = b.recv_until("synced").await;
        seen.extend(frames.iter().filter(|f| f["type"] == "message").map(seq));
        let synced = frames.last().unwrap();
        cursors = synced["cursors"].clone();
        if synced["more"] == false {
            break;
        }
        assert!(rounds < 10, "sync never finished");
    }
    assert_eq!(rounds, 3, "25 messages in pieces of 10");
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_client_id_yields_one_message() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    a.send_to(&bob.id, "only once", "retry-me").await;
    let first = a.recv().await;
    a.send_to(&bob.id, "only once", "retry-me").await;
    let second = a.recv().await;
    assert_eq!(second["type"], "ack");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["message"]["id"], first["message"]["id"]);
    assert_eq!(b.recv().await["message"]["content"], "only once");
    assert!(
        b.try_recv(Duration::from_millis(300)).await.is_none(),
        "no second delivery"
    );
    assert_eq!(history(&app, &ada.token, &bob.id).await.len(), 1);
    app.stop().await;
}

/// Sends `body` with `client_id` and returns the ack.
async fn send_acked(ws: &mut WsClient, to: &str, body: &str, client_id: &str) -> Value {
    ws.send_to(to, body, client_id).await;
    let ack = ws.recv().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

#[tokio::test]
async fn a_retry_is_recognised_however_old_and_a_new_id_is_never_mistaken_for_one() {
    // Each conversation keeps 4 client ids in memory: older ones are looked up in the
    // store, and after a restart a conversation of more than 4 messages is not loaded.
    for window in [4096, 4] {
        let Some(app) = STORE.spawn_app_with(|c| c.recent_client_ids = window).await else {
            return;
        };
        let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
        let mut a = app.connect(&ada.token).await;
        let mut first = Vec::new();
        for i in 1..=10 {
            let ack = send_acked(&mut a, &bob.id, &format!("m{i}"), &format!("c{i}")).await;
            first.push(ack["message"]["id"].clone());
        }
        for (i, retry) in [(1, true), (10, true), (11, false)] {
            let ack = send_acked(&mut a, &bob.id, &format!("m{i}"), &format!("c{i}")).await;
            assert_eq!(ack["duplicate"], retry, "window {window}, c{i}");
            if retry {
                assert_eq!(ack["message"]["id"], first[i - 1]);
            }
        }
        drop(a);
        // A new actor: the window loads the whole conversation, or it is too small to.
        let app = app.restart().await;
        let mut a = app.connect(&ada.token).await;
        for (i, retry) in [(2, true), (11, true), (12, false), (12, true)] {
            let ack = send_acked(&mut a, &bob.id, &format!("m{i}"), &format!("c{i}")).await;
            assert_eq!(
                ack["duplicate"], retry,
                "window {window}, after restart, c{i}"
            );
        }
        let stored = history(&app, &ada.token, &bob.id).await;
        let seqs: Vec<u64> = stored.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=12).collect::<Vec<_>>(), "window {window}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_restart_keeps_history_and_seq_continues_without_gap_or_reuse() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    for i in 1..=3 {
        a.send_to(&bob.id, &format!("before {i}"), &format!("b{i}"))
            .await;
        assert_eq!(a.recv().await["type"], "ack");
    }
    drop(a);
    let app = app.restart().await;
    let mut a = app.connect(&ada.token).await;
    a.send_to(&bob.id, "after", "after-1").await;
    assert_eq!(seq(&a.recv().await), 4);
    // A retry of a send from before the restart is still recognised.
    a.send_to(&bob.id, "before 2", "b2").await;
    let dup = a.recv().await;
    assert_eq!((dup["duplicate"].as_bool(), seq(&dup)), (Some(true), 2));
    let seqs: Vec<u64> = history(&app, &bob.token, &ada.id)
        .await
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_concurrent_senders_get_a_gapless_seq_and_one_order_everywhere() {
    let Some(app) = STORE.spawn_app_with(|c| c.max_sessions_per_user = 64).await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut ada_watch = app.connect(&ada.token).await;
    let mut bob_watch = app.connect(&bob.token).await;
    let per_sender = 5;
    let senders = (0..100).map(|i| {
        let (me, peer) = if i % 2 == 0 {
            (&ada, &bob)
        } else {
            (&bob, &ada)
        };
        let app = &app;
        async move {
            let mut ws = app.connect(&me.token).await;
            for j in 0..per_sender {
                ws.send_to(&peer.id, &format!("s{i}-{j}"), &format!("s{i}-{j}"))
                    .await;
            }
            let mut acked = Vec::new();
            while acked.len() < per_sender {
                let f = ws.recv().await;
                if f["type"] == "ack" {
                    acked.push(seq(&f));
                }
            }
            acked
        }
    });
    let acked: Vec<u64> = join_all(senders).await.into_iter().flatten().collect();
    let total = 100 * per_sender;
    let unique: HashSet<u64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), total, "every send got its own seq");
    assert_eq!(
        unique,
        (1..=total as u64).collect(),
        "seqs are 1..=N with no gap"
    );

    let mut orders = Vec::new();
    for watcher in [&mut ada_watch, &mut bob_watch] {
        let mut by_seq = BTreeMap::new();
        let mut arrival = Vec::new();
        while by_seq.len() < total {
            let f = watcher.recv().await;
            if f["type"] == "message" {
                arrival.push(seq(&f));
                by_seq.insert(seq(&f), f["message"]["id"].as_str().unwrap().to_owned());
            }
        }
        assert!(
            arrival.windows(2).all(|w| w[0] < w[1]),
            "delivered in seq order"
        );
        orders.push(by_seq);
    }
    assert_eq!(
        orders[0], orders[1],
        "both participants see the same messages at the same seqs"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rest_send_reaches_a_websocket_receiver() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut b = app.connect(&bob.token).await;
    let res = app
        .post(
            "/api/messages/send",
            Some(&ada.token),
            &json!({"receiverId": bob.id, "content": "over REST", "clientId": "r1"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"]["seq"], 1);
    let got = b.recv().await;
    assert_eq!(got["message"]["content"], "over REST");
    assert_eq!(got["message"]["id"], body["message"]["id"]);
    app.stop().await;
}

/// A WebSocket client whose socket buffers almost nothing, so it stops draining the
/// server as soon as it stops reading.
async fn tight_client(app: &TestApp, token: &str) -> WsClient {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let mut request = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let mut client = WsClient { ws };
    assert_eq!(client.recv().await["type"], "ready");
    client
}

#[tokio::test]
async fn a_session_that_stops_reading_is_closed_while_the_others_keep_receiving() {
    // The queue must hold one commit's burst (up to 256 sends in flight from a session),
    // so a session that reads is never mistaken for a slow one.
    let Some(app) = STORE.spawn_app_with(|c| c.session_queue = 300).await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut slow = tight_client(&app, &bob.token).await;
    let mut fast = app.connect(&bob.token).await;
    let mut a = app.connect(&ada.token).await;
    let body = "x".repeat(4000);
    let n = 1000;
    // The sender reads its acks as it goes: a client that does not is pushed back on
    // through TCP and stalls only itself.
    let sending = async {
        for chunk in 0..n / 100 {
            for i in 0..100 {
                a.send_to(&bob.id, &body, &format!("c{chunk}-{i}")).await;
            }
            let mut acks = 0;
            while acks < 100 {
                if a.recv().await["type"] == "ack" {
                    acks += 1;
                }
            }
        }
    };
    let receiving = async {
        let mut received = 0;
        while received < n {
            if fast.recv().await["type"] == "message" {
                received += 1;
            }
        }
    };
    tokio::join!(sending, receiving);
    // The slow session was cut off: once it reads again it finds the documented close.
    let (code, reason) = slow.closed().await;
    assert_eq!(code, 4008, "reason: {reason}");
    assert!(reason.contains("slow consumer"));
    app.stop().await;
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let mut ws = app.connect(&ada.token).await;
    ws.ws.close(None).await.expect("close sent");
    // The closing handshake completes: the reply arrives, then the stream ends cleanly.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.ws.next())
            .await
            .expect("answered in time")
        {
            Some(Ok(WsMessage::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("the handshake did not complete: {e}"),
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_capped_sync_interleaved_with_live_messages_delivers_each_exactly_once() {
    let Some(app) = STORE.spawn_app_with(|c| c.sync_batch = 2).await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    for i in 1..=5 {
        a.send_to(&bob.id, &format!("m{i}"), &format!("c{i}")).await;
        assert_eq!(a.recv().await["type"], "ack");
    }
    let mut b = app.connect(&bob.token).await;
    // Seq 6 reaches Bob live before he syncs.
    a.send_to(&bob.id, "m6", "c6").await;
    assert_eq!(a.recv().await["type"], "ack");
    let mut seen = vec![seq(&b.recv().await)];
    let mut cursors = json!({});
    for _ in 0..10 {
        b.send(json!({"type": "sync", "cursors": cursors})).await;
        let frames = b.recv_until("synced").await;
        seen.extend(frames.iter().filter(|f| f["type"] == "message").map(seq));
        let synced = frames.last().unwrap();
        cursors = synced["cursors"].clone();
        if synced["more"] == false {
            break;
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3, 4, 5, 6], "every message exactly once");
    let conv = cursors
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(conv, 6, "the final cursor covers everything");
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_ack_for_an_old_message_causes_no_resends() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut a = app.connect(&ada.token).await;
    let mut b = app.connect(&bob.token).await;
    for i in 1..=3 {
        a.send_to(&bob.id, &format!("m{i}"), &format!("c{i}")).await;
        assert_eq!(a.recv().await["type"], "ack");
    }
    a.send_to(&bob.id, "m2", "c2").await;
    let dup = a.recv().await;
    assert_eq!((dup["duplicate"].as_bool(), seq(&dup)), (Some(true), 2));
    b.send_to(&ada.id, "reply", "r1").await;
    let got = a.recv().await;
    assert_eq!((got["type"].as_str(), seq(&got)), (Some("message"), 4));
    assert!(
        a.try_recv(Duration::from_millis(300)).await.is_none(),
        "nothing is sent again"
    );
    app.stop().await;
}
