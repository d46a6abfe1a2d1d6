//! Serving connections: the accept loop, the cap on connections, and the deadlines and
//! checks every connection gets before hyper and the router see its bytes.
//!
//! - Every connection, HTTP or WebSocket, holds a place among `--max-http-connections`
//!   from accept until it closes. Past the cap, a new connection is accepted, answered
//!   `503 too_many_connections` (the error envelope) and closed; while more than
//!   [`MAX_LINGERING`] such answers are still lingering (waiting for the client to read
//!   them and hang up), further ones are closed at once without an answer, since even
//!   an answer costs a descriptor for up to [`io::LINGER`].
//! - A connection must begin a request within `--idle-connection-timeout` of being
//!   accepted or of its last response, finish the request's head within
//!   `--header-read-timeout` of its first byte (else `408 request_timeout`), and send
//!   the request's whole body within `--idle-connection-timeout` of its head (else
//!   `408`). A silent or idle connection is closed without an answer. An upgraded
//!   WebSocket has none of these: its heartbeat finds dead peers.
//! - A request head that hyper would refuse with an empty answer is refused here with
//!   the envelope and the security headers: `400 bad_request` (not HTTP/1.1, or a
//!   malformed framing), `414 uri_too_long`, `431 headers_too_large`.
//! - Only HTTP/1.1 is served (WebSocket included): no HTTP/2 over cleartext (h2c). Behind
//!   a TLS-terminating proxy that speaks HTTP/1.1 upstream it would bring nothing but
//!   another protocol's limits to get right; a client sending the HTTP/2 preface gets
//!   `400 bad_request` saying so.

mod answer;
mod body;
mod head;
mod io;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub(crate) use body::is_body_timeout;
use head::MAX_HEADERS;
pub(crate) use io::Timeouts;

use self::answer::Refusal;
use self::body::{Finished, ResponseEnd, TimedBody};
use self::io::{GuardedIo, Shared};

/// Refused connections that may linger at once for their 503 to be read.
pub(crate) const MAX_LINGERING: usize = 256;

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// The deadlines of a connection.
    pub(crate) timeouts: Timeouts,
    /// Connections held at once, HTTP and WebSocket together.
    pub(crate) max_connections: usize,
    /// How long in-flight requests may take to finish once stopping.
    pub(crate) grace: Duration,
}

/// Accepts connections until `stop` resolves, then lets in-flight requests finish (up to
/// `settings.grace`). Each request gets its peer address as `ConnectInfo`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    settings: Settings,
    stop: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(settings.max_connections));
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer runs from when it starts waiting for a head, idle time
    // included; the socket's deadlines are tighter, so this is only a backstop.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.timeouts.idle + settings.timeouts.header)
        .max_headers(MAX_HEADERS);
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            refuse(stream, &lingering);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::new(Shared::default());
        let io = GuardedIo::new(stream, shared.clone(), settings.timeouts, place);
        let service = service(router.clone(), peer, shared, settings.timeouts.idle);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let closing = closing.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = closing.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(settings.grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some requests did not finish in time");
    }
}

/// The hyper service of one connection: the router, with the peer's address, a deadline
/// on the request body, and word to the socket of when each request starts and ends.
fn service(
    router: axum::Router,
    peer: SocketAddr,
    shared: Arc<Shared>,
    body_limit: Duration,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = hyper::Response<ResponseEnd<axum::body::Body>>,
    Error = Infallible,
    Future = impl Future<Output = Result<hyper::Response<ResponseEnd<axum::body::Body>>, Infallible>>
             + Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        shared.start_request();
        // Dropped with the response body once it is sent, or with this future if the
        // request is abandoned.
        let finished = Finished(shared.clone());
        let shared = shared.clone();
        let mut req = req.map(|body| axum::body::Body::new(TimedBody::new(body, body_limit)));
        req.extensions_mut().insert(ConnectInfo(peer));
        let response = router.clone().oneshot(req);
        async move {
            let Ok(response) = response.await;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                shared.upgrade();
            }
            Ok(response.map(|body| ResponseEnd::new(body, finished)))
        }
    })
}

/// Answers a connection past the cap with 503 and closes it, or, when too many such
/// answers are already lingering, closes it at once.
fn refuse(stream: TcpStream, lingering: &Arc<Semaphore>) {
    crate::metrics::connection_refused(Refusal::TooManyConnections.label());
    let Ok(slot) = lingering.clone().try_acquire_owned() else {
        return;
    };
    // A fresh socket's send buffer takes the whole answer at once.
    let _ = stream.try_write(&Refusal::TooManyConnections.answer());
    tokio::spawn(async move {
        let _slot = slot;
        let _ = tokio::time::timeout(io::LINGER, linger(stream)).await;
    });
}

/// Ends the write side and discards what the client sends until it hangs up: closing
/// with unread bytes would reset the connection, and a reset can destroy the answer
/// before the client reads it.
async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}
