//! Accounts over REST: register, login, logout, me; the error envelope for every way a
//! request can be wrong; rate limits; security headers and CORS; the token secret.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use parley::app::Application;
use parley::config::Secret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with, test_config};

const PASSWORD: &str = "correct horse battery";

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// A user object as `GET /api/auth/me` answers it: with `success: true`.
fn with_success(user: &Value) -> Value {
    let mut me = user.clone();
    me["success"] = json!(true);
    me
}

/// Asserts `v` is a user object with exactly these fields and a canonical UUID id,
/// repeated as `_id` (the name the backend Parley replaces used).
fn assert_user(v: &Value, name: &str, email: &str) {
    assert_eq!(keys(v), ["_id", "email", "id", "name"], "user: {v}");
    assert_eq!(v["_id"], v["id"], "user: {v}");
    assert_eq!(v["name"], name, "user: {v}");
    assert_eq!(v["email"], email, "user: {v}");
    let id = v["id"].as_str().expect("id is a string");
    let parsed = uuid::Uuid::parse_str(id).expect("id is a UUID");
    assert_eq!(parsed.hyphenated().to_string(), id, "id is canonical");
}

/// Asserts an auth answer: `{success: true, message, token, refreshToken, user}` with a
/// non-empty token and refresh token; returns the token.
fn assert_auth(body: &Value, name: &str, email: &str) -> String {
    assert_eq!(
        keys(body),
        ["message", "refreshToken", "success", "token", "user"],
        "body: {body}"
    );
    assert_eq!(body["success"], true, "body: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    let refresh = body["refreshToken"]
        .as_str()
        .expect("refreshToken is a string");
    assert!(refresh.starts_with("prt_"), "refresh token: {refresh}");
    assert_user(&body["user"], name, email);
    let token = body["token"].as_str().expect("token is a string");
    assert_eq!(token.split('.').count(), 3, "token is a JWT: {token}");
    token.to_owned()
}

/// Asserts a 429 `rate_limited` with a positive whole-seconds `Retry-After`, and the
/// same wait in milliseconds as `retryAfterMs` in the body.
async fn assert_rate_limited(res: reqwest::Response) {
    let retry_after = res
        .headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .expect("Retry-After is text")
        .to_owned();
    let secs: u64 = retry_after.parse().expect("Retry-After is whole seconds");
    assert!(
        secs > 0 && secs <= 60,
        "Retry-After {secs} within the minute"
    );
    let body = assert_error(res, 429, "rate_limited").await;
    // The body says the same in milliseconds; the header rounds it up to seconds.
    let ms = body["error"]["retryAfterMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("429 carries retryAfterMs: {body}"));
    assert!(
        ms > 0 && ms.div_ceil(1000) == secs,
        "retryAfterMs {ms} agrees with Retry-After {secs}"
    );
}

/// A POST of a raw body, with an optional Content-Type.
async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = app.http.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.expect("request sent")
}

fn assert_security_headers(res: &reqwest::Response) {
    let h = res.headers();
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let what = format!("{} {}", res.status(), res.url().path());
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert!(
        get("content-security-policy").contains("default-src 'none'"),
        "{what}"
    );
}

// ---------------------------------------------------------------------------------------
// Health, unknown routes, wrong methods.

#[tokio::test]
async fn the_health_check_answers_ok() {
    let app = spawn_app().await;
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn an_unknown_route_is_a_not_found_envelope() {
    let app = spawn_app().await;
    for path in ["/nope", "/api/auth/nope", "/api/contact"] {
        let body = assert_error(app.get(path, None).await, 404, "not_found").await;
        assert_eq!(keys(&body), ["error", "message", "success"]);
        assert_eq!(
            keys(&body["error"]),
            ["code", "message"],
            "no fields outside validation"
        );
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_method_not_allowed_envelope() {
    let app = spawn_app().await;
    let res = app.http.delete(app.url("/healthz")).send().await.unwrap();
    assert_error(res, 405, "method_not_allowed").await;
    assert_error(
        app.get("/api/auth/login", None).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_error(
        app.get("/api/auth/register", None).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_error(
        app.post("/api/auth/me", None, &json!({})).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_error(
        app.get("/api/contact/add-contact", None).await,
        405,
        "method_not_allowed",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Register.

#[tokio::test]
async fn registering_returns_a_token_and_the_new_user() {
    let app = spawn_app().await;
    let res = app
        .register("Ada Lovelace", "ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let token = assert_auth(&body, "Ada Lovelace", "ada@example.com");

    let res = app.me(&token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        with_success(&body["user"]),
        "me is the registered user"
    );
}

#[tokio::test]
async fn registering_trims_the_name_and_normalises_the_email() {
    let app = spawn_app().await;
    let res = app
        .register("  Ada  ", "  Ada@Example.COM  ", PASSWORD)
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_auth(&body, "Ada", "ada@example.com");

    // The normalised address logs in, whatever its spelling.
    let res = app.login("ADA@example.com ", PASSWORD).await;
    assert_eq!(res.status(), 200);
    let login: Value = res.json().await.unwrap();
    assert_eq!(login["user"], body["user"]);
}

#[tokio::test]
async fn registering_twice_with_the_same_email_is_a_conflict() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("Ada", "ada@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    let body = assert_error(
        app.register("Other Ada", "ada@example.com", PASSWORD).await,
        409,
        "email_taken",
    )
    .await;
    assert_eq!(keys(&body["error"]), ["code", "message"]);
}

#[tokio::test]
async fn registering_the_same_email_differently_spelled_is_a_conflict() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("Ada", "ada@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    assert_error(
        app.register("Ada", "ADA@Example.com", PASSWORD).await,
        409,
        "email_taken",
    )
    .await;
    assert_error(
        app.register("Ada", "  ada@example.com\t", PASSWORD).await,
        409,
        "email_taken",
    )
    .await;
}

#[tokio::test]
async fn a_look_alike_of_a_registered_email_is_the_same_account_or_refused() {
    let app = spawn_app().await;
    let res = app.register("Ada", "ada@example.com", PASSWORD).await;
    assert_eq!(res.status(), 201);
    let ada: Value = res.json().await.unwrap();

    // Fullwidth and mathematical letters fold (NFKC) to the address Ada already has.
    for same in [
        "\u{FF41}\u{FF44}\u{FF41}@example.com",
        "ada@\u{FF45}\u{FF58}\u{FF41}\u{FF4D}\u{FF50}\u{FF4C}\u{FF45}\u{FF0E}\u{FF43}\u{FF4F}\u{FF4D}",
        "\u{1D51E}da@example.com",
    ] {
        assert_error(
            app.register("Mallory", same, PASSWORD).await,
            409,
            "email_taken",
        )
        .await;
        let res = app.login(same, PASSWORD).await;
        assert_eq!(res.status(), 200, "{same:?} logs in as Ada");
        assert_eq!(res.json::<Value>().await.unwrap()["user"], ada["user"]);
    }

    // Letters of another script, and characters that draw nothing, are refused by name.
    for (spoof, why) in [
        ("\u{0430}da@example.com", "must not mix look-alike scripts"),
        ("ada@ex\u{0430}mple.com", "must not mix look-alike scripts"),
        ("ada@example.c\u{03BF}m", "must not mix look-alike scripts"),
        ("a\u{200B}da@example.com", "must not contain invisible"),
        ("ad\u{00AD}a@example.com", "must not contain invisible"),
        ("ada\u{200D}@example.com", "must not contain invisible"),
        ("\u{202E}ada@example.com", "must not contain invisible"),
    ] {
        let body = assert_error(
            app.register("Mallory", spoof, PASSWORD).await,
            400,
            "validation_failed",
        )
        .await;
        let reason = body["error"]["fields"]["email"]
            .as_str()
            .unwrap_or_default();
        assert!(reason.starts_with(why), "{spoof:?}: {body}");
    }
    // Nothing but Ada's account was made: her address is still the only one taken.
    assert_error(
        app.register("Ada", "ada@example.com", PASSWORD).await,
        409,
        "email_taken",
    )
    .await;
}

#[tokio::test]
async fn a_name_that_draws_nothing_or_reorders_text_is_refused() {
    let app = spawn_app().await;
    for (name, why) in [
        (
            "\u{200B}\u{200B}\u{200B}",
            "must not contain invisible or formatting characters",
        ),
        (
            "\u{3164}",
            "must not contain invisible or formatting characters",
        ),
        ("\u{200D}\u{FE0F}", "must contain a visible character"),
        (
            "Ada\u{202E}nimda",
            "must not contain bidirectional controls",
        ),
        ("\u{2067}Ada", "must not contain bidirectional controls"),
        (
            "A\u{200B}da",
            "must not contain invisible or formatting characters",
        ),
    ] {
        let body = assert_error(
            app.register(name, "mallory@example.com", PASSWORD).await,
            400,
            "validation_failed",
        )
        .await;
        assert_eq!(body["error"]["fields"], json!({"name": why}), "{name:?}");
    }
    // An emoji sequence with a joiner is a fine name.
    let res = app
        .register(
            "Ada \u{1F469}\u{200D}\u{1F4BB}",
            "ada@example.com",
            PASSWORD,
        )
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn fifty_concurrent_registrations_of_one_email_create_exactly_one_account() {
    let app = Arc::new(spawn_app().await);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let res = app
                    .register(&format!("Racer {i}"), "race@example.com", PASSWORD)
                    .await;
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                (status, body)
            })
        })
        .collect();
    let mut created = 0;
    let mut taken = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            201 => created += 1,
            409 => {
                assert_eq!(body["error"]["code"], "email_taken", "body: {body}");
                taken += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, taken), (1, 49));
    // And the one account works.
    assert_eq!(app.login("race@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn registering_with_every_field_invalid_names_every_field() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/auth/register",
            None,
            &json!({"name": "   ", "email": "not-an-email", "password": "short"}),
        )
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert_eq!(keys(&body["error"]), ["code", "fields", "message"]);
    assert_eq!(
        body["error"]["fields"],
        json!({
            "name": "is required",
            "email": "is not a valid email address",
            "password": "must be at least 8 characters",
        })
    );
}

#[tokio::test]
async fn registering_with_no_fields_says_each_is_required() {
    let app = spawn_app().await;
    let body = assert_error(
        app.post("/api/auth/register", None, &json!({})).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["fields"],
        json!({"name": "is required", "email": "is required", "password": "is required"})
    );
    // null is as good as missing.
    let res = app
        .post(
            "/api/auth/register",
            None,
            &json!({"name": null, "email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert_eq!(body["error"]["fields"], json!({"name": "is required"}));
}

#[tokio::test]
async fn registering_checks_each_field_bound() {
    let app = spawn_app().await;
    let ok_email = "ada@example.com";
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"name": "a".repeat(65), "email": ok_email, "password": PASSWORD}),
            "name",
            "must be at most 64 characters",
        ),
        (
            json!({"name": "Ada\u{7}", "email": ok_email, "password": PASSWORD}),
            "name",
            "must not contain control characters",
        ),
        (
            json!({"name": "Ada", "email": "ada@example", "password": PASSWORD}),
            "email",
            "is not a valid email address",
        ),
        (
            json!({"name": "Ada", "email": "ada@", "password": PASSWORD}),
            "email",
            "is not a valid email address",
        ),
        (
            json!({"name": "Ada", "email": "   ", "password": PASSWORD}),
            "email",
            "is required",
        ),
        (
            json!({"name": "Ada", "email": long_email, "password": PASSWORD}),
            "email",
            "must be at most 254 characters",
        ),
        (
            json!({"name": "Ada", "email": ok_email, "password": "1234567"}),
            "password",
            "must be at least 8 characters",
        ),
        (
            json!({"name": "Ada", "email": ok_email, "password": "p".repeat(129)}),
            "password",
            "must be at most 128 characters",
        ),
        (
            json!({"name": "Ada", "email": ok_email, "password": ""}),
            "password",
            "is required",
        ),
    ];
    for (body, field, why) in cases {
        let res = app.post("/api/auth/register", None, &body).await;
        let answer = assert_error(res, 400, "validation_failed").await;
        assert_eq!(
            answer["error"]["fields"],
            json!({ field: why }),
            "for {body}"
        );
    }
    // The bounds themselves are accepted: 64-character name, 8- and 128-character passwords.
    let res = app
        .register(&"é".repeat(64), "long@example.com", &"p".repeat(128))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        app.register("Ada", "short@example.com", "12345678")
            .await
            .status(),
        201
    );
    assert_eq!(
        app.login("long@example.com", &"p".repeat(128))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_malformed_json() {
    let app = spawn_app().await;
    for raw in [
        "{not json",
        "",
        "{\"name\": \"Ada\",}",
        "[]",
        "\"a string\"",
    ] {
        let res = post_raw(&app, "/api/auth/register", Some("application/json"), raw).await;
        let body = assert_error(res, 400, "malformed_json").await;
        assert_eq!(keys(&body["error"]), ["code", "message"], "for {raw:?}");
    }
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_validation_failed_naming_the_field() {
    let app = spawn_app().await;
    let bodies = [
        (
            json!({"name": 5, "email": "ada@example.com", "password": PASSWORD}),
            "name",
        ),
        (
            json!({"name": "Ada", "email": true, "password": PASSWORD}),
            "email",
        ),
        (
            json!({"name": "Ada", "email": "ada@example.com", "password": 12345678}),
            "password",
        ),
    ];
    for (body, field) in bodies {
        let res = app.post("/api/auth/register", None, &body).await;
        let error = assert_error(res, 400, "validation_failed").await;
        assert_eq!(
            error["error"]["fields"],
            json!({field: "must be a string"}),
            "{body}"
        );
    }
    let res = app
        .post(
            "/api/auth/login",
            None,
            &json!({"email": {"a": 1}, "password": PASSWORD}),
        )
        .await;
    let error = assert_error(res, 400, "validation_failed").await;
    assert_eq!(
        error["error"]["fields"],
        json!({"email": "must be a string"})
    );
    // No serde text reaches the client.
    assert!(!error.to_string().contains("line 1"), "{error}");
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_unsupported_media_type() {
    let app = spawn_app().await;
    let valid =
        json!({"name": "Ada", "email": "ada@example.com", "password": PASSWORD}).to_string();
    let res = post_raw(
        &app,
        "/api/auth/register",
        Some("text/plain"),
        valid.clone(),
    )
    .await;
    assert_error(res, 415, "unsupported_media_type").await;
    let res = post_raw(&app, "/api/auth/register", None, valid.clone()).await;
    assert_error(res, 415, "unsupported_media_type").await;
    let res = post_raw(
        &app,
        "/api/auth/login",
        Some("application/x-www-form-urlencoded"),
        "email=a&password=b",
    )
    .await;
    assert_error(res, 415, "unsupported_media_type").await;
    // Nothing was created by the refused request.
    assert_eq!(
        app.register("Ada", "ada@example.com", PASSWORD)
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn a_body_over_sixteen_kib_is_payload_too_large() {
    let app = spawn_app().await;
    let big =
        json!({"name": "a".repeat(17 * 1024), "email": "ada@example.com", "password": PASSWORD});
    assert_error(
        app.post("/api/auth/register", None, &big).await,
        413,
        "payload_too_large",
    )
    .await;
    // Just under the limit is read, and refused for what it says.
    let near =
        json!({"name": "a".repeat(15 * 1024), "email": "ada@example.com", "password": PASSWORD});
    let body = assert_error(
        app.post("/api/auth/register", None, &near).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["fields"],
        json!({"name": "must be at most 64 characters"})
    );
}

// ---------------------------------------------------------------------------------------
// Login.

#[tokio::test]
async fn logging_in_returns_a_fresh_working_token() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let res = app.login(&ada.email, &ada.password).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let token = assert_auth(&body, "Ada", &ada.email);
    assert_eq!(body["user"]["id"], ada.id.as_str());
    assert_ne!(token, ada.token, "each login gets its own token");
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me, with_success(&body["user"]));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_byte_identical_answers() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let wrong_password = app.login(&ada.email, "not the password").await;
    let unknown_email = app.login("nobody@example.com", "not the password").await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_email.status(), 401);
    let a = wrong_password.bytes().await.unwrap();
    let b = unknown_email.bytes().await.unwrap();
    assert_eq!(a, b, "the answers must not tell the cases apart");
    let body: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");
    assert_eq!(keys(&body["error"]), ["code", "message"]);
}

#[tokio::test]
async fn a_login_with_a_too_short_password_is_just_wrong_credentials() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    // Password rules are not revealed at login.
    assert_error(app.login(&ada.email, "x").await, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn logging_in_without_fields_is_a_validation_failure() {
    let app = spawn_app().await;
    let body = assert_error(
        app.post("/api/auth/login", None, &json!({})).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["fields"],
        json!({"email": "is required", "password": "is required"})
    );
    let res = app
        .post(
            "/api/auth/login",
            None,
            &json!({"email": "nope", "password": ""}),
        )
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert_eq!(
        body["error"]["fields"],
        json!({"email": "is not a valid email address", "password": "is required"})
    );
}

#[tokio::test]
async fn login_failures_from_one_address_make_it_wait() {
    let app = spawn_app_with(|c| c.login_failures_per_address = 3).await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    for _ in 0..3 {
        assert_error(
            app.login(&ada.email, "wrong password").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    // From this address, the fourth attempt is refused, even with the right password and
    // another spelling.
    assert_rate_limited(app.login(&ada.email, &ada.password).await).await;
    assert_rate_limited(
        app.login(&format!("  {}", ada.email.to_uppercase()), &ada.password)
            .await,
    )
    .await;
    // Another email is unaffected.
    assert_eq!(app.login(&bob.email, &bob.password).await.status(), 200);
}

/// A client for the same server from another loopback address (127.0.0.`n`), as another
/// machine would be.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .build()
        .unwrap()
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stranger_guessing_a_password_cannot_lock_its_owner_out() {
    // Parley's default login limits.
    let defaults = parley::config::Config::from_args(std::iter::empty::<&str>()).unwrap();
    let app = spawn_app_with(|c| {
        c.login_per_email_per_minute = defaults.login_per_email_per_minute;
        c.login_failures_per_address = defaults.login_failures_per_address;
    })
    .await;
    let ada = app.new_user("Ada").await;
    let (attacker, owner) = (client_from(66), client_from(2));

    // The attacker guesses twenty times in a row: the first few are just wrong, then it
    // must wait, and waits longer with every failure.
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..20 {
        let res = login_from(&app, &attacker, &ada.email, &format!("guess {i}")).await;
        statuses.push(res.status().as_u16());
        last = Some(res);
    }

    // Ada, from her own address, logs in at once.
    let res = login_from(&app, &owner, &ada.email, &ada.password).await;
    assert_eq!(res.status(), 200, "the owner is not locked out");
    assert_eq!(
        res.json::<Value>().await.unwrap()["user"]["id"],
        ada.id.as_str()
    );

    let wrong = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        (1..=5).contains(&wrong),
        "a few guesses are let through: {statuses:?}"
    );
    assert!(
        statuses[wrong..].iter().all(|s| *s == 429),
        "then only waits: {statuses:?}"
    );
    assert_rate_limited(last.unwrap()).await;
    // Even the right password, from the attacker's address, waits.
    assert_rate_limited(login_from(&app, &attacker, &ada.email, &ada.password).await).await;

    // Many addresses guessing once each put the account under attack: every failure then
    // makes its address wait, but the owner, who has not failed, still gets in.
    for n in 10..30 {
        let res = login_from(&app, &client_from(n), &ada.email, "one guess").await;
        assert_error(res, 401, "invalid_credentials").await;
    }
    // The last of them tries again at once: it must wait (a second after its failure).
    assert_rate_limited(login_from(&app, &client_from(29), &ada.email, "again").await).await;
    let res = login_from(&app, &owner, &ada.email, &ada.password).await;
    assert_eq!(
        res.status(),
        200,
        "the owner is not locked out by a crowd either"
    );
}

#[tokio::test]
async fn auth_attempts_per_address_are_rate_limited_including_registration() {
    let app = spawn_app_with(|c| c.auth_per_address_per_minute = 3).await;
    assert_eq!(
        app.register("Ada", "ada@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
    assert_error(
        app.login("bob@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    // The address has used its three attempts: both registering and logging in are refused.
    assert_rate_limited(app.register("Bob", "bob@example.com", PASSWORD).await).await;
    assert_rate_limited(app.login("ada@example.com", PASSWORD).await).await;
    // Other routes are not limited.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

/// A login for `email` as a proxy would forward it: with `X-Forwarded-For: forwarded`.
async fn login_forwarded(
    app: &TestApp,
    client: &reqwest::Client,
    forwarded: &str,
    email: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"email": email, "password": "wrong password"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = spawn_app_with(|c| {
        c.auth_per_address_per_minute = 3;
        c.trusted_proxies = vec![parley::config::parse_trusted_proxy("127.0.0.1").unwrap()];
    })
    .await;
    // The "proxy" is this process on 127.0.0.1, forwarding two clients' logins.
    let proxy = client_from(1);
    for _ in 0..3 {
        let res = login_forwarded(&app, &proxy, "198.51.100.1", "ada@example.com").await;
        assert_error(res, 401, "invalid_credentials").await;
    }
    assert_rate_limited(login_forwarded(&app, &proxy, "198.51.100.1", "ada@example.com").await)
        .await;
    // The second client behind the same proxy has a budget of its own.
    for _ in 0..3 {
        let res = login_forwarded(&app, &proxy, "198.51.100.2", "bob@example.com").await;
        assert_error(res, 401, "invalid_credentials").await;
    }
    // A client that writes its own X-Forwarded-For gets nothing from it: the proxy
    // appends the address it saw, and that right-most entry is the one believed.
    let forged = "203.0.113.99, 198.51.100.1";
    assert_rate_limited(login_forwarded(&app, &proxy, forged, "ada@example.com").await).await;

    // From a peer that is not a trusted proxy, the same headers are ignored: every
    // attempt counts against the peer's own address.
    let stranger = client_from(2);
    for n in 3..6 {
        let res = login_forwarded(
            &app,
            &stranger,
            &format!("198.51.100.{n}"),
            "cy@example.com",
        )
        .await;
        assert_error(res, 401, "invalid_credentials").await;
    }
    assert_rate_limited(login_forwarded(&app, &stranger, "198.51.100.200", "cy@example.com").await)
        .await;
}

// ---------------------------------------------------------------------------------------
// Me and logout.

#[tokio::test]
async fn me_without_a_token_is_unauthorized() {
    let app = spawn_app().await;
    let res = app.get("/api/auth/me", None).await;
    let body = assert_error(res, 401, "unauthorized").await;
    assert_eq!(keys(&body["error"]), ["code", "message"]);
}

#[tokio::test]
async fn logging_out_revokes_only_the_token_used() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let other: Value = app
        .login(&ada.email, &ada.password)
        .await
        .json()
        .await
        .unwrap();
    let other_token = other["token"].as_str().unwrap();

    let res = app.logout(&ada.token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"success": true, "message": "Logged out"})
    );

    assert_error(app.me(&ada.token).await, 401, "unauthorized").await;
    assert_error(app.contacts(&ada.token).await, 401, "unauthorized").await;
    // Logging out again with the revoked token is refused too.
    assert_error(app.logout(&ada.token).await, 401, "unauthorized").await;

    let res = app.me(other_token).await;
    assert_eq!(res.status(), 200, "the user's other token still works");
    assert_eq!(res.json::<Value>().await.unwrap()["id"], ada.id.as_str());
}

#[tokio::test]
async fn logging_out_without_a_token_is_unauthorized() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthorized").await;
}

// ---------------------------------------------------------------------------------------
// Headers.

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let res = app.register("Ada", "ada@example.com", PASSWORD).await;
    assert_eq!(res.status(), 201);
    assert_security_headers(&res);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let responses = vec![
        app.get("/healthz", None).await,
        app.me(&token).await,
        app.get("/nope", None).await,
        app.get("/api/auth/me", None).await,
        app.http.delete(app.url("/healthz")).send().await.unwrap(),
        app.register("Ada", "ada@example.com", PASSWORD).await,
        app.post("/api/auth/register", None, &json!({})).await,
        post_raw(&app, "/api/auth/register", Some("text/plain"), "x").await,
        app.login("ada@example.com", "wrong password").await,
        app.logout(&token).await,
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 404, 401, 405, 409, 400, 415, 401, 200]);
    for res in &responses {
        assert_security_headers(res);
    }
}

/// A CORS preflight for a login from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn a_preflight_from_a_configured_origin_is_allowed() {
    let app = spawn_app_with(|c| c.cors_origins = vec!["https://chat.example".into()]).await;
    let res = preflight(&app, "https://chat.example").await;
    assert!(
        res.status().is_success(),
        "preflight status {}",
        res.status()
    );
    let allow = res
        .headers()
        .get("access-control-allow-origin")
        .expect("allow-origin present");
    assert_eq!(allow, "https://chat.example");
    let methods = res
        .headers()
        .get("access-control-allow-methods")
        .expect("allow-methods present");
    assert!(
        methods.to_str().unwrap().contains("POST"),
        "methods: {methods:?}"
    );
    // And the real request from that origin is allowed too.
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://chat.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        "https://chat.example"
    );
}

#[tokio::test]
async fn a_preflight_from_another_origin_is_not_allowed() {
    let app = spawn_app_with(|c| c.cors_origins = vec!["https://chat.example".into()]).await;
    let res = preflight(&app, "https://evil.example").await;
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "headers: {:?}",
        res.headers()
    );
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers() {
    let app = spawn_app().await;
    let res = preflight(&app, "https://chat.example").await;
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "headers: {:?}",
        res.headers()
    );
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://chat.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

// ---------------------------------------------------------------------------------------
// The token secret.

#[tokio::test]
async fn a_generated_secret_file_is_readable_by_the_owner_only() {
    let app = spawn_app().await;
    let path = app.data_dir().join("jwt-secret");
    let meta = std::fs::metadata(&path).expect("the secret file exists");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode of {}",
        path.display()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.trim().len() >= 32, "the secret has at least 32 bytes");
}

#[tokio::test]
async fn a_configured_secret_shorter_than_32_bytes_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.jwt_secret = Some(Secret("short".into()));
    match Application::build(config).await {
        Ok(_) => panic!("a 5-byte secret was accepted"),
        Err(e) => assert!(
            e.to_string().contains("32"),
            "the error names the minimum: {e}"
        ),
    }
    // 31 bytes is still too short.
    let mut config = test_config(dir.path());
    config.jwt_secret = Some(Secret("x".repeat(31)));
    assert!(
        Application::build(config).await.is_err(),
        "a 31-byte secret was accepted"
    );
}

#[tokio::test]
async fn socket_io_polling_from_a_configured_origin_is_allowed_with_credentials() {
    let app = spawn_app_with(|c| c.cors_origins = vec!["https://chat.example".into()]).await;
    // The Engine.IO handshake of a polling client, as a browser sends it.
    let res = app
        .http
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .header("origin", "https://chat.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert_eq!(
        headers.get("access-control-allow-origin").unwrap(),
        "https://chat.example"
    );
    assert_eq!(
        headers.get("access-control-allow-credentials").unwrap(),
        "true"
    );
    assert_security_headers(&res);
    let open = res.text().await.unwrap();
    assert!(
        open.starts_with("0{\"sid\":"),
        "an Engine.IO open packet: {open}"
    );
    // The same request from another origin gets no CORS headers.
    let res = app
        .http
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}
