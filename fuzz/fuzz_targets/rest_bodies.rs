//! Every REST JSON body, through the real router in-process: `parley::http::router` on a
//! fjall store and the actor tree (see `parley_fuzz::fixture`), called with
//! `tower::ServiceExt::oneshot`, for `POST /api/auth/register`, `/api/auth/login`,
//! `/api/contact/add-contact` and `/api/messages/send`.
//!
//! The body is raw bytes, an arbitrary JSON value, or (most useful) an object of the
//! endpoint's fields with values that are strings, known emails and ids, numbers,
//! nulls, arrays... The content type and the bearer token vary too.
//!
//! Invariants, for every request:
//! - the status is never 500 (nor any 5xx other than 503);
//! - every non-2xx answer is the error envelope `{"error":{"code":..,"message":..}}`
//!   with a non-empty code and message;
//! - a 2xx answer is JSON and says what was asked: a registered account reads back
//!   (`GET /api/auth/me` with the new token) as the normalised name and email; a login
//!   is for the account of the email; a sent message has exactly the body sent, into
//!   the conversation asked for, from a body that named exactly one target and no v1
//!   field (`to`, `conversation`, `body`, `client_id`).

#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use actors::domain::{DisplayName, Email};
use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use parley_fuzz::{Fixture, PEER, count, fixture};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Endpoint {
    Register,
    Login,
    AddContact,
    Send,
}

#[derive(Arbitrary, Debug)]
enum Auth {
    Alice,
    Bob,
    Missing,
    Bearer(String),
    Header(String),
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    Json,
    JsonCharset,
    Missing,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Field {
    Name,
    Email,
    Password,
    ReceiverId,
    ConversationId,
    Content,
    ClientId,
    /// One of the v1 names of a send's fields, which v2 refuses.
    V1(u8),
    Other(String),
}

/// The v1 names of a send's fields.
const V1_NAMES: [&str; 4] = ["to", "conversation", "body", "client_id"];

#[derive(Arbitrary, Debug)]
enum Val {
    Str(String),
    /// `local@domain.tld` from parts.
    EmailShaped(String, String, String),
    AliceEmail,
    BobEmail,
    /// A known email in another case, with spaces around it.
    BobEmailShouted,
    AlicePassword,
    /// `fuzz<n>@example.com`: likely not registered yet.
    FreshEmail(u32),
    /// A local part of [`TRICKY`] characters (picked by the bytes) at a fresh address.
    TrickyEmail(Vec<u8>, u32),
    /// A string of [`TRICKY`] characters (names, bodies, client ids).
    Tricky(Vec<u8>),
    BobId,
    AliceId,
    /// The conversation of Alice and Bob.
    AliceBobConversation,
    Repeat(String, u16),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Array(Vec<String>),
    Object(Vec<(String, String)>),
}

#[derive(Arbitrary, Debug)]
enum BodyInput {
    Fields(Vec<(Field, Val)>),
    Raw(Vec<u8>),
    Text(String),
    Empty,
}

#[derive(Arbitrary, Debug)]
struct Input {
    endpoint: Endpoint,
    auth: Auth,
    content_type: ContentType,
    body: BodyInput,
}

fn field_name(f: &Field) -> String {
    match f {
        Field::Name => "name",
        Field::Email => "email",
        Field::Password => "password",
        Field::ReceiverId => "receiverId",
        Field::ConversationId => "conversationId",
        Field::Content => "content",
        Field::ClientId => "clientId",
        Field::V1(i) => V1_NAMES[usize::from(*i) % V1_NAMES.len()],
        Field::Other(s) => return s.clone(),
    }
    .to_owned()
}

fn value(fx: &Fixture, v: &Val) -> Value {
    match v {
        Val::Str(s) => json!(s),
        Val::EmailShaped(l, d, t) => json!(format!("{l}@{d}.{t}")),
        Val::AliceEmail => json!(fx.alice.user.email.as_str()),
        Val::BobEmail => json!(fx.bob.user.email.as_str()),
        Val::BobEmailShouted => json!(format!(" {} ", fx.bob.user.email.as_str().to_uppercase())),
        Val::AlicePassword => json!(fx.alice.password),
        Val::FreshEmail(n) => json!(format!("fuzz{n}@example.com")),
        Val::TrickyEmail(picks, n) => json!(format!("{n}{}@example.com", tricky(picks))),
        Val::Tricky(picks) => json!(tricky(picks)),
        Val::BobId => json!(fx.bob.user.id.to_string()),
        Val::AliceId => json!(fx.alice.user.id.to_string()),
        Val::AliceBobConversation => json!(
            actors::domain::ConversationId::direct(fx.alice.user.id, fx.bob.user.id).to_string()
        ),
        Val::Repeat(s, n) => json!(s.repeat(usize::from(*n % 5000))),
        Val::Int(i) => json!(i),
        Val::Float(f) => json!(f),
        Val::Bool(b) => json!(b),
        Val::Null => Value::Null,
        Val::Array(a) => json!(a),
        Val::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
    }
}

/// Characters that have broken text handling elsewhere: letters whose case mapping
/// changes their length (`İ` U+0130 → `i̇`, `Ⱥ`, `Ⱦ`, Kelvin sign, `ẞ`, final sigma),
/// RTL/LTR overrides, zero-width and BOM, quotes, SQL/CQL punctuation, NUL, emoji.
const TRICKY: &[char] = &[
    'a', 'Z', '0', '.', '-', '_', '+', '\u{130}', '\u{23a}', '\u{23e}', '\u{212a}', '\u{1e9e}',
    '\u{3a3}', '\u{df}', 'é', '\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}', '\'', '"', ';', '%',
    '*', '\\', '\u{0}', ' ', '\u{a0}', '😀',
];

fn tricky(picks: &[u8]) -> String {
    picks
        .iter()
        .map(|&b| TRICKY[usize::from(b) % TRICKY.len()])
        .collect()
}

fn path(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Register => "/api/auth/register",
        Endpoint::Login => "/api/auth/login",
        Endpoint::AddContact => "/api/contact/add-contact",
        Endpoint::Send => "/api/messages/send",
    }
}

struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

fn call(fx: &Fixture, request: Request<Body>) -> Answer {
    fx.rt.block_on(async {
        let response = fx
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("read the response body");
        Answer {
            status,
            body: body.to_vec(),
        }
    })
}

fn check_envelope(a: &Answer, what: &str) {
    let v: Value = serde_json::from_slice(&a.body).unwrap_or_else(|e| {
        panic!(
            "{what}: {} with a body that is not JSON ({e}): {:?}",
            a.status,
            String::from_utf8_lossy(&a.body)
        )
    });
    let code = v["error"]["code"].as_str();
    let message = v["error"]["message"].as_str();
    assert!(
        code.is_some_and(|c| !c.is_empty()) && message.is_some_and(|m| !m.is_empty()),
        "{what}: {} without the error envelope: {v}",
        a.status
    );
}

/// The readable form of an input, for hand-written seeds and regressions:
/// `PARLEY-REST <register|login|add-contact|send> <alice|bob|none>\n<body>`, sent as
/// `application/json`. Anything else is decoded as an [`Input`] by `arbitrary`.
fn readable(data: &[u8]) -> Option<(Input, Vec<u8>)> {
    let rest = data.strip_prefix(b"PARLEY-REST ")?;
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&rest[..newline]).ok()?;
    let (endpoint, auth) = header.split_once(' ')?;
    let endpoint = match endpoint {
        "register" => Endpoint::Register,
        "login" => Endpoint::Login,
        "add-contact" => Endpoint::AddContact,
        "send" => Endpoint::Send,
        _ => return None,
    };
    let auth = match auth.trim_end() {
        "alice" => Auth::Alice,
        "bob" => Auth::Bob,
        "none" => Auth::Missing,
        _ => return None,
    };
    let input = Input {
        endpoint,
        auth,
        content_type: ContentType::Json,
        body: BodyInput::Empty,
    };
    Some((input, rest[newline + 1..].to_vec()))
}

