//! Bearer tokens: every way a token can be wrong gets the same 401, and a token forged
//! correctly with the server's secret is accepted (so the forging here is right, and the
//! refusals are the server's doing, not the helper's).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use parley::config::Secret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};

/// The secret the server generated into its data dir.
fn server_secret(app: &TestApp) -> Vec<u8> {
    let text =
        std::fs::read_to_string(app.data_dir().join("jwt-secret")).expect("the secret file exists");
    text.trim().as_bytes().to_vec()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims as the server issues them: valid for an hour, with a fresh `jti`.
fn claims_for(sub: &str) -> Value {
    let now = now();
    json!({"sub": sub, "iat": now, "exp": now + 3600, "jti": uuid::Uuid::new_v4().to_string()})
}

/// An HS256 token over `claims`, signed with `secret`.
fn forge(secret: &[u8], claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("token encodes")
}

/// Base64url without padding (RFC 7515 §2).
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// `header.claims`, each base64url-encoded JSON: the part a signature covers.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// A token with any header, and an HMAC-SHA256 signature by `secret` over it.
fn hand_made_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = signing_input(header, claims);
    let signature = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{signature}")
}

/// The claims of a token the server issued.
fn claims_of(token: &str, secret: &[u8]) -> Value {
    decode::<Value>(
        token,
        &DecodingKey::from_secret(secret),
        &Validation::new(Algorithm::HS256),
    )
    .expect("a server token decodes")
    .claims
}

async fn assert_refused(app: &TestApp, token: &str) {
    assert_error(app.me(token).await, 401, "unauthorized").await;
}

// ---------------------------------------------------------------------------------------
// The controls: the forging helpers make tokens the server accepts.

#[tokio::test]
async fn a_token_forged_with_the_real_secret_and_a_fresh_jti_is_accepted() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);

    let server_claims = claims_of(&ada.token, &secret);
    assert_eq!(
        server_claims["sub"],
        ada.id.as_str(),
        "the server's tokens carry the user id"
    );

    let token = forge(&secret, &claims_for(&ada.id));
    let res = app.me(&token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], ada.id.as_str());

    // The hand-made path (used for the header tricks below) is right too.
    let token = hand_made_hs256(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims_for(&ada.id),
        &secret,
    );
    assert_eq!(app.me(&token).await.status(), 200);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let res = app
        .http
        .get(app.url("/api/auth/me"))
        .header("authorization", format!("bearer {}", ada.token))
        .send()
        .await;
    assert_eq!(res.unwrap().status(), 200);
}

#[tokio::test]
async fn a_configured_secret_signs_the_tokens() {
    let secret = "a configured secret of more than thirty-two bytes";
    let app = spawn_app_with(|c| c.jwt_secret = Some(Secret(secret.into()))).await;
    let ada = app.new_user("Ada").await;
    assert_eq!(
        claims_of(&ada.token, secret.as_bytes())["sub"],
        ada.id.as_str()
    );
    assert_eq!(
        app.me(&forge(secret.as_bytes(), &claims_for(&ada.id)))
            .await
            .status(),
        200
    );
    assert!(
        !app.data_dir().join("jwt-secret").exists(),
        "no secret file is generated when one is configured"
    );
}

// ---------------------------------------------------------------------------------------
// Refusals.

#[tokio::test]
async fn a_missing_or_malformed_authorization_header_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    assert_error(app.get("/api/auth/me", None).await, 401, "unauthorized").await;
    for header in [
        ada.token.clone(),
        format!("Basic {}", ada.token),
        format!("Token {}", ada.token),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
    ] {
        let res = app
            .http
            .get(app.url("/api/auth/me"))
            .header("authorization", &header)
            .send()
            .await
            .unwrap();
        assert_error(res, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn a_garbage_token_is_unauthorized() {
    let app = spawn_app().await;
    for token in [
        "garbage",
        "a.b.c",
        "..",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "not a token at all",
    ] {
        assert_refused(&app, token).await;
    }
}

#[tokio::test]
async fn an_expired_token_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    let now = now();
    let claims = json!({"sub": ada.id, "iat": now - 3720, "exp": now - 120, "jti": uuid::Uuid::new_v4().to_string()});
    assert_refused(&app, &forge(&secret, &claims)).await;
}

#[tokio::test]
async fn a_token_without_an_expiry_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    let mut claims = claims_for(&ada.id);
    claims.as_object_mut().unwrap().remove("exp");
    assert_refused(&app, &forge(&secret, &claims)).await;
}

#[tokio::test]
async fn a_token_with_a_tampered_signature_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let (input, signature) = ada.token.rsplit_once('.').unwrap();
    // Change a character in the middle, where every bit counts.
    let mut sig: Vec<char> = signature.chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{input}.{}", sig.into_iter().collect::<String>());
    assert_ne!(tampered, ada.token);
    assert_refused(&app, &tampered).await;
    // Dropping the signature altogether is no better.
    assert_refused(&app, &format!("{input}.")).await;
}

