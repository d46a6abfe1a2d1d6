//! Contacts over REST: adding one makes two users contacts of each other; the list is
//! sorted by name; every refusal has its own code.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_error, spawn_app};

fn user_json(u: &TestUser) -> Value {
    json!({"id": u.id, "_id": u.id, "name": u.name, "email": u.email})
}

/// The caller's contacts, asserting a 200 `{success: true, contacts: [...]}`.
async fn contacts_of(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let res = app.contacts(&user.token).await;
    assert_eq!(res.status(), 200, "listing contacts of {}", user.name);
    let body: Value = res.json().await.unwrap();
    let obj = body.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "only `success` and `contacts`: {body}");
    assert_eq!(body["success"], true, "{body}");
    body["contacts"]
        .as_array()
        .expect("contacts is an array")
        .clone()
}

#[tokio::test]
async fn a_new_user_has_no_contacts() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    assert_eq!(contacts_of(&app, &ada).await, Vec::<Value>::new());
}

#[tokio::test]
async fn adding_a_contact_makes_both_users_see_each_other() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;

    let res = app.add_contact(&ada.token, &bob.email).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"success": true, "message": "Contact added", "contact": user_json(&bob)})
    );

    assert_eq!(contacts_of(&app, &ada).await, [user_json(&bob)]);
    assert_eq!(contacts_of(&app, &bob).await, [user_json(&ada)]);
}

#[tokio::test]
async fn a_contact_can_be_added_by_any_spelling_of_the_email() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let res = app
        .add_contact(&ada.token, &format!("  {}  ", bob.email.to_uppercase()))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["contact"],
        user_json(&bob)
    );
}

#[tokio::test]
async fn contacts_are_sorted_by_name_ignoring_case() {
    let app = spawn_app().await;
    let zed = app.new_user("Zed").await;
    let charlie = app.new_user("charlie").await;
    let alice = app.new_user("Alice").await;
    let bob = app.new_user("bob").await;
    for other in [&charlie, &alice, &bob] {
        assert_eq!(
            app.add_contact(&zed.token, &other.email).await.status(),
            200
        );
    }
    let names: Vec<Value> = contacts_of(&app, &zed)
        .await
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, ["Alice", "bob", "charlie"]);
    assert_eq!(
        contacts_of(&app, &zed).await,
        [user_json(&alice), user_json(&bob), user_json(&charlie)]
    );
}

#[tokio::test]
async fn adding_an_unknown_email_is_user_not_found() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let body = assert_error(
        app.add_contact(&ada.token, "nobody@example.com").await,
        404,
        "user_not_found",
    )
    .await;
    assert_eq!(
        body["error"].as_object().unwrap().len(),
        2,
        "code and message only: {body}"
    );
    assert!(contacts_of(&app, &ada).await.is_empty());
}

#[tokio::test]
async fn adding_yourself_is_refused() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    assert_error(
        app.add_contact(&ada.token, &ada.email).await,
        400,
        "cannot_add_self",
    )
    .await;
    assert_error(
        app.add_contact(&ada.token, &ada.email.to_uppercase()).await,
        400,
        "cannot_add_self",
    )
    .await;
    assert!(contacts_of(&app, &ada).await.is_empty());
}

#[tokio::test]
async fn adding_a_contact_twice_is_a_conflict() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    assert_eq!(app.add_contact(&ada.token, &bob.email).await.status(), 200);
    assert_error(
        app.add_contact(&ada.token, &bob.email).await,
        409,
        "already_contact",
    )
    .await;
    assert_eq!(
        contacts_of(&app, &ada).await,
        [user_json(&bob)],
        "still one entry"
    );
}

#[tokio::test]
async fn adding_back_someone_who_added_you_is_a_conflict() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    assert_eq!(app.add_contact(&ada.token, &bob.email).await.status(), 200);
    assert_error(
        app.add_contact(&bob.token, &ada.email).await,
        409,
        "already_contact",
    )
    .await;
    assert_eq!(
        contacts_of(&app, &bob).await,
        [user_json(&ada)],
        "still one entry"
    );
}

#[tokio::test]
async fn adding_a_contact_with_a_bad_email_is_a_validation_failure() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let body = assert_error(
        app.add_contact(&ada.token, "not-an-email").await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["fields"],
        json!({"email": "is not a valid email address"})
    );
    let res = app
        .post("/api/contact/add-contact", Some(&ada.token), &json!({}))
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert_eq!(body["error"]["fields"], json!({"email": "is required"}));
    let res = app
        .post(
            "/api/contact/add-contact",
            Some(&ada.token),
            &json!({"email": 7}),
        )
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert_eq!(
        body["error"]["fields"],
        json!({"email": "must be a string"})
    );
}

#[tokio::test]
async fn the_contact_routes_need_a_token() {
    let app = spawn_app().await;
    let bob = app.new_user("Bob").await;
    let res = app
        .post(
            "/api/contact/add-contact",
            None,
            &json!({"email": bob.email}),
        )
        .await;
    assert_error(res, 401, "unauthorized").await;
    assert_error(
        app.get("/api/contact/contacts", None).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        app.add_contact("garbage", &bob.email).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(app.contacts("garbage").await, 401, "unauthorized").await;
    assert!(
        contacts_of(&app, &bob).await.is_empty(),
        "nothing was added"
    );
}