fuzz_target!(|data: &[u8]| {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let fx = fixture();
    if CALLS.fetch_add(1, Ordering::Relaxed).is_multiple_of(10_000) {
        fx.state.sweep(); // what the server's minutely sweeper does
    }

    let (input, bytes) = match readable(data) {
        Some(parsed) => parsed,
        None => {
            let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
                return;
            };
            let bytes = match &input.body {
                BodyInput::Fields(fields) => Value::Object(
                    fields
                        .iter()
                        .map(|(f, v)| (field_name(f), value(fx, v)))
                        .collect(),
                )
                .to_string()
                .into_bytes(),
                BodyInput::Raw(b) => b.clone(),
                BodyInput::Text(t) => t.clone().into_bytes(),
                BodyInput::Empty => Vec::new(),
            };
            (input, bytes)
        }
    };
    // The body as the object it is, when it is one (for the 2xx checks).
    let object: Option<Map<String, Value>> = serde_json::from_slice(&bytes).ok();

    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path(input.endpoint));
    let json_type = match &input.content_type {
        ContentType::Json => Some("application/json".to_owned()),
        ContentType::JsonCharset => Some("application/json; charset=utf-8".to_owned()),
        ContentType::Missing => None,
        ContentType::Other(s) => Some(s.clone()),
    };
    if let Some(t) = &json_type {
        request = request.header(header::CONTENT_TYPE, t.as_str());
    }
    match &input.auth {
        Auth::Alice => {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", fx.alice.token))
        }
        Auth::Bob => {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", fx.bob.token))
        }
        Auth::Missing => {}
        Auth::Bearer(t) => request = request.header(header::AUTHORIZATION, format!("Bearer {t}")),
        Auth::Header(h) => request = request.header(header::AUTHORIZATION, h.as_str()),
    }
    let Ok(mut request) = request.body(Body::from(bytes.clone())) else {
        return; // a header value no HTTP client could send (e.g. a newline in it)
    };
    request.extensions_mut().insert(ConnectInfo(PEER));

    let what = format!("{:?}", input.endpoint);
    let answer = call(fx, request);
    count(format!("{what} {}", answer.status.as_u16()));
    assert_ne!(
        answer.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{what}: 500 for {input:?} with body {:?}: {}",
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        !answer.status.is_server_error() || answer.status == StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {} for {input:?} with body {:?}",
        answer.status,
        String::from_utf8_lossy(&bytes)
    );
    if !answer.status.is_success() {
        check_envelope(&answer, &what);
        return;
    }
    let v: Value = serde_json::from_slice(&answer.body).expect("a 2xx body is JSON");
    let Some(object) = object else { return };
    let field = |k: &str| object.get(k).and_then(Value::as_str);
    match input.endpoint {
        Endpoint::Register => {
            assert_eq!(answer.status, StatusCode::CREATED);
            let email = Email::parse(field("email").expect("registered without email"))
                .expect("registered with an invalid email");
            let name = DisplayName::parse(field("name").expect("registered without a name"))
                .expect("registered with an invalid name");
            assert_eq!(v["user"]["email"].as_str(), Some(email.as_str()));
            assert_eq!(v["user"]["name"].as_str(), Some(name.as_str()));
            // The new account reads back as it was answered.
            let token = v["token"].as_str().expect("a token");
            let mut me = Request::builder()
                .method(Method::GET)
                .uri("/api/auth/me")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .expect("request");
            me.extensions_mut().insert(ConnectInfo(PEER));
            let me = call(fx, me);
            assert_eq!(
                me.status,
                StatusCode::OK,
                "the account just registered as {email:?} cannot be read back: {}",
                String::from_utf8_lossy(&me.body)
            );
            let me: Value = serde_json::from_slice(&me.body).expect("JSON");
            assert_eq!(me, v["user"], "/me differs from the registration's answer");
        }
        Endpoint::Login => {
            let email = Email::parse(field("email").expect("logged in without email"))
                .expect("logged in with an invalid email");
            assert_eq!(v["user"]["email"].as_str(), Some(email.as_str()));
            assert!(v["token"].as_str().is_some_and(|t| !t.is_empty()));
        }
        Endpoint::AddContact => {
            let email = Email::parse(field("email").expect("added without email"))
                .expect("added an invalid email");
            assert_eq!(v["contact"]["email"].as_str(), Some(email.as_str()));
        }
        Endpoint::Send => {
            let duplicate = v["duplicate"].as_bool().expect("duplicate flag");
            assert_eq!(
                answer.status,
                if duplicate {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                }
            );
            if !duplicate {
                assert_eq!(
                    v["message"]["content"].as_str(),
                    field("content"),
                    "body changed"
                );
            }
            assert_eq!(v["message"]["clientId"].as_str(), field("clientId"));
            assert_eq!(v["message"]["type"], "text");
            for v1 in V1_NAMES {
                assert!(!object.contains_key(v1), "sent with the v1 field {v1}");
            }
            match (field("receiverId"), field("conversationId")) {
                (Some(_), None) => {}
                (None, Some(c)) => assert_eq!(
                    v["message"]["conversationId"].as_str(),
                    Some(c.to_lowercase().as_str()),
                    "sent into another conversation"
                ),
                other => panic!("sent with targets {other:?}"),
            }
            let sender = match input.auth {
                Auth::Alice => Some(fx.alice.user.id.to_string()),
                Auth::Bob => Some(fx.bob.user.id.to_string()),
                _ => None,
            };
            if let Some(sender) = sender {
                assert_eq!(v["message"]["sender"].as_str(), Some(sender.as_str()));
            }
        }
    }
});
