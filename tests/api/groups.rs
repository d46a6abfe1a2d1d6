//! Groups over REST and WebSocket: creating one, sending into it, membership changes as
//! events of its stream, roles, the cap, and who may read what. Runs on both stores
//! (see `main.rs`).

use std::time::Duration;

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::{TestApp, TestUser, assert_error};

async fn create_group(
    app: &TestApp,
    owner: &TestUser,
    name: &str,
    members: &[&TestUser],
) -> String {
    let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
    let res = app
        .post(
            "/api/conversations",
            Some(&owner.token),
            &json!({"name": name, "memberIds": ids}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["conversation"]["id"].as_str().unwrap().to_owned()
}

async fn send_in(app: &TestApp, from: &TestUser, group: &str, content: &str) -> reqwest::Response {
    app.post(
        "/api/messages/send",
        Some(&from.token),
        &json!({"conversationId": group, "content": content}),
    )
    .await
}

async fn add(app: &TestApp, by: &TestUser, group: &str, users: &[&TestUser]) -> reqwest::Response {
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    app.post(
        &format!("/api/conversations/{group}/members"),
        Some(&by.token),
        &json!({"userIds": ids}),
    )
    .await
}

async fn remove(app: &TestApp, by: &TestUser, group: &str, user: &TestUser) -> reqwest::Response {
    app.http
        .delete(app.url(&format!("/api/conversations/{group}/members/{}", user.id)))
        .bearer_auth(&by.token)
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, by: &TestUser, path: &str, body: Value) -> reqwest::Response {
    app.http
        .patch(app.url(path))
        .bearer_auth(&by.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn history(app: &TestApp, who: &TestUser, group: &str) -> reqwest::Response {
    app.get(
        &format!("/api/conversations/{group}/messages?limit=100"),
        Some(&who.token),
    )
    .await
}

/// Each message of a history page as (seq, type, content or membership action).
async fn page_of(res: reqwest::Response) -> Vec<(u64, String, String)> {
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let what = match m["membership"]["action"].as_str() {
                Some(action) => action.to_owned(),
                None => m["content"].as_str().unwrap().to_owned(),
            };
            (
                m["seq"].as_u64().unwrap(),
                m["type"].as_str().unwrap().to_owned(),
                what,
            )
        })
        .collect()
}

fn entry(seq: u64, kind: &str, what: &str) -> (u64, String, String) {
    (seq, kind.to_owned(), what.to_owned())
}

#[tokio::test]
async fn a_group_is_created_and_every_member_gets_its_messages_live_and_in_history() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let mut b = app.connect(&bob.token).await;
    let mut c = app.connect(&cy.token).await;
    let res = app
        .post(
            "/api/conversations",
            Some(&ada.token),
            &json!({"name": "  Tea club ", "memberIds": [bob.id, cy.id, ada.id]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let group = body["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["conversation"]["name"], "Tea club");
    let mut roles: Vec<(String, String)> = body["conversation"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("Ada".into(), "owner".into()),
            ("Bob".into(), "member".into()),
            ("Cy".into(), "member".into())
        ]
    );

    // The creation is the group's first event, delivered live to every member.
    let created = b.recv().await;
    assert_eq!(created["message"]["type"], "membership");
    assert_eq!(created["message"]["membership"]["action"], "created");
    assert_eq!(created["message"]["membership"]["name"], "Tea club");
    assert_eq!(c.recv().await["message"]["seq"], 1);

    // A REST send and a WebSocket send into the group reach everyone else.
    assert_eq!(
        send_in(&app, &ada, &group, "hello team").await.status(),
        201
    );
    b.send(json!({"type": "send", "conversationId": group, "content": "hi Ada", "clientId": "b1"}))
        .await;
    let ack = b.recv_until("ack").await;
    let ack = ack.last().unwrap();
    assert_eq!(ack["message"]["seq"], 3);
    let got: Vec<(u64, String)> = [c.recv().await, c.recv().await]
        .iter()
        .map(|f| {
            (
                f["message"]["seq"].as_u64().unwrap(),
                f["message"]["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, [(2, "hello team".into()), (3, "hi Ada".into())]);
    assert!(got.iter().all(|_| true));
    assert_eq!(
        page_of(history(&app, &cy, &group).await).await,
        [
            entry(1, "membership", "created"),
            entry(2, "text", "hello team"),
            entry(3, "text", "hi Ada")
        ]
    );

    // The list names the group, counts its members and shows its last event.
    let list: Value = app
        .get("/api/conversations", Some(&cy.token))
        .await
        .json()
        .await
        .unwrap();
    let listed = &list["conversations"][0];
    assert_eq!(listed["id"], group.as_str());
    assert_eq!(listed["type"], "group");
    assert_eq!(listed["name"], "Tea club");
    assert_eq!(listed["memberCount"], 3);
    assert_eq!(listed["lastSeq"], 3);
    assert_eq!(listed["lastMessage"]["content"], "hi Ada");
}

#[tokio::test]
async fn a_removed_member_stops_receiving_at_once_and_can_no_longer_read_or_send() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let group = create_group(&app, &ada, "Ops", &[&bob, &cy]).await;
    let mut b = app.connect(&bob.token).await;
    assert_eq!(send_in(&app, &ada, &group, "before").await.status(), 201);
    assert_eq!(b.recv().await["message"]["content"], "before");

    let res = remove(&app, &ada, &group, &bob).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"]["membership"]["action"], "removed");
    assert_eq!(body["message"]["membership"]["users"][0], bob.id.as_str());
    // Bob learns of his removal, then nothing more.
    let removal = b.recv().await;
    assert_eq!(removal["message"]["membership"]["action"], "removed");
    assert_eq!(send_in(&app, &ada, &group, "after").await.status(), 201);
    assert!(b.try_recv(Duration::from_millis(300)).await.is_none());

    // To Bob the group no longer exists: no history, no sends, no list entry, no sync.
    assert_error(
        history(&app, &bob, &group).await,
        404,
        "conversation_not_found",
    )
    .await;
    assert_error(
        send_in(&app, &bob, &group, "let me in").await,
        404,
        "not_participant",
    )
    .await;
    let res = app
        .get(&format!("/api/conversations/{group}"), Some(&bob.token))
        .await;
    assert_error(res, 404, "conversation_not_found").await;
    let list: Value = app
        .get("/api/conversations", Some(&bob.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["conversations"].as_array().unwrap().len(), 0);
    let mut b2 = app.connect(&bob.token).await;
    b2.send(json!({"type": "sync", "cursors": {}})).await;
    let frames = b2.recv_until("synced").await;
    assert_eq!(frames.len(), 1, "nothing replayed: {frames:?}");

    // Cy saw it all, in one order.
    assert_eq!(
        page_of(history(&app, &cy, &group).await).await,
        [
            entry(1, "membership", "created"),
            entry(2, "text", "before"),
            entry(3, "membership", "removed"),
            entry(4, "text", "after"),
        ]
    );
}

#[tokio::test]
async fn a_member_added_later_reads_history_from_their_join_on() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let group = create_group(&app, &ada, "Plans", &[&bob]).await;
    assert_eq!(
        send_in(&app, &ada, &group, "secret before Cy")
            .await
            .status(),
        201
    );
    let mut c = app.connect(&cy.token).await;
    let res = add(&app, &ada, &group, &[&cy]).await;
    assert_eq!(res.status(), 201);
    let added = c.recv().await;
    assert_eq!(added["message"]["membership"]["action"], "added");
    assert_eq!(added["message"]["seq"], 3);
    assert_eq!(
        send_in(&app, &bob, &group, "welcome Cy").await.status(),
        201
    );
    assert_eq!(c.recv().await["message"]["content"], "welcome Cy");

    assert_eq!(
        page_of(history(&app, &cy, &group).await).await,
        [
            entry(3, "membership", "added"),
            entry(4, "text", "welcome Cy")
        ]
    );
    // A sync from nothing replays from the join, too.
    let mut c2 = app.connect(&cy.token).await;
    c2.send(json!({"type": "sync", "cursors": {}})).await;
    let seqs: Vec<u64> = c2
        .recv_until("synced")
        .await
        .iter()
        .filter_map(|f| f["message"]["seq"].as_u64())
        .collect();
    assert_eq!(seqs, [3, 4]);
    // Bob, there from the start, reads everything.
    assert_eq!(page_of(history(&app, &bob, &group).await).await.len(), 4);
}

#[tokio::test]
async fn roles_decide_who_may_change_a_group() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy, dee) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
        app.new_user("Dee").await,
    );
    let group = create_group(&app, &ada, "Club", &[&bob, &cy]).await;
    // A member may neither add, remove nor rename.
    assert_error(add(&app, &bob, &group, &[&dee]).await, 403, "not_allowed").await;
    assert_error(remove(&app, &bob, &group, &cy).await, 403, "not_allowed").await;
    let group_path = format!("/api/conversations/{group}");
    let rename = |by| patch(&app, by, &group_path, json!({"name": "Bob's"}));
    assert_error(rename(&bob).await, 403, "not_allowed").await;
    // The owner makes Bob an admin; then he may.
    let path = format!("/api/conversations/{group}/members/{}", bob.id);
    let res = patch(&app, &ada, &path, json!({"role": "admin"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(add(&app, &bob, &group, &[&dee]).await.status(), 201);
    assert_eq!(rename(&bob).await.status(), 200);
    // Only the owner gives roles, and nobody removes the owner.
    let cy_path = format!("/api/conversations/{group}/members/{}", cy.id);
    assert_error(
        patch(&app, &bob, &cy_path, json!({"role": "admin"})).await,
        403,
        "not_allowed",
    )
    .await;
    assert_error(remove(&app, &bob, &group, &ada).await, 403, "not_allowed").await;
    assert_error(add(&app, &ada, &group, &[&cy]).await, 409, "already_member").await;

    let details: Value = app
        .get(&format!("/api/conversations/{group}"), Some(&dee.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(details["conversation"]["name"], "Bob's");
    assert_eq!(
        details["conversation"]["members"].as_array().unwrap().len(),
        4
    );

    // The owner leaves: the group passes to its admin.
    let ada_as_member = TestUser { ..ada.clone() };
    assert_eq!(
        remove(&app, &ada, &group, &ada_as_member).await.status(),
        200
    );
    let details: Value = app
        .get(&format!("/api/conversations/{group}"), Some(&bob.token))
        .await
        .json()
        .await
        .unwrap();
    let bob_now = details["conversation"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == bob.id.as_str())
        .unwrap()["role"]
        .clone();
    assert_eq!(bob_now, "owner");
}

#[tokio::test]
async fn two_admins_removing_each_other_are_decided_in_one_order() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let group = create_group(&app, &ada, "Duel", &[&bob, &cy]).await;
    for who in [&bob, &cy] {
        let path = format!("/api/conversations/{group}/members/{}", who.id);
        assert_eq!(
            patch(&app, &ada, &path, json!({"role": "admin"}))
                .await
                .status(),
            200
        );
    }
    let (one, two) = tokio::join!(
        remove(&app, &bob, &group, &cy),
        remove(&app, &cy, &group, &bob)
    );
    let mut statuses = [one.status().as_u16(), two.status().as_u16()];
    statuses.sort();
    // The first sequenced wins; the loser is no longer a member.
    assert_eq!(statuses, [200, 404]);
    let details: Value = app
        .get(&format!("/api/conversations/{group}"), Some(&ada.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        details["conversation"]["members"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_send_racing_a_removal_is_before_it_for_everyone_or_refused() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let (ada, bob, cy) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
    );
    let group = create_group(&app, &ada, "Race", &[&bob, &cy]).await;
    let mut c = app.connect(&cy.token).await;
    // Bob keeps sending while Ada removes him.
    let sending = async {
        let mut answers = Vec::new();
        for n in 0..30 {
            answers.push(send_in(&app, &bob, &group, &format!("bob {n}")).await);
        }
        answers
    };
    let removing = async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        remove(&app, &ada, &group, &bob).await
    };
    let (answers, removal) = tokio::join!(sending, removing);
    assert_eq!(removal.status(), 200);
    let removal: Value = removal.json().await.unwrap();
    let removed_at = removal["message"]["seq"].as_u64().unwrap();

    // Each send was sequenced before the removal, or refused as from a non-member.
    let mut accepted = Vec::new();
    for answer in answers {
        if answer.status() == 201 {
            let body: Value = answer.json().await.unwrap();
            let seq = body["message"]["seq"].as_u64().unwrap();
            assert!(seq < removed_at, "a send from a removed member: {seq}");
            accepted.push(seq);
        } else {
            assert_error(answer, 404, "not_participant").await;
        }
    }
    // Cy saw the same order live as history keeps: Bob's accepted sends, then his
    // removal, and nothing of Bob's after it.
    let mut live = Vec::new();
    while let Some(frame) = c.try_recv(Duration::from_millis(500)).await {
        if frame["type"] == "message" {
            live.push(frame["message"]["seq"].as_u64().unwrap());
        }
    }
    let kept = page_of(history(&app, &cy, &group).await).await;
    let kept_seqs: Vec<u64> = kept.iter().map(|(seq, ..)| *seq).collect();
    assert_eq!(kept_seqs, (1..=removed_at).collect::<Vec<_>>(), "gapless");
    assert_eq!(
        live,
        kept_seqs[1..],
        "live in history's order (after the creation)"
    );
    assert_eq!(kept.last().unwrap().2, "removed");
    let bobs: Vec<u64> = kept
        .iter()
        .filter(|(_, kind, _)| kind == "text")
        .map(|(seq, ..)| *seq)
        .collect();
    assert_eq!(bobs, accepted, "every accepted send is kept, in order");
}

#[tokio::test]
async fn bad_group_requests_are_refused_with_the_envelope() {
    let Some(app) = STORE.spawn_app_with(|c| c.max_group_members = 3).await else {
        return;
    };
    let (ada, bob, cy, dee, eve) = (
        app.new_user("Ada").await,
        app.new_user("Bob").await,
        app.new_user("Cy").await,
        app.new_user("Dee").await,
        app.new_user("Eve").await,
    );
    let res = app
        .post(
            "/api/conversations",
            Some(&ada.token),
            &json!({"name": " ", "memberIds": ["nope"]}),
        )
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert!(body["error"]["fields"]["name"].is_string(), "{body}");
    assert!(body["error"]["fields"]["memberIds"].is_string(), "{body}");
    let stranger = "0190a8e0-0000-7000-8000-000000000001";
    let res = app
        .post(
            "/api/conversations",
            Some(&ada.token),
            &json!({"name": "G", "memberIds": [stranger]}),
        )
        .await;
    assert_error(res, 404, "member_not_found").await;
    let res = app
        .post(
            "/api/conversations",
            Some(&ada.token),
            &json!({"name": "G", "memberIds": [bob.id, cy.id, dee.id]}),
        )
        .await;
    assert_error(res, 409, "group_full").await;

    let group = create_group(&app, &ada, "Small", &[&bob, &cy]).await;
    assert_error(add(&app, &ada, &group, &[&dee]).await, 409, "group_full").await;
    // Outsiders cannot tell the group from one that does not exist.
    assert_error(
        add(&app, &eve, &group, &[&dee]).await,
        404,
        "conversation_not_found",
    )
    .await;
    let missing = "0190a8e0-0000-7000-8000-0000000000ff";
    assert_error(
        add(&app, &eve, missing, &[&dee]).await,
        404,
        "conversation_not_found",
    )
    .await;
    assert_error(
        history(&app, &eve, &group).await,
        404,
        "conversation_not_found",
    )
    .await;
    assert_error(
        remove(&app, &ada, &group, &dee).await,
        404,
        "member_not_found",
    )
    .await;
    let res = app
        .http
        .delete(app.url(&format!("/api/conversations/{group}/members/not-an-id")))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "member_not_found").await;
    let bob_path = format!("/api/conversations/{group}/members/{}", bob.id);
    let res = patch(&app, &ada, &bob_path, json!({"role": "owner"})).await;
    assert_error(res, 400, "validation_failed").await;
    let res = app
        .post(
            &format!("/api/conversations/{group}/members"),
            Some(&ada.token),
            &json!({"userIds": []}),
        )
        .await;
    assert_error(res, 400, "validation_failed").await;
}
