//! Connections below HTTP: the cap on connections, the idle, header and body deadlines,
//! and answers to requests hyper would refuse, all over raw TCP sockets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};

/// An answer read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Value,
}

/// Parses one HTTP/1.1 answer with a JSON body (as the error envelope has).
fn parse(bytes: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or_else(|_| panic!("body is not JSON: {text:?}"));
    Raw {
        status,
        headers,
        body,
    }
}

/// Reads until the server closes the connection (5 s at most).
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    match read {
        Err(_) => panic!("the server kept the connection open; read so far: {out:?}"),
        Ok(Ok(_)) | Ok(Err(_)) => out,
    }
}

/// Sends `bytes` on a fresh connection and returns everything the server answers
/// before closing it.
async fn exchange(app: &TestApp, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_to_close(&mut stream).await
}

/// Asserts an error envelope with `status` and `code`, the security headers and
/// `Connection: close`.
fn assert_envelope(raw: &Raw, status: u16, code: &str) {
    assert_eq!(raw.status, status, "{raw:?}");
    assert_eq!(raw.body["error"]["code"], code, "{raw:?}");
    assert!(
        raw.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{raw:?}"
    );
    assert_eq!(raw.headers["content-type"], "application/json", "{raw:?}");
    assert_eq!(raw.headers["x-content-type-options"], "nosniff", "{raw:?}");
    assert_eq!(raw.headers["x-frame-options"], "DENY", "{raw:?}");
    assert!(
        raw.headers["content-security-policy"].contains("default-src 'none'"),
        "{raw:?}"
    );
    assert_eq!(raw.headers["connection"], "close", "{raw:?}");
}

#[tokio::test]
async fn silent_sockets_past_the_cap_are_refused_and_the_rest_closed_when_idle() {
    let app = spawn_app_with(|c| {
        c.max_http_connections = 50;
        c.idle_connection_timeout = Duration::from_secs(1);
    })
    .await;
    // Eighty clients connect and say nothing.
    let mut sockets = Vec::new();
    for _ in 0..80 {
        sockets.push((TcpStream::connect(app.addr).await.unwrap(), Instant::now()));
    }
    let outcomes = futures_util::future::join_all(sockets.into_iter().map(
        |(mut stream, connected)| async move {
            let bytes = read_to_close(&mut stream).await;
            (bytes, connected.elapsed())
        },
    ))
    .await;
    let (refused, closed): (Vec<_>, Vec<_>) = outcomes
        .into_iter()
        .partition(|(bytes, _)| !bytes.is_empty());
    // Thirty are over the cap: each is answered at once with the envelope, then closed.
    assert_eq!(refused.len(), 30, "refused: {refused:?}");
    for (bytes, after) in &refused {
        assert_envelope(&parse(bytes), 503, "too_many_connections");
        assert!(*after < Duration::from_secs(1), "refused after {after:?}");
    }
    // The fifty held are closed by the server once idle for a second, without a word.
    assert_eq!(closed.len(), 50);
    for (_, after) in &closed {
        assert!(
            *after >= Duration::from_millis(900) && *after < Duration::from_secs(3),
            "closed after {after:?}"
        );
    }
    // Their places are free again: a new client is served.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_client_at_the_cap_is_told_so_while_the_others_are_served() {
    let app = spawn_app_with(|c| c.max_http_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        // A keep-alive request each, so every one is known to hold its place.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let answer = exchange(&app, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_envelope(&parse(&answer), 503, "too_many_connections");
    drop(held);
    // Freed places are taken again (the server notices the hang-ups at once).
    let deadline = Instant::now() + Duration::from_secs(5);
    while app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "the places were never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|c| c.idle_connection_timeout = Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let answered = Instant::now();
    // The client keeps the connection and sends nothing more.
    let rest = read_to_close(&mut s).await;
    assert!(rest.is_empty(), "closed without a word: {rest:?}");
    let after = answered.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "closed {after:?} after the last answer"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_request_body_dribbled_a_byte_at_a_time_is_cut_off_with_408() {
    let app = spawn_app_with(|c| c.idle_connection_timeout = Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = s.into_split();
    // One more byte every 200 ms: each arrives long before any idle timeout would
    // notice, but the whole body never does.
    let dribble = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer))
        .await
        .expect("the server cut the request off")
        .ok();
    let after = started.elapsed();
    dribble.abort();
    assert_envelope(&parse(&answer), 408, "request_timeout");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "cut off after {after:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_websocket_session_is_not_bound_by_the_idle_timeout() {
    let app = spawn_app_with(|c| c.idle_connection_timeout = Duration::from_millis(300)).await;
    let ada = app.new_user("Ada").await;
    let mut ws = app.connect(&ada.token).await;
    // Five idle timeouts of silence: the session's own heartbeat (30 s) is what counts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ws.send(serde_json::json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");
    app.stop().await;
}

#[tokio::test]
async fn requests_hyper_would_refuse_bare_get_the_error_envelope() {
    let app = spawn_app_with(|_| {}).await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            b"GET /he\x01lthz HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            b"POST /api/auth/login HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"
                .to_vec(),
            400,
            "bad_request",
        ),
        (
            format!(
                "GET /healthz?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(10_000)
            )
            .into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\n{}\r\n",
                "X-Filler: a\r\n".repeat(150)
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
                "b".repeat(40_000)
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let answer = exchange(&app, &request).await;
        assert_envelope(&parse(&answer), status, code);
    }
    // HTTP/2 over cleartext (h2c) is not served, and the answer says so.
    let answer = parse(&exchange(&app, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await);
    assert_envelope(&answer, 400, "bad_request");
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP/2")),
        "{answer:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bad_request_after_a_good_one_on_the_same_connection_gets_the_envelope_too() {
    let app = spawn_app_with(|_| {}).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let target = "a".repeat(10_000);
    s.write_all(format!("GET /{target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert_envelope(&parse(&read_to_close(&mut s).await), 414, "uri_too_long");
    app.stop().await;
}
