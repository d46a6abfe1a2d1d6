//! Durability of accounts, contacts and tokens across a restart on the same data dir
//! (and keyspace). Runs on both stores (see `main.rs`).

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::assert_error;

#[tokio::test]
async fn login_works_after_a_restart_with_the_old_password() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let app = app.restart().await;
    let res = app.login(&ada.email, &ada.password).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["user"],
        json!({"id": ada.id, "_id": ada.id, "name": "Ada", "email": ada.email})
    );
    assert_error(
        app.login(&ada.email, "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;
    // The email is still taken.
    assert_error(
        app.register("Ada again", &ada.email, &ada.password).await,
        409,
        "email_taken",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn contacts_survive_a_restart() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    assert_eq!(app.add_contact(&ada.token, &bob.email).await.status(), 200);
    let app = app.restart().await;

    let ada_contacts: Value = app.contacts(&ada.token).await.json().await.unwrap();
    assert_eq!(
        ada_contacts,
        json!({"success": true, "contacts": [{"id": bob.id, "_id": bob.id, "name": "Bob", "email": bob.email}]})
    );
    let bob_contacts: Value = app.contacts(&bob.token).await.json().await.unwrap();
    assert_eq!(
        bob_contacts,
        json!({"success": true, "contacts": [{"id": ada.id, "_id": ada.id, "name": "Ada", "email": ada.email}]})
    );
    assert_error(
        app.add_contact(&bob.token, &ada.email).await,
        409,
        "already_contact",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_token_issued_before_a_restart_still_works() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let secret_before = std::fs::read(app.data_dir().join("jwt-secret")).unwrap();
    let app = app.restart().await;
    assert_eq!(
        std::fs::read(app.data_dir().join("jwt-secret")).unwrap(),
        secret_before,
        "the secret is kept"
    );
    let res = app.me(&ada.token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], ada.id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn a_token_revoked_before_a_restart_stays_revoked() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let kept: Value = app
        .login(&ada.email, &ada.password)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.logout(&ada.token).await.status(), 200);
    let app = app.restart().await;
    assert_error(app.me(&ada.token).await, 401, "unauthorized").await;
    assert_eq!(
        app.me(kept["token"].as_str().unwrap()).await.status(),
        200,
        "the other token was not revoked"
    );
    app.stop().await;
}
