//! `spawn_app()` and one typed helper per endpoint, so tests read like a user's session.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley::app::Application;
use parley::config::Config;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error as tungstenite_error;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: Arc<TempDir>,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), parley::app::AppError>>>,
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub name: String,
    pub email: String,
    pub password: String,
    pub token: String,
    pub refresh_token: String,
}

/// Settings for tests: port 0, generous rate limits (tests that check limits lower
/// them), quick idle timeouts off.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::from_args([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().expect("temp dir is UTF-8"),
    ])
    .expect("test config parses");
    config.jwt_secret = None;
    config.login_per_email_per_minute = 10_000;
    config.login_failures_per_address = 10_000;
    config.auth_per_address_per_minute = 10_000;
    config.send_rate_per_second = 100_000;
    config.send_burst = 100_000;
    config.receipts_per_second = 100_000;
    config.contact_adds_per_minute = 100_000;
    config.max_unanswered_conversations = 100_000;
    config.syncs_per_minute = 100_000;
    config.session_opens_per_minute = 100_000;
    config
}

/// The store a copy of the store-dependent test modules runs on (see `main.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStore {
    /// The embedded store, in the server's temp dir.
    Fjall,
    /// The live CQL node of `SCYLLA_URI`, in this run's shared keyspace.
    Scylla,
}

/// The keyspace the ScyllaDB servers of this run share, created by the first one.
static SHARED_KEYSPACE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

impl TestStore {
    /// A server on this store with the test settings; `None` for the ScyllaDB store
    /// when no live node is configured (the test then returns).
    pub async fn spawn_app(self) -> Option<TestApp> {
        self.spawn_app_with(|_| {}).await
    }

    /// A server on this store, with settings adjusted by `tweak`.
    pub async fn spawn_app_with(self, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
        match self {
            TestStore::Fjall => Some(spawn_app_with(tweak).await),
            TestStore::Scylla => {
                let uri = crate::live_cql::uri()?;
                let keyspace = SHARED_KEYSPACE
                    .get_or_init(|| async {
                        crate::live_cql::drop_stale_keyspaces(&uri).await;
                        let keyspace = crate::live_cql::unique_keyspace();
                        // Created once here, so the servers starting in parallel find
                        // the tables instead of all running the DDL.
                        parley::store::ScyllaStore::connect(&crate::live_cql::config(
                            &uri, &keyspace,
                        ))
                        .await
                        .expect("create the shared keyspace");
                        keyspace
                    })
                    .await;
                Some(
                    spawn_app_with(|c| {
                        c.store.kind = parley::config::StoreKind::Scylla;
                        c.store.scylla_uri = Some(uri.parse().expect("SCYLLA_URI"));
                        c.store.scylla_keyspace = keyspace.parse().expect("keyspace name");
                        tweak(c);
                    })
                    .await,
                )
            }
        }
    }
}

/// A server on a fresh temp dir with the test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server on a fresh temp dir, with settings adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = test_config(dir.path());
    tweak(&mut config);
    start(dir, config).await
}

