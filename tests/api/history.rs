//! History and conversations over REST: paging with stable cursors, the conversation
//! list, and privacy of other people's conversations. Runs on both stores (see `main.rs`).

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::{TestApp, TestUser, assert_error};

async fn send_rest(app: &TestApp, from: &TestUser, to: &TestUser, content: &str) -> Value {
    let res = app
        .post(
            "/api/messages/send",
            Some(&from.token),
            &json!({"receiverId": to.id, "content": content}),
        )
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn history_pages_backwards_with_a_cursor_oldest_first() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    for i in 1..=5 {
        send_rest(
            &app,
            if i % 2 == 1 { &ada } else { &bob },
            if i % 2 == 1 { &bob } else { &ada },
            &format!("m{i}"),
        )
        .await;
    }
    let page: Value = app
        .get(
            &format!("/api/messages/{}?limit=2", bob.id),
            Some(&ada.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&page), [4, 5]);
    assert_eq!(page["nextBefore"], 4);
    let page: Value = app
        .get(
            &format!("/api/messages/{}?limit=2&before=4", bob.id),
            Some(&ada.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&page), [2, 3]);
    let page: Value = app
        .get(
            &format!("/api/messages/{}?limit=2&before=2", bob.id),
            Some(&ada.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&page), [1]);
    assert_eq!(page["nextBefore"], Value::Null);
    // A new message does not shift pages already read: cursors are seqs, not offsets.
    send_rest(&app, &ada, &bob, "m6").await;
    let page: Value = app
        .get(
            &format!("/api/messages/{}?limit=2&before=4", ada.id),
            Some(&bob.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&page), [2, 3]);
    app.stop().await;
}

#[tokio::test]
async fn conversation_history_reads_forward_after_a_seq() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let first = send_rest(&app, &ada, &bob, "one").await;
    for body in ["two", "three", "four"] {
        send_rest(&app, &ada, &bob, body).await;
    }
    let conv = first["message"]["conversationId"].as_str().unwrap();
    let page: Value = app
        .get(
            &format!("/api/conversations/{conv}/messages?after=1&limit=2"),
            Some(&bob.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&page), [2, 3]);
    assert_eq!(page["conversationId"], conv);
    assert_eq!(page["nextAfter"], 3);
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["two", "three"]);
    app.stop().await;
}

