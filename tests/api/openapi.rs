//! The OpenAPI document at `/openapi.json` covers every route of the router (read from
//! `src/http/mod.rs`, so a new route without a document entry fails here), every
//! reference in it resolves, and real answers have the shape it gives them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const ROUTER: &str = include_str!("../../src/http/mod.rs");

/// `(method, path)` of every `.route("path", method(...))` in the router.
fn routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for chunk in ROUTER.split(".route(").skip(1) {
        let mut quoted = chunk.split('"');
        let path = quoted.nth(1).expect("a route's path").to_owned();
        let rest = quoted.next().expect("after the path");
        let method = rest
            .trim_start_matches([',', ' ', '\n'])
            .split('(')
            .next()
            .unwrap()
            .trim()
            .to_owned();
        // Further methods of the same path are chained: `get(a).post(b)`.
        for chained in ["get", "post", "patch", "put", "delete"] {
            if rest.contains(&format!(").{chained}(")) {
                out.insert((chained.to_owned(), path.clone()));
            }
        }
        out.insert((method, path));
    }
    out
}

async fn document(app: &TestApp) -> Value {
    let res = app.get("/openapi.json", None).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// `body` has every required property of schema `name` and none it does not list.
fn assert_shape(doc: &Value, name: &str, body: &Value) {
    let schema = &doc["components"]["schemas"][name];
    let properties = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has properties"));
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("{body} is an object"));
    for key in object.keys() {
        assert!(
            properties.contains_key(key),
            "{name} does not document {key}: {body}"
        );
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().unwrap();
        assert!(object.contains_key(key), "{name} requires {key}: {body}");
    }
}

/// A success body of `/api/`: `success: true` (the document's `Success`, which every 2xx
/// schema there is `allOf` with) beside the fields of schema `name`.
fn assert_success_shape(doc: &Value, name: &str, body: &Value) {
    assert_eq!(body["success"], true, "{body}");
    let mut rest = body.clone();
    rest.as_object_mut().unwrap().remove("success");
    assert_shape(doc, name, &rest);
}

#[tokio::test]
async fn every_route_of_the_router_is_in_the_openapi_document() {
    let app = spawn_app_with(|c| {
        c.admin_token = Some(parley::config::Secret(
            "admin-token-for-tests-0123456789".into(),
        ))
    })
    .await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let routes = routes();
    assert!(
        routes.len() >= 17,
        "the router's routes were read: {routes:?}"
    );
    for (method, path) in &routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing from /openapi.json"
        );
    }
    // Nothing documented that the router does not serve.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                routes.contains(&(method.clone(), path.clone())),
                "{method} {path} is documented but not routed"
            );
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("a schema ref");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} resolves"
        );
    }
    for scheme in ["bearer", "admin"] {
        assert_eq!(
            doc["components"]["securitySchemes"][scheme]["scheme"],
            "bearer"
        );
    }
}