async fn start(dir: Arc<TempDir>, config: Config) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        parley::telemetry::init(parley::config::LogFormat::Pretty);
    }
    let app = Application::build(config.clone())
        .await
        .expect("server builds");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        dir,
        config,
        stop: Some(stop),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the server gracefully and waits until it has flushed.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    /// Stops the server and starts a new one on the same data dir and settings.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown().await;
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        start(self.dir.clone(), config).await
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/auth/register",
            None,
            &json!({"name": name, "email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn logout(&self, token: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/auth/logout"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.get("/api/auth/me", Some(token)).await
    }

    pub async fn add_contact(&self, token: &str, email: &str) -> reqwest::Response {
        self.post(
            "/api/contact/add-contact",
            Some(token),
            &json!({"email": email}),
        )
        .await
    }

    pub async fn contacts(&self, token: &str) -> reqwest::Response {
        self.get("/api/contact/contacts", Some(token)).await
    }

    /// Registers a user with a unique email and returns it.
    pub async fn new_user(&self, name: &str) -> TestUser {
        let email = format!(
            "{}-{}@example.com",
            name.to_lowercase().replace(' ', "."),
            uuid_like()
        );
        let password = "correct horse battery".to_owned();
        let res = self.register(name, &email, &password).await;
        assert_eq!(res.status(), 201, "registering {name}");
        let body: Value = res.json().await.unwrap();
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            email,
            password,
            token: body["token"].as_str().unwrap().to_owned(),
            refresh_token: body["refreshToken"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn delete(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut req = self.http.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("request sent")
    }

    /// `POST /api/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post(
            "/api/auth/refresh",
            None,
            &json!({"refreshToken": refresh_token}),
        )
        .await
    }

    /// Logs in again on a device of this name; the answer's body.
    pub async fn login_on(&self, user: &TestUser, device: &str) -> Value {
        let res = self
            .post(
                "/api/auth/login",
                None,
                &json!({"email": user.email, "password": user.password, "device": device}),
            )
            .await;
        assert_eq!(res.status(), 200, "logging {} in on {device}", user.name);
        res.json().await.unwrap()
    }

    /// `GET /api/auth/sessions`: the `sessions` array.
    pub async fn sessions(&self, token: &str) -> Vec<Value> {
        let res = self.get("/api/auth/sessions", Some(token)).await;
        assert_eq!(res.status(), 200, "listing sessions");
        let body: Value = res.json().await.unwrap();
        body["sessions"].as_array().expect("sessions array").clone()
    }

    /// `DELETE /api/auth/sessions/{id}`.
    pub async fn sign_out(&self, token: &str, id: &str) -> reqwest::Response {
        self.delete(&format!("/api/auth/sessions/{id}"), Some(token), None)
            .await
    }

    /// `POST /api/auth/password`.
    pub async fn change_password(
        &self,
        token: &str,
        current: &str,
        new: &str,
    ) -> reqwest::Response {
        self.post(
            "/api/auth/password",
            Some(token),
            &json!({"currentPassword": current, "newPassword": new}),
        )
        .await
    }

    /// `DELETE /api/auth/account`.
    pub async fn delete_account(&self, token: &str, password: &str) -> reqwest::Response {
        self.delete(
            "/api/auth/account",
            Some(token),
            Some(&json!({"password": password})),
        )
        .await
    }

    /// `GET /api/auth/export`, the page after `cursor`.
    pub async fn export(&self, token: &str, cursor: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.url("/api/auth/export"))
            .bearer_auth(token);
        if let Some(c) = cursor {
            req = req.query(&[("cursor", c)]);
        }
        req.send().await.expect("request sent")
    }

    /// Sends `content` to `to` over REST; the answer's body.
    pub async fn send_rest(&self, token: &str, to: &str, content: &str) -> Value {
        let res = self
            .post(
                "/api/messages/send",
                Some(token),
                &json!({"receiverId": to, "content": content}),
            )
            .await;
        assert_eq!(res.status(), 201, "sending {content:?}");
        res.json().await.unwrap()
    }

    /// A WebSocket session for `token`, past its `ready` frame.
    pub async fn connect(&self, token: &str) -> WsClient {
        let mut client = self.connect_raw(token).await.expect("websocket connects");
        let ready = client.recv().await;
        assert_eq!(ready["type"], "ready", "first frame is ready: {ready}");
        client
    }

    /// A WebSocket handshake with a bearer header; the HTTP error on refusal.
    pub async fn connect_raw(&self, token: &str) -> Result<WsClient, tungstenite_error::Error> {
        let mut request = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(WsClient { ws })
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A WebSocket client speaking Parley's JSON frames.
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(WsMessage::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    pub async fn send_to(&mut self, to: &str, body: &str, client_id: &str) {
        self.send(
            json!({"type": "send", "receiverId": to, "content": body, "clientId": client_id}),
        )
        .await;
    }

    /// The next JSON frame (pings and pongs skipped); panics after 10 s.
    pub async fn recv(&mut self) -> Value {
        self.try_recv(WAIT).await.expect("a frame arrives in time")
    }

    /// The next JSON frame within `wait`, or None.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg.expect("websocket read") {
                WsMessage::Text(t) => {
                    return Some(serde_json::from_str(t.as_str()).expect("frames are JSON"));
                }
                WsMessage::Close(frame) => panic!("unexpected close: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Frames until one of type `kind` (inclusive), collecting them all.
    pub async fn recv_until(&mut self, kind: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let f = self.recv().await;
            let done = f["type"] == kind;
            frames.push(f);
            if done {
                return frames;
            }
        }
    }

    /// Waits for the server to close the connection; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("connection was not closed in time"),
                Ok(None) => panic!("connection ended without a close frame"),
                Ok(Some(Err(e))) => panic!("connection failed without a close frame: {e}"),
                Ok(Some(Ok(WsMessage::Close(Some(frame))))) => {
                    return (frame.code.into(), frame.reason.as_str().to_owned());
                }
                Ok(Some(Ok(WsMessage::Close(None)))) => panic!("close frame without a code"),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

/// Asserts an error envelope with this status and code (and the top-level `success:
/// false` and `message` of the backend Parley replaces, the same sentence); returns the
/// body.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for {code}");
    let body: Value = res.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "has a message: {body}"
    );
    assert_eq!(body["success"], false, "body: {body}");
    assert_eq!(body["message"], body["error"]["message"], "body: {body}");
    body
}

/// The string field `key` of a JSON answer (the test fails, showing the answer, when
/// it is missing or not a string).
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}