#[tokio::test]
async fn only_participants_can_read_a_conversation() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Eve").await,
    );
    let sent = send_rest(&app, &ada, &bob, "secret").await;
    let conv = sent["message"]["conversationId"].as_str().unwrap();
    let res = app
        .get(
            &format!("/api/conversations/{conv}/messages"),
            Some(&eve.token),
        )
        .await;
    assert_error(res, 404, "conversation_not_found").await;
    // Unknown ids look exactly like forbidden ones.
    let res = app
        .get(
            "/api/conversations/01000000-0000-7000-8000-000000000000/messages",
            Some(&eve.token),
        )
        .await;
    assert_error(res, 404, "conversation_not_found").await;
    // Eve's view of "her history with Ada" is her own, empty conversation.
    let page: Value = app
        .get(&format!("/api/messages/{}", ada.id), Some(&eve.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&page), Vec::<u64>::new());
    let res = app
        .get(&format!("/api/conversations/{conv}/messages"), None)
        .await;
    assert_error(res, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn the_conversation_list_puts_the_most_recent_first() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    send_rest(&app, &ada, &bob, "to bob").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    send_rest(&app, &cy, &ada, "from cy").await;
    send_rest(&app, &ada, &cy, "to cy again").await;
    let body: Value = app
        .get("/api/conversations", Some(&ada.token))
        .await
        .json()
        .await
        .unwrap();
    let list = body["conversations"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["lastMessage"]["content"], "to cy again");
    assert_eq!(list[0]["lastSeq"], 2);
    for key in ["id", "createdAt", "lastActivity"] {
        assert!(list[0][key].is_string(), "{key} in {}", list[0]);
    }
    assert_eq!(
        list[0]["id"], list[0]["lastMessage"]["conversationId"],
        "{}",
        list[0]
    );
    let names: Vec<&str> = list[0]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Ada") && names.contains(&"Cy"));
    assert_eq!(list[1]["lastMessage"]["content"], "to bob");
    let bob_view: Value = app
        .get("/api/conversations", Some(&bob.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob_view["conversations"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn rest_sends_validate_their_input_and_recognise_retries() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let send = |body: Value| {
        let app = &app;
        let token = ada.token.clone();
        async move { app.post("/api/messages/send", Some(&token), &body).await }
    };
    let e = assert_error(send(json!({})).await, 400, "validation_failed").await;
    assert!(
        e["error"]["fields"]["receiverId"].is_string()
            && e["error"]["fields"]["content"].is_string()
    );
    assert_error(
        send(json!({"receiverId": "nope", "content": "hi"})).await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        send(json!({"receiverId": bob.id, "content": ""})).await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        send(json!({"receiverId": bob.id, "content": 7})).await,
        400,
        "validation_failed",
    )
    .await;
    let nobody = "01000000-0000-7000-8000-000000000000";
    assert_error(
        send(json!({"receiverId": nobody, "content": "hi"})).await,
        404,
        "recipient_not_found",
    )
    .await;
    assert_error(
        send(json!({"receiverId": ada.id, "content": "hi"})).await,
        400,
        "cannot_message_self",
    )
    .await;

    let first = send(json!({"receiverId": bob.id, "content": "once", "clientId": "r-1"})).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(json!({"receiverId": bob.id, "content": "once", "clientId": "r-1"})).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"]["id"], first["message"]["id"]);

    let res = app
        .get(
            &format!("/api/messages/{}?limit=0", bob.id),
            Some(&ada.token),
        )
        .await;
    assert_error(res, 400, "validation_failed").await;
    let res = app
        .get(
            &format!("/api/messages/{}?limit=101", bob.id),
            Some(&ada.token),
        )
        .await;
    assert_error(res, 400, "validation_failed").await;
    let res = app.get("/api/messages/not-an-id", Some(&ada.token)).await;
    assert_error(res, 400, "validation_failed").await;
    app.stop().await;
}

#[tokio::test]
async fn rest_sends_go_into_a_conversation_by_id_and_refuse_v1_names() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Eve").await,
    );
    let first = send_rest(&app, &ada, &bob, "one").await;
    let conv = first["message"]["conversationId"].as_str().unwrap();
    let send = |token: &str, body: Value| {
        let app = &app;
        let token = token.to_owned();
        async move { app.post("/api/messages/send", Some(&token), &body).await }
    };

    let res = send(
        &bob.token,
        json!({"conversationId": conv, "content": "two", "clientId": "b-1"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let sent: Value = res.json().await.unwrap();
    assert_eq!(sent["duplicate"], false);
    assert_eq!(sent["message"]["conversationId"], conv);
    assert_eq!(sent["message"]["seq"], 2);
    assert_eq!(sent["message"]["sender"], bob.id.as_str());
    assert_eq!(sent["message"]["content"], "two");
    assert_eq!(sent["message"]["clientId"], "b-1");
    assert_eq!(sent["message"]["type"], "text");

    // Only a participant may send into a conversation; others cannot tell it exists.
    assert_error(
        send(&eve.token, json!({"conversationId": conv, "content": "hi"})).await,
        404,
        "not_participant",
    )
    .await;
    let unknown = "01000000-0000-7000-8000-000000000000";
    assert_error(
        send(
            &ada.token,
            json!({"conversationId": unknown, "content": "hi"}),
        )
        .await,
        404,
        "not_participant",
    )
    .await;
    let e = assert_error(
        send(
            &ada.token,
            json!({"conversationId": "nope", "content": "hi"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["fields"]["conversationId"].is_string(), "{e}");
    // Exactly one target.
    let e = assert_error(
        send(
            &ada.token,
            json!({"receiverId": bob.id, "conversationId": conv, "content": "hi"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(
        e["error"]["fields"]["receiverId"].is_string()
            && e["error"]["fields"]["conversationId"].is_string(),
        "{e}"
    );
    // v1 names are refused under their v2 names, never read as them.
    let e = assert_error(
        send(
            &ada.token,
            json!({"to": bob.id, "body": "hi", "client_id": "v1"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let fields = e["error"]["fields"].as_object().unwrap();
    for v2 in ["receiverId", "content", "clientId"] {
        assert!(fields[v2].is_string(), "{v2} in {e}");
    }
    assert_eq!(fields.len(), 3, "only the v1 names are named: {e}");
    assert!(
        !fields.contains_key("to") && !fields.contains_key("client_id"),
        "{e}"
    );
    assert_error(
        send(
            &ada.token,
            json!({"receiverId": bob.id, "content": "hi", "client_id": "v1"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    // Even with a null value: a v1 name is a mistake whatever it holds.
    let e = assert_error(
        send(
            &ada.token,
            json!({"receiverId": bob.id, "content": "hi", "to": null}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["fields"]["receiverId"].is_string(), "{e}");
    let page: Value = app
        .get(
            &format!("/api/conversations/{conv}/messages"),
            Some(&ada.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&page), [1, 2], "nothing refused was stored");
    app.stop().await;
}

#[tokio::test]
async fn history_and_send_answers_carry_success_and_underscore_ids() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    let sent = send_rest(&app, &ada, &bob, "hello").await;
    assert_eq!(sent["success"], true, "{sent}");
    assert_eq!(sent["duplicate"], false, "{sent}");
    let m = &sent["message"];
    assert_eq!(m["_id"], m["id"], "{sent}");
    assert_eq!(
        (&m["sender"], &m["receiver"], &m["content"], &m["type"]),
        (
            &json!(ada.id),
            &json!(bob.id),
            &json!("hello"),
            &json!("text")
        ),
        "{sent}"
    );
    assert!(
        m.get("callInfo").is_none() && m.get("amends").is_none(),
        "{sent}"
    );

    let page: Value = app
        .get(&format!("/api/messages/{}", bob.id), Some(&ada.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["success"], true, "{page}");
    assert_eq!(
        page["messages"],
        json!([m]),
        "history holds the same object"
    );

    let list: Value = app
        .get("/api/conversations", Some(&ada.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["success"], true, "{list}");
    let conv = &list["conversations"][0];
    assert_eq!(conv["lastMessage"], *m, "{list}");
    for p in conv["participants"].as_array().unwrap() {
        assert_eq!(p["_id"], p["id"], "{list}");
    }
}

#[tokio::test]
async fn history_pages_by_number_from_the_newest_as_the_old_backend_did() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob) = (app.new_user("Ada").await, app.new_user("Bob").await);
    for i in 1..=5 {
        send_rest(&app, &ada, &bob, &format!("m{i}")).await;
    }
    let page = |query: &'static str| {
        let (app, ada, bob) = (&app, &ada, &bob);
        async move {
            app.get(
                &format!("/api/messages/{}?{query}", bob.id),
                Some(&ada.token),
            )
            .await
        }
    };
    let json = |res: reqwest::Response| async move { res.json::<Value>().await.unwrap() };
    // Page 1 is the newest `limit` messages; each page is oldest first.
    assert_eq!(seqs(&json(page("page=1&limit=2").await).await), [4, 5]);
    assert_eq!(seqs(&json(page("page=2&limit=2").await).await), [2, 3]);
    assert_eq!(seqs(&json(page("page=3&limit=2").await).await), [1]);
    assert_eq!(
        seqs(&json(page("page=4&limit=2").await).await),
        Vec::<u64>::new()
    );
    // The default limit is 50, as it was.
    assert_eq!(seqs(&json(page("page=1").await).await), [1, 2, 3, 4, 5]);
    // The same route on the conversation takes pages too.
    let p2 = json(page("page=2&limit=2").await).await;
    let by_conversation: Value = app
        .get(
            &format!(
                "/api/conversations/{}/messages?page=2&limit=2",
                p2["conversationId"].as_str().unwrap()
            ),
            Some(&bob.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&by_conversation), [2, 3]);
    for (query, field) in [
        ("page=0", "page"),
        ("page=1&before=3", "page"),
        ("page=1&after=1", "page"),
        ("page=1&limit=101", "limit"),
    ] {
        let body = assert_error(page(query).await, 400, "validation_failed").await;
        assert!(
            body["error"]["fields"][field].is_string(),
            "{query}: {body}"
        );
    }
    let body = assert_error(page("page=x").await, 400, "invalid_query").await;
    assert_eq!(body["success"], false);
}