#[tokio::test]
async fn real_answers_have_the_shapes_the_document_gives_them() {
    let app = spawn_app_with(|_| {}).await;
    let doc = document(&app).await;
    let res = app
        .post(
            "/api/auth/register",
            None,
            &json!({"name": "Ada", "email": "ada-openapi@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let auth: Value = res.json().await.unwrap();
    assert_success_shape(&doc, "AuthResponse", &auth);
    assert_shape(&doc, "UserJson", &auth["user"]);
    let ada = auth["token"].as_str().unwrap().to_owned();
    let bob = app.new_user("Bob").await;

    let res = app.add_contact(&ada, &bob.email).await;
    let contact: Value = res.json().await.unwrap();
    assert_success_shape(&doc, "ContactResponse", &contact);
    let sent: Value = app
        .post(
            "/api/messages/send",
            Some(&ada),
            &json!({"receiverId": bob.id, "content": "hi", "clientId": "oa-1"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_success_shape(&doc, "MessageResponse", &sent);
    assert_shape(&doc, "Message", &sent["message"]);
    let list: Value = app
        .get("/api/conversations", Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    assert_success_shape(&doc, "ConversationsResponse", &list);
    assert_shape(&doc, "Conversation", &list["conversations"][0]);
    let page: Value = app
        .get(&format!("/api/messages/{}", bob.id), Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    assert_success_shape(&doc, "HistoryPage", &page);
    let refreshed: Value = app
        .post(
            "/api/auth/refresh",
            None,
            &json!({"refreshToken": auth["refreshToken"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_success_shape(&doc, "AuthResponse", &refreshed);
    let ada = refreshed["token"].as_str().unwrap().to_owned();
    let sessions: Value = app
        .get("/api/auth/sessions", Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    assert_success_shape(&doc, "SessionList", &sessions);
    assert_shape(&doc, "Session", &sessions["sessions"][0]);
    let export: Value = app
        .get("/api/auth/export", Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    assert_success_shape(&doc, "ExportResponse", &export);
    assert_shape(&doc, "ExportAccount", &export["account"]);
    assert_shape(&doc, "ExportConversation", &export["conversations"][0]);
    assert_shape(&doc, "Message", &export["messages"][0]);
    let error: Value = app
        .post("/api/auth/login", None, &json!({"email": "x"}))
        .await
        .json()
        .await
        .unwrap();
    assert_shape(&doc, "Error", &error);
    assert_shape(&doc, "ErrorBody", &error["error"]);
}

#[tokio::test]
async fn a_seq_beyond_the_documented_int64_is_validation_failed() {
    let app = spawn_app_with(|_| {}).await;
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let res = app
        .get(
            &format!("/api/messages/{}?before=9223372036854775808", bob.id),
            Some(&ada.token),
        )
        .await;
    let body = crate::helpers::assert_error(res, 400, "validation_failed").await;
    assert_eq!(
        body["error"]["fields"],
        json!({"before": "must be at most 9223372036854775807"})
    );
}

/// The text fields' patterns (`name`, `device`, `content`, `clientId`) as the document
/// gives them, compiled.
fn pattern(doc: &Value, schema: &str, field: &str) -> regex::Regex {
    let p = doc["components"]["schemas"][schema]["properties"][field]["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{schema}.{field} has a pattern"));
    regex::Regex::new(p).expect("a pattern the regex crate reads")
}

#[tokio::test]
async fn a_name_the_document_allows_is_registered_and_one_it_refuses_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let doc = document(&app).await;
    let name = pattern(&doc, "RegisterBody", "name");
    let cases = [
        "Ada",
        " Ada Lovelace\n",
        "A\u{00AD}da",
        "Ada\u{E0041}",
        "Ada\u{202E}nimda",
        "\u{200D}",
        "\u{3000}\u{2800}",
        "\u{1F469}\u{200D}\u{1F4BB} Ada",
        "\u{00A8}",
        // 64 characters as typed, 1,152 once normalised: the limit is on what was typed.
        &"\u{FDFA}".repeat(64),
    ];
    for (i, given) in cases.into_iter().enumerate() {
        let documented = name.is_match(given) && given.chars().count() <= 64;
        let res = app
            .register(
                given,
                &format!("name{i}@example.com"),
                "correct horse battery",
            )
            .await;
        assert_eq!(
            res.status() == 201,
            documented,
            "{given:?}: the document says {}, the server answered {}",
            if documented { "valid" } else { "invalid" },
            res.status()
        );
    }
}

#[tokio::test]
async fn a_message_or_client_id_the_document_refuses_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let doc = document(&app).await;
    let content = pattern(&doc, "SendToUser", "content");
    let client_id = pattern(&doc, "SendToUser", "clientId");
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let cases = [
        ("hi", "c-1"),
        ("\u{3000}\u{00A0}\n", "c-2"),
        ("hi", "caf\u{E9}"),
        (" \u{0085}x", "c-3"),
        ("hi", "tab\there"),
    ];
    for (text, id) in cases {
        let documented = content.is_match(text) && client_id.is_match(id);
        let res = app
            .post(
                "/api/messages/send",
                Some(&ada.token),
                &json!({"receiverId": bob.id, "content": text, "clientId": id}),
            )
            .await;
        assert_eq!(
            res.status().is_success(),
            documented,
            "{text:?} / {id:?}: answered {}",
            res.status()
        );
    }
}
