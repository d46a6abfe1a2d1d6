//! The socket under hyper. While a connection waits for a request, it holds what the
//! client sends until it makes a whole head, checks it (see `head`), and only then hands
//! it to hyper; it enforces the idle and header deadlines, and answers a refused request
//! itself (see `answer`). While a request is being served, or once the connection is
//! upgraded to a WebSocket (which has its own heartbeat), bytes pass straight through.
//!
//! Which of these holds is decided from counters the service keeps ([`Shared`]): a
//! connection is busy from the moment a head is handed over (or hyper starts a request)
//! until the response's body is dropped. A request pipelined behind another may reach
//! hyper without passing here; hyper's own limits (above these) still apply to it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::answer::Refusal;
use super::head::{self, Head};

/// How long a refused connection may take to receive its answer and hang up.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// Bytes read from the socket at a time while waiting for a head.
const CHUNK: usize = 4096;

/// The connection's deadlines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// From accepting the connection, or from the end of the last response, until a
    /// request's first byte; also how long a request body may take to arrive.
    pub(crate) idle: Duration,
    /// From a request's first byte until its head is complete.
    pub(crate) header: Duration,
}

/// What the service tells the socket about the requests it serves.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    started: AtomicU64,
    finished: AtomicU64,
    upgraded: AtomicBool,
}

impl Shared {
    /// hyper handed the service a request.
    pub(crate) fn start_request(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }
    /// A request's response was sent (or the request abandoned).
    pub(crate) fn finish_request(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
    }
    /// The connection became a WebSocket: no deadlines from here on.
    pub(crate) fn upgrade(&self) {
        self.upgraded.store(true, Ordering::Release);
    }
}

enum Phase {
    /// Waiting for a request: bytes are held until they make a whole, acceptable head.
    Waiting,
    /// A request is with hyper, or the connection is upgraded: bytes pass through.
    Passing,
    /// Writing the answer to a refused request.
    Refusing { answer: Bytes, written: usize },
    /// The answer is out: discard what the client still sends until it hangs up (so that
    /// the answer is not lost to a reset), or until the linger ends.
    Draining,
    /// Done: hyper reads the end of the stream and closes the connection.
    Closed,
}

/// A TCP connection with Parley's deadlines and head checks, holding its place among the
/// connections the server allows until it is dropped (after an upgrade, with the
/// WebSocket).
pub(crate) struct GuardedIo {
    stream: TcpStream,
    shared: Arc<Shared>,
    timeouts: Timeouts,
    /// Bytes read from the socket that hyper has not had yet.
    held: BytesMut,
    /// How many of `held` hyper may have: an accepted head and what came with it.
    releasable: usize,
    /// Heads handed to hyper.
    released: u64,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    _place: OwnedSemaphorePermit,
    _open: crate::metrics::ConnectionGuard,
}

impl GuardedIo {
    /// Guards `stream`, just accepted, holding `place` among the allowed connections.
    pub(crate) fn new(
        stream: TcpStream,
        shared: Arc<Shared>,
        timeouts: Timeouts,
        place: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            stream,
            shared,
            timeouts,
            held: BytesMut::new(),
            releasable: 0,
            released: 0,
            phase: Phase::Waiting,
            deadline: Box::pin(tokio::time::sleep(timeouts.idle)),
            _place: place,
            _open: crate::metrics::connection_opened(),
        }
    }

    /// Whether a request is with hyper or the service, or the connection is upgraded.
    fn busy(&self) -> bool {
        let started = self.shared.started.load(Ordering::Acquire);
        let finished = self.shared.finished.load(Ordering::Acquire);
        self.shared.upgraded.load(Ordering::Acquire) || started.max(self.released) > finished
    }

    fn wait_for_request(&mut self) {
        self.phase = Phase::Waiting;
        self.deadline
            .as_mut()
            .reset(Instant::now() + self.timeouts.idle);
    }

    fn refuse(&mut self, why: Refusal) {
        crate::metrics::connection_refused(why.label());
        self.held = BytesMut::new();
        let answer = why.answer();
        self.phase = if answer.is_empty() {
            Phase::Closed
        } else {
            self.deadline.as_mut().reset(Instant::now() + LINGER);
            Phase::Refusing { answer, written: 0 }
        };
    }

    /// Reads what the socket has into `held`; `Ok(false)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut chunk = [0u8; CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf))?;
        if buf.filled().is_empty() {
            return Poll::Ready(Ok(false));
        }
        self.held.extend_from_slice(buf.filled());
        Poll::Ready(Ok(true))
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.releasable > 0 {
                let n = this.releasable.min(out.remaining());
                out.put_slice(&this.held[..n]);
                this.held.advance(n);
                this.releasable -= n;
                if this.held.is_empty() {
                    // Give the memory back: most connections sit idle.
                    this.held = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            match &mut this.phase {
                Phase::Passing => {
                    if !this.busy() {
                        this.wait_for_request();
                        continue;
                    }
                    return Pin::new(&mut this.stream).poll_read(cx, out);
                }
                Phase::Waiting => {
                    if this.busy() {
                        // hyper found a pipelined request in its own buffer.
                        this.releasable = this.held.len();
                        this.phase = Phase::Passing;
                        continue;
                    }
                    if !this.held.is_empty() {
                        match head::check(&this.held) {
                            Head::Complete => {
                                this.releasable = this.held.len();
                                this.released += 1;
                                this.phase = Phase::Passing;
                                continue;
                            }
                            Head::Refused(why) => {
                                this.refuse(why);
                                continue;
                            }
                            Head::Partial => {}
                        }
                    }
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        let why = if this.held.is_empty() {
                            Refusal::Idle
                        } else {
                            Refusal::HeaderTimeout
                        };
                        this.refuse(why);
                        continue;
                    }
                    let first = this.held.is_empty();
                    if !ready!(this.poll_fill(cx))? {
                        // The client hung up; hyper sees the end of the stream.
                        this.phase = Phase::Closed;
                        continue;
                    }
                    if first {
                        // A request has begun: its head is due within the header timeout.
                        this.deadline
                            .as_mut()
                            .reset(Instant::now() + this.timeouts.header);
                    }
                }
                Phase::Refusing { answer, written } => {
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        this.phase = Phase::Closed;
                        continue;
                    }
                    if *written < answer.len() {
                        let chunk = answer.slice(*written..);
                        match ready!(Pin::new(&mut this.stream).poll_write(cx, &chunk)) {
                            Ok(n) if n > 0 => *written += n,
                            _ => this.phase = Phase::Closed,
                        }
                        continue;
                    }
                    // The answer is out: end the write side so the client sees it whole.
                    let _ = ready!(Pin::new(&mut this.stream).poll_shutdown(cx));
                    this.phase = Phase::Draining;
                }
                Phase::Draining => {
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        this.phase = Phase::Closed;
                        continue;
                    }
                    match ready!(this.poll_fill(cx)) {
                        Ok(true) => this.held.clear(),
                        Ok(false) | Err(_) => this.phase = Phase::Closed,
                    }
                }
                Phase::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