#[tokio::test]
async fn a_token_with_tampered_claims_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let secret = server_secret(&app);
    // Ada's header and signature, with claims that say Bob.
    let mut claims = claims_of(&ada.token, &secret);
    claims["sub"] = json!(bob.id);
    let parts: Vec<&str> = ada.token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_refused(&app, &tampered).await;
}

#[tokio::test]
async fn an_alg_none_token_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    for alg in ["none", "None", "NONE"] {
        let input = signing_input(&json!({"alg": alg, "typ": "JWT"}), &claims_for(&ada.id));
        assert_refused(&app, &format!("{input}.")).await;
    }
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let other = b"another secret, just as long as the real one, but wrong";
    assert_refused(&app, &forge(other, &claims_for(&ada.id))).await;
}

#[tokio::test]
async fn an_hs384_token_signed_with_the_real_secret_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    let token = encode(
        &Header::new(Algorithm::HS384),
        &claims_for(&ada.id),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    assert_refused(&app, &token).await;
    let token = encode(
        &Header::new(Algorithm::HS512),
        &claims_for(&ada.id),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    assert_refused(&app, &token).await;
}

#[tokio::test]
async fn an_rs256_header_over_an_hmac_signature_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    // The classic algorithm confusion: claim RS256, sign with HMAC.
    let token = hand_made_hs256(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &claims_for(&ada.id),
        &secret,
    );
    assert_refused(&app, &token).await;
}

#[tokio::test]
async fn an_oversized_token_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    // Correctly signed, so only its size is wrong.
    let mut claims = claims_for(&ada.id);
    claims["pad"] = json!("x".repeat(10 * 1024));
    let token = forge(&secret, &claims);
    assert!(token.len() > 10 * 1024);
    assert_refused(&app, &token).await;
}

#[tokio::test]
async fn a_token_issued_an_hour_in_the_future_is_unauthorized() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    let now = now();
    let claims = json!({"sub": ada.id, "iat": now + 3600, "exp": now + 7200, "jti": uuid::Uuid::new_v4().to_string()});
    assert_refused(&app, &forge(&secret, &claims)).await;
}

#[tokio::test]
async fn a_token_whose_subject_is_not_a_uuid_is_unauthorized() {
    let app = spawn_app().await;
    app.new_user("Ada").await;
    let secret = server_secret(&app);
    for sub in [
        "42",
        "ada@example.com",
        "",
        "not-a-uuid-but-exactly-36-chars-long",
    ] {
        assert_refused(&app, &forge(&secret, &claims_for(sub))).await;
    }
}

#[tokio::test]
async fn a_token_for_a_user_that_does_not_exist_is_unauthorized() {
    let app = spawn_app().await;
    let secret = server_secret(&app);
    let nobody = uuid::Uuid::now_v7().to_string();
    assert_refused(&app, &forge(&secret, &claims_for(&nobody))).await;
}

#[tokio::test]
async fn a_revoked_jti_stays_revoked_in_a_freshly_signed_token() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    let jti = claims_of(&ada.token, &secret)["jti"].clone();
    assert_eq!(app.logout(&ada.token).await.status(), 200);
    assert_refused(&app, &ada.token).await;
    // Revocation is by jti, whatever the other claims say.
    let mut claims = claims_for(&ada.id);
    claims["jti"] = jti;
    assert_refused(&app, &forge(&secret, &claims)).await;
}

#[tokio::test]
async fn each_token_problem_is_named_in_the_same_401_and_a_forger_learns_nothing_more() {
    let app = spawn_app().await;
    let ada = app.new_user("Ada").await;
    let secret = server_secret(&app);
    let message = |res: reqwest::Response| async {
        let body = assert_error(res, 401, "unauthorized").await;
        body["error"]["message"].as_str().unwrap().to_owned()
    };
    let with_header = |value: String| {
        app.http
            .get(app.url("/api/auth/me"))
            .header("authorization", value)
            .send()
    };
    let missing = message(app.get("/api/auth/me", None).await).await;
    assert!(missing.contains("bearer token is required"), "{missing}");
    let no_prefix = message(with_header(ada.token.clone()).await.unwrap()).await;
    assert!(
        no_prefix.contains("must be \"Bearer <token>\""),
        "{no_prefix}"
    );
    let garbage = message(app.me("garbage").await).await;
    assert!(garbage.contains("malformed"), "{garbage}");

    let now = now();
    let old = json!({"sub": ada.id, "iat": now - 3720, "exp": now - 120, "jti": uuid::Uuid::new_v4().to_string()});
    let expired = message(app.me(&forge(&secret, &old)).await).await;
    assert!(expired.contains("expired"), "{expired}");
    // Expiry is told only for a token this server signed.
    let forged = message(
        app.me(&forge(b"another secret of 32 bytes or more!", &old))
            .await,
    )
    .await;
    assert_eq!(forged, garbage);

    let nobody = uuid::Uuid::now_v7().to_string();
    let gone = message(app.me(&forge(&secret, &claims_for(&nobody))).await).await;
    assert!(gone.contains("no longer exists"), "{gone}");
    assert_eq!(app.logout(&ada.token).await.status(), 200);
    let revoked = message(app.me(&ada.token).await).await;
    assert!(revoked.contains("revoked"), "{revoked}");
}
