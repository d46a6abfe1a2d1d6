//! Refresh tokens and signed-in devices: a refresh token trades once for a new pair, a
//! reused one signs its device out, and a user sees their devices and signs one out,
//! which ends its tokens and its live sessions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::STORE;
use crate::helpers::{TestApp, assert_error, str_of};

/// The body of a successful refresh.
async fn refreshed(app: &TestApp, refresh_token: &str) -> Value {
    let res = app.refresh(refresh_token).await;
    assert_eq!(res.status(), 200, "refreshing");
    res.json().await.unwrap()
}

/// The `exp - iat` of an access token, read from its payload.
fn lifetime_secs(token: &str) -> u64 {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let claims: Value = serde_json::from_slice(&b64url_decode(payload)).unwrap();
    claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap()
}

fn b64url_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[tokio::test]
async fn a_refresh_token_trades_once_for_a_new_pair_and_the_new_pair_works() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    assert!(
        ada.refresh_token.starts_with("prt_"),
        "{}",
        ada.refresh_token
    );

    let first = refreshed(&app, &ada.refresh_token).await;
    let (token, refresh) = (str_of(&first, "token"), str_of(&first, "refreshToken"));
    assert_ne!(token, ada.token);
    assert_ne!(refresh, ada.refresh_token);
    assert_eq!(first["user"]["id"], ada.id.as_str());
    assert_eq!(app.me(token).await.status(), 200);
    // The chain goes on: the new refresh token trades in turn.
    let second = refreshed(&app, refresh).await;
    assert_eq!(app.me(str_of(&second, "token")).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_reused_refresh_token_signs_its_device_out_and_closes_its_sessions_within_a_second() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let laptop = app.login_on(&ada, "Ada's laptop").await;
    // The phone refreshes; a thief kept the phone's first refresh token.
    let phone = refreshed(&app, &ada.refresh_token).await;
    let mut phone_ws = app.connect(str_of(&phone, "token")).await;
    let mut phone_old_ws = app.connect(&ada.token).await;
    let mut laptop_ws = app.connect(str_of(&laptop, "token")).await;

    let started = Instant::now();
    let res = app.refresh(&ada.refresh_token).await;
    let body = assert_error(res, 401, "unauthorized").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    for ws in [&mut phone_ws, &mut phone_old_ws] {
        let (code, reason) = ws.closed().await;
        assert_eq!(code, 4003, "reason: {reason}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    // Every token of the phone's family is dead: both access tokens, the newer refresh.
    assert_error(app.me(str_of(&phone, "token")).await, 401, "unauthorized").await;
    assert_error(app.me(&ada.token).await, 401, "unauthorized").await;
    assert_error(
        app.refresh(str_of(&phone, "refreshToken")).await,
        401,
        "unauthorized",
    )
    .await;
    // The laptop is another family: it carries on.
    assert_eq!(app.me(str_of(&laptop, "token")).await.status(), 200);
    laptop_ws.send_to(&bob.id, "still here", "l1").await;
    assert_eq!(laptop_ws.recv().await["type"], "ack");
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_token_is_dead_after_its_device_logs_out() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    assert_eq!(app.logout(&ada.token).await.status(), 200);
    assert_error(app.refresh(&ada.refresh_token).await, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn refresh_requests_that_are_not_refresh_tokens_are_refused_in_the_envelope() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let missing = app.post("/api/auth/refresh", None, &json!({})).await;
    let body = assert_error(missing, 400, "validation_failed").await;
    assert!(
        body["error"]["fields"]["refreshToken"].is_string(),
        "{body}"
    );
    for bad in ["garbage", ada.token.as_str(), "prt_00"] {
        assert_error(app.refresh(bad).await, 401, "unauthorized").await;
    }
    // The same ids with another secret: not a token of Ada's, but it names her login,
    // so it counts as a reuse and the login is signed out (the server cannot tell it
    // from a replay).
    let mut forged = ada.refresh_token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_error(app.refresh(&forged).await, 401, "unauthorized").await;
    assert_error(app.refresh(&ada.refresh_token).await, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn refresh_tokens_and_signed_in_devices_survive_a_restart() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let app = app.restart().await;
    assert_eq!(app.me(&ada.token).await.status(), 200);
    let next = refreshed(&app, &ada.refresh_token).await;
    assert_eq!(app.sessions(str_of(&next, "token")).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_token_expires_after_the_configured_lifetime() {
    let Some(app) = STORE
        .spawn_app_with(|c| c.refresh_ttl = Duration::from_secs(1))
        .await
    else {
        return;
    };
    let ada = app.new_user("Ada").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_error(app.refresh(&ada.refresh_token).await, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn the_access_token_keeps_its_configurable_lifetime_of_seven_days_by_default() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    assert_eq!(lifetime_secs(&ada.token), 7 * 24 * 3600);
    let refreshed = refreshed(&app, &ada.refresh_token).await;
    assert_eq!(lifetime_secs(str_of(&refreshed, "token")), 7 * 24 * 3600);
    app.stop().await;

    let Some(app) = STORE
        .spawn_app_with(|c| c.token_ttl = Duration::from_secs(3600))
        .await
    else {
        return;
    };
    let bob = app.new_user("Bob").await;
    assert_eq!(lifetime_secs(&bob.token), 3600);
    app.stop().await;
}

#[tokio::test]
async fn the_sessions_list_shows_each_signed_in_device_and_which_one_asks() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let laptop = app.login_on(&ada, "Ada's laptop").await;
    // Without a device name, the User-Agent names the device.
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("User-Agent", "ParleyTerm/2.1 (Linux)")
        .json(&json!({"email": ada.email, "password": ada.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let sessions = app.sessions(str_of(&laptop, "token")).await;
    let devices: Vec<&str> = sessions.iter().map(|s| str_of(s, "device")).collect();
    assert_eq!(
        devices,
        ["unknown device", "Ada's laptop", "ParleyTerm/2.1 (Linux)"]
    );
    let current: Vec<bool> = sessions
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, [false, true, false]);
    for s in &sessions {
        let mut keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["createdAt", "current", "device", "id", "lastSeenAt"],
            "nothing more is shown, no token or hash: {s}"
        );
        assert!(str_of(s, "createdAt").ends_with('Z'), "{s}");
    }
    // Another user sees only their own.
    let bob = app.new_user("Bob").await;
    assert_eq!(app.sessions(&bob.token).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_device_name_is_validation_failed() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let res = app
        .post(
            "/api/auth/login",
            None,
            &json!({"email": ada.email, "password": ada.password, "device": "a\u{202E}b"}),
        )
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert!(body["error"]["fields"]["device"].is_string(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn signing_a_device_out_revokes_its_tokens_and_closes_its_sessions_within_a_second() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let laptop = app.login_on(&ada, "Ada's laptop").await;
    let mut phone_ws = app.connect(&ada.token).await;
    let mut laptop_ws = app.connect(str_of(&laptop, "token")).await;
    let sessions = app.sessions(&ada.token).await;
    let laptop_id = str_of(&sessions[1], "id").to_owned();
    assert_eq!(str_of(&sessions[1], "device"), "Ada's laptop");

    let started = Instant::now();
    assert_eq!(app.sign_out(&ada.token, &laptop_id).await.status(), 204);
    let (code, reason) = laptop_ws.closed().await;
    assert_eq!(code, 4003, "reason: {reason}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    assert_error(app.me(str_of(&laptop, "token")).await, 401, "unauthorized").await;
    assert_error(
        app.refresh(str_of(&laptop, "refreshToken")).await,
        401,
        "unauthorized",
    )
    .await;
    assert!(app.connect_raw(str_of(&laptop, "token")).await.is_err());
    // The phone is untouched.
    phone_ws.send_to(&bob.id, "hello", "p1").await;
    assert_eq!(phone_ws.recv().await["type"], "ack");
    assert_eq!(app.sessions(&ada.token).await.len(), 1);
    // Signing it out again: it is gone.
    assert_error(
        app.sign_out(&ada.token, &laptop_id).await,
        404,
        "session_not_found",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn another_users_or_an_unknown_session_id_is_404_and_a_malformed_one_400() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let bobs_id = str_of(&app.sessions(&bob.token).await[0], "id").to_owned();

    assert_error(
        app.sign_out(&ada.token, &bobs_id).await,
        404,
        "session_not_found",
    )
    .await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(
        app.sign_out(&ada.token, &unknown).await,
        404,
        "session_not_found",
    )
    .await;
    let body = assert_error(
        app.sign_out(&ada.token, "not-an-id").await,
        400,
        "validation_failed",
    )
    .await;
    assert!(body["error"]["fields"]["id"].is_string(), "{body}");
    // Bob is still signed in.
    assert_eq!(app.me(&bob.token).await.status(), 200);
    assert_error(
        app.sign_out(&bob.token, "x").await,
        400,
        "validation_failed",
    )
    .await;
    let without_token = app
        .delete(&format!("/api/auth/sessions/{bobs_id}"), None, None)
        .await;
    assert_error(without_token, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_moves_the_devices_last_seen_time_forward() {
    let Some(app) = STORE.spawn_app().await else {
        return;
    };
    let ada = app.new_user("Ada").await;
    let before = app.sessions(&ada.token).await[0].clone();
    assert_eq!(before["createdAt"], before["lastSeenAt"]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let next = refreshed(&app, &ada.refresh_token).await;
    let after = app.sessions(str_of(&next, "token")).await[0].clone();
    assert_eq!(after["id"], before["id"], "a refresh keeps the device");
    assert!(
        str_of(&after, "lastSeenAt") > str_of(&before, "lastSeenAt"),
        "{before} then {after}"
    );
    app.stop().await;
}

#[tokio::test]
async fn account_requests_beyond_the_per_user_rate_are_429() {
    let Some(app) = STORE
        .spawn_app_with(|c| c.account_requests_per_minute = 2)
        .await
    else {
        return;
    };
    let ada = app.new_user("Ada").await;
    app.sessions(&ada.token).await;
    app.sessions(&ada.token).await;
    let res = app.get("/api/auth/sessions", Some(&ada.token)).await;
    let body = assert_error(res, 429, "rate_limited").await;
    assert!(body["error"]["retryAfterMs"].as_u64().is_some(), "{body}");
    app.stop().await;
}
