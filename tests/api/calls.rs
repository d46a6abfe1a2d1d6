//! Calls over REST, heard over the native WebSocket protocol: start, answer and end
//! ring every session of the other party as `call` frames, the call is recorded as a
//! message, and its end amends that record.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, WsClient, assert_error, spawn_app};

async fn call(app: &TestApp, who: &TestUser, route: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/api/call/{route}"), Some(&who.token), &body)
        .await
}

/// The 1:1 history of `me` with `other`, as REST answers it.
async fn history(app: &TestApp, me: &TestUser, other: &TestUser) -> Value {
    app.get(&format!("/api/messages/{}", other.id), Some(&me.token))
        .await
        .json()
        .await
        .unwrap()
}

fn room(a: &TestUser, b: &TestUser) -> String {
    let mut ids = [a.id.clone(), b.id.clone()];
    ids.sort();
    ids.join("_")
}

/// Frames until one of each kind in `kinds` has arrived; returns them by kind.
async fn frames_of(ws: &mut WsClient, kinds: &[&str]) -> Vec<Value> {
    let mut found: Vec<Option<Value>> = vec![None; kinds.len()];
    while found.iter().any(Option::is_none) {
        let f = ws.recv().await;
        let key = match f["type"].as_str() {
            Some("call") => format!("call:{}", f["event"].as_str().unwrap_or("")),
            Some(other) => other.to_owned(),
            None => continue,
        };
        if let Some(i) = kinds.iter().position(|k| *k == key) {
            found[i] = Some(f);
        }
    }
    found.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn a_call_rings_every_session_of_the_callee_and_its_end_amends_the_record() {
    let app = spawn_app().await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let mut ada_ws = app.connect(&ada.token).await;
    let mut bob_tabs = [app.connect(&bob.token).await, app.connect(&bob.token).await];
    let offer = json!({"type": "offer", "sdp": "v=0 ..."});

    // `from` in the body is ignored: the caller is whoever holds the token.
    let res = call(
        &app,
        &ada,
        "start",
        json!({"receiverId": bob.id, "signalData": offer, "callType": "audio", "from": bob.id}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let started: Value = res.json().await.unwrap();
    assert_eq!(started["success"], true, "{started}");
    assert_eq!(started["message"], "Call started", "{started}");
    assert_eq!(started["roomId"], room(&ada, &bob), "{started}");
    let record = &started["call"];
    assert_eq!(record["type"], "audio", "{started}");
    assert_eq!(record["sender"], ada.id.as_str());
    assert_eq!(record["receiver"], bob.id.as_str());
    assert_eq!(record["callInfo"]["callType"], "audio");
    assert_eq!(record["callInfo"]["roomId"], room(&ada, &bob));
    assert!(record["callInfo"]["startedAt"].is_string());
    assert!(record["callInfo"].get("endedAt").is_none(), "{record}");

    for tab in &mut bob_tabs {
        let [message, ring] = &frames_of(tab, &["message", "call:incoming"]).await[..] else {
            unreachable!()
        };
        assert_eq!(message["message"]["id"], record["id"]);
        assert_eq!(message["message"]["callInfo"], record["callInfo"]);
        assert_eq!(
            *ring,
            json!({"type": "call", "event": "incoming", "roomId": room(&ada, &bob),
                   "from": ada.id, "callType": "audio", "signal": offer})
        );
    }

    let answer = json!({"type": "answer", "sdp": "v=0 ok"});
    let res = call(
        &app,
        &bob,
        "answer",
        json!({"roomId": room(&ada, &bob), "signalData": answer}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"success": true, "message": "Call answered"})
    );
    let accepted = frames_of(&mut ada_ws, &["call:accepted"]).await;
    assert_eq!(
        accepted[0],
        json!({"type": "call", "event": "accepted", "roomId": room(&ada, &bob),
               "from": bob.id, "signal": answer})
    );

    let res = call(&app, &bob, "end", json!({"roomId": room(&ada, &bob)})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"success": true, "message": "Call ended"})
    );
    let [ended, amendment] = &frames_of(&mut ada_ws, &["call:ended", "message"]).await[..] else {
        unreachable!()
    };
    assert_eq!(
        *ended,
        json!({"type": "call", "event": "ended", "roomId": room(&ada, &bob), "from": bob.id})
    );
    let amendment = &amendment["message"];
    assert_eq!(amendment["amends"], record["seq"], "{amendment}");
    assert_eq!(amendment["seq"], 2, "{amendment}");
    assert_eq!(amendment["sender"], bob.id.as_str());
    assert_eq!(amendment["callInfo"]["roomId"], room(&ada, &bob));
    assert!(amendment["callInfo"]["endedAt"].is_string(), "{amendment}");
    assert!(amendment["callInfo"]["duration"].is_u64(), "{amendment}");

    // History shows one entry per call, as ended; the amendment is folded in.
    let page = history(&app, &ada, &bob).await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{page}");
    assert_eq!(messages[0]["id"], record["id"]);
    assert_eq!(messages[0]["callInfo"], amendment["callInfo"], "{page}");

    // A new session's sync replays the record (as ended) and the amendment, in order.
    let mut late = app.connect(&ada.token).await;
    late.send(json!({"type": "sync", "cursors": {}})).await;
    let replay = late.recv_until("synced").await;
    let seqs: Vec<&Value> = replay[..replay.len() - 1]
        .iter()
        .map(|f| &f["message"]["seq"])
        .collect();
    assert_eq!(seqs, [&json!(1), &json!(2)]);
    assert_eq!(replay[0]["message"]["callInfo"], amendment["callInfo"]);
    app.stop().await;
}

#[tokio::test]
async fn calling_someone_offline_is_404_and_records_nothing() {
    let app = spawn_app().await;
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let res = call(
        &app,
        &ada,
        "start",
        json!({"receiverId": bob.id, "signalData": {"sdp": "x"}}),
    )
    .await;
    let body = assert_error(res, 404, "receiver_offline").await;
    assert_eq!(body["message"], "Receiver offline");
    assert_eq!(history(&app, &ada, &bob).await["messages"], json!([]));
    // Answering a caller with no session is 404 too.
    let _bob_ws = app.connect(&bob.token).await;
    let res = call(
        &app,
        &bob,
        "answer",
        json!({"roomId": room(&ada, &bob), "signalData": "ok"}),
    )
    .await;
    let body = assert_error(res, 404, "caller_offline").await;
    assert_eq!(body["message"], "Caller offline");
    app.stop().await;
}

#[tokio::test]
async fn only_the_two_parties_of_a_room_can_answer_or_end_its_call() {
    let app = spawn_app().await;
    let (ada, bob, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Eve").await,
    );
    let _ada_ws = app.connect(&ada.token).await;
    let _bob_ws = app.connect(&bob.token).await;
    let r = room(&ada, &bob);
    assert_error(
        call(&app, &eve, "answer", json!({"roomId": r, "signalData": 1})).await,
        403,
        "not_in_room",
    )
    .await;
    assert_error(
        call(&app, &eve, "end", json!({"roomId": r})).await,
        403,
        "not_in_room",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn call_requests_are_validated_naming_every_field() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let cases = [
        ("start", json!({}), vec!["receiverId", "signalData"]),
        (
            "start",
            json!({"receiverId": "x", "signalData": null, "callType": "fax"}),
            vec!["callType", "receiverId", "signalData"],
        ),
        (
            "answer",
            json!({"roomId": "a_b"}),
            vec!["roomId", "signalData"],
        ),
        ("end", json!({}), vec!["roomId"]),
        (
            "end",
            json!({"roomId": format!("{}_{}", ada.id, ada.id)}),
            vec!["roomId"],
        ),
    ];
    for (route, body, fields) in cases {
        let e = assert_error(
            call(&app, &ada, route, body.clone()).await,
            400,
            "validation_failed",
        )
        .await;
        let mut named: Vec<&str> = e["error"]["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        named.sort_unstable();
        assert_eq!(named, fields, "{route} {body}: {e}");
    }
    let res = call(
        &app,
        &ada,
        "start",
        json!({"receiverId": ada.id, "signalData": 1}),
    )
    .await;
    assert_error(res, 400, "cannot_message_self").await;
    assert_error(
        app.post("/api/call/end", None, &json!({"roomId": "x"}))
            .await,
        401,
        "unauthorized",
    )
    .await;
    app.stop().await;
}
