//! One WebSocket session: a loop that reads client frames, writes deliveries, acks and
//! replies, and ends on close, error, kick, heartbeat timeout or shutdown.
//!
//! Sends are handed to the messenger and awaited concurrently (their acks wait for an
//! fsync), at most [`MAX_IN_FLIGHT`] at a time; past that the session stops reading,
//! which pushes back on the client through TCP.
//!
//! Per conversation, the session remembers which seqs it has written (a few merged
//! ranges), so a message is never written twice, a gap in live deliveries is filled from
//! the store, and a `sync` replays exactly what the client lacks.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::domain::{ConversationId, Message, Seq, SessionId};
use actors::store::HistoryRange;
use actors::{Kick, SendError, SendRequest, Sent, SessionLink};
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::stream::{FuturesUnordered, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use super::protocol::{self, Command, OutFrame, close};
use super::written::Written;
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::wire::{MessageJson, UserJson};

/// Sends of one session awaiting their commit at once.
pub(crate) const MAX_IN_FLIGHT: usize = 256;
/// Deliveries written before a flush when many are queued.
const WRITE_BATCH: usize = 64;
/// Messages read from the store per page when filling a gap or replaying.
const PAGE: usize = 500;

type SendFuture = Pin<Box<dyn Future<Output = (Option<Value>, Result<Sent, SendError>)> + Send>>;

/// Why a session ended.
struct Ending {
    code: Option<u16>,
    reason: &'static str,
    /// Whether the server still owes a close frame (not when the client closed first:
    /// the WebSocket layer has queued the reply already).
    send_close: bool,
}

impl Ending {
    fn close(code: u16, reason: &'static str) -> Self {
        Self {
            code: Some(code),
            reason,
            send_close: true,
        }
    }
    fn gone(reason: &'static str) -> Self {
        Self {
            code: None,
            reason,
            send_close: false,
        }
    }
    fn client_closed() -> Self {
        Self {
            code: Some(close::NORMAL),
            reason: "client_close",
            send_close: false,
        }
    }
}

/// Why handling an event stopped the session.
enum Stop {
    /// The socket failed: nobody is left to tell.
    Transport,
    /// The store failed mid-replay: the session cannot promise order any more.
    Internal,
}

impl From<Stop> for Ending {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Transport => Ending::gone("transport_error"),
            Stop::Internal => Ending::close(close::INTERNAL, "internal error: reconnect and sync"),
        }
    }
}

struct Session {
    state: AppState,
    me: AuthUser,
    id: SessionId,
    sink: SplitSink<WebSocket, WsMessage>,
    written: HashMap<ConversationId, Written>,
    dirty: bool,
}

/// How long a closing session may take to write its close frame: a client that is not
/// reading would otherwise hold the connection forever.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// How long a session waits for the client's Close after sending its own.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

/// Something the session must act on.
enum Event {
    Frame(Option<Result<WsMessage, axum::Error>>),
    Sent(Option<Value>, Result<Sent, SendError>),
    Delivery(Option<Arc<Message>>),
    Tick,
}

/// Runs a session to its end.
pub(crate) async fn run(
    state: AppState,
    me: AuthUser,
    id: SessionId,
    link: SessionLink,
    socket: WebSocket,
) {
    let (sink, mut stream) = socket.split();
    let user_id = me.user.id;
    tracing::info!(target: "parley::session", user_id = %user_id, session = %id, "session_opened");
    crate::metrics::session_opened();
    let mut session = Session {
        state: state.clone(),
        me,
        id,
        sink,
        written: HashMap::new(),
        dirty: false,
    };
    let ending = session.serve(&mut stream, link).await;
    if let (Some(code), true) = (ending.code, ending.send_close) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(ending.reason),
        };
        let sent = tokio::time::timeout(
            CLOSE_GRACE,
            session.sink.send(WsMessage::Close(Some(frame))),
        )
        .await;
        if matches!(sent, Ok(Ok(()))) {
            // Complete the closing handshake: read (and drop) what the client still sends
            // until its Close arrives. Dropping the socket with unread data would make the
            // kernel reset the connection, and the client could lose the close frame.
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                while let Some(Ok(msg)) = stream.next().await {
                    if matches!(msg, WsMessage::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    } else {
        // Pushes out the close reply the WebSocket layer queued for a client's close.
        let _ = tokio::time::timeout(CLOSE_GRACE, session.sink.flush()).await;
    }
    state.messenger().detach(user_id, id);
    tracing::info!(
        target: "parley::session",
        user_id = %user_id, session = %id, close_code = ending.code, reason = ending.reason, "session_closed"
    );
    crate::metrics::session_closed(ending.code, ending.reason);
}

impl Session {
    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>, link: SessionLink) -> Ending {
        let SessionLink {
            mut messages,
            mut kicked,
        } = link;
        let shutdown = self.state.shutdown_signal().clone();
        let heartbeat = self.state.config().heartbeat_interval;
        // Checked every half interval against 1.5 intervals of silence, so a dead peer is
        // found within two intervals while a live one (pinged every interval) never is.
        let half = heartbeat / 2;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
        let mut ticks: u64 = 0;
        let mut last_seen = Instant::now();
        let mut in_flight: FuturesUnordered<SendFuture> = FuturesUnordered::new();
        let mut event = None;
        loop {
            // Handle the last event; every write in it races the kick and shutdown, so a
            // client that stops reading cannot pin the session in a blocked write.
            let work = async {
                match event.take() {
                    None => {
                        let ready = OutFrame::Ready {
                            user: UserJson::from(&self.me.user),
                            session: self.id.to_string(),
                        };
                        self.write(&ready).await?;
                    }
                    Some(Event::Frame(frame)) => match frame {
                        None => return Ok(Some(Ending::gone("client_gone"))),
                        Some(Err(e)) => return Ok(Some(read_error(e))),
                        Some(Ok(WsMessage::Text(text))) => {
                            self.on_text(text.as_str(), &mut in_flight).await?
                        }
                        Some(Ok(WsMessage::Binary(_))) => {
                            return Ok(Some(Ending::close(
                                close::UNSUPPORTED_DATA,
                                "binary frames are not supported",
                            )));
                        }
                        Some(Ok(WsMessage::Close(_))) => {
                            return Ok(Some(Ending::client_closed()));
                        }
                        // Pings are answered by the WebSocket layer; pongs only prove life.
                        Some(Ok(_)) => {}
                    },
                    Some(Event::Sent(client_id, result)) => {
                        self.on_sent(client_id.as_ref(), result).await?
                    }
                    Some(Event::Delivery(None)) => {
                        return Ok(Some(Ending::close(
                            close::RESTART,
                            "session reset: reconnect and sync",
                        )));
                    }
                    Some(Event::Delivery(Some(m))) => self.on_deliveries(m, &mut messages).await?,
                    Some(Event::Tick) => {
                        if last_seen.elapsed() > heartbeat + half {
                            return Ok(Some(Ending::close(
                                close::HEARTBEAT_TIMEOUT,
                                "heartbeat timeout",
                            )));
                        }
                        ticks += 1;
                        if ticks.is_multiple_of(2) {
                            self.dirty = true;
                            self.sink
                                .feed(WsMessage::Ping(Default::default()))
                                .await
                                .map_err(|_| Stop::Transport)?;
                        }
                    }
                }
                self.flush().await.map(|()| None)
            };
            let handled = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                kick = &mut kicked => return kick_ending(kick),
                handled = work => handled,
            };
            match handled {
                Err(stop) => return stop.into(),
                Ok(Some(ending)) => return ending,
                Ok(None) => {}
            }
            // Wait for the next event.
            event = Some(tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                kick = &mut kicked => return kick_ending(kick),
                Some((client_id, result)) = in_flight.next(), if !in_flight.is_empty() => Event::Sent(client_id, result),
                delivery = messages.recv() => Event::Delivery(delivery),
                frame = stream.next(), if in_flight.len() < MAX_IN_FLIGHT => {
                    last_seen = Instant::now();
                    Event::Frame(frame)
                }
                _ = ticker.tick() => Event::Tick,
            });
        }
        // Shutting down. Sends already handed to the actors are committed before the
        // store is flushed; answer them now so clients need not retry after a restart.
        let grace = self.state.config().shutdown_timeout / 2;
        let _ = tokio::time::timeout(grace, async {
            while let Some((client_id, result)) = in_flight.next().await {
                if self.on_sent(client_id.as_ref(), result).await.is_err() {
                    return;
                }
            }
            let _ = self.flush().await;
        })
        .await;
        Ending::close(close::GOING_AWAY, "server shutting down")
    }

    async fn on_text(
        &mut self,
        text: &str,
        in_flight: &mut FuturesUnordered<SendFuture>,
    ) -> Result<(), Stop> {
        let max = self.state.config().max_message_chars;
        match protocol::parse(text, max) {
            Err(e) => {
                self.error(e.code, &e.message, e.client_id.as_ref(), None)
                    .await
            }
            Ok(Command::Ping) => self.write(&OutFrame::Pong).await,
            // Boxed, like the gap fill below: the session future is held by every idle
            // connection, and inlining these rarely taken paths made it ~3 KiB.
            Ok(Command::Sync { cursors }) => Box::pin(self.sync(cursors)).await,
            Ok(Command::Send {
                target,
                body,
                client_id,
            }) => {
                let echo = client_id
                    .as_ref()
                    .map(|c| Value::String(c.as_str().to_owned()));
                if let Err(limited) = self.state.limits().sends.check(&self.me.user.id) {
                    let ms = limited.retry_after.as_millis().max(1) as u64;
                    return self
                        .error(
                            "rate_limited",
                            "Too many messages; slow down.",
                            echo.as_ref(),
                            Some(ms),
                        )
                        .await;
                }
                let request = SendRequest {
                    from: self.me.user.id,
                    target,
                    body,
                    client_id,
                    origin: Some(self.id),
                };
                let messenger = self.state.messenger().clone();
                in_flight.push(Box::pin(
                    async move { (echo, messenger.send(request).await) },
                ));
                Ok(())
            }
        }
    }

    async fn on_sent(
        &mut self,
        client_id: Option<&Value>,
        result: Result<Sent, SendError>,
    ) -> Result<(), Stop> {
        match result {
            Ok(sent) => {
                let m = &sent.message;
                let frame = OutFrame::Ack {
                    client_id: m.client_id.as_ref().map(|c| c.as_str()),
                    duplicate: sent.duplicate,
                    message: MessageJson::from(m.as_ref()),
                };
                self.write(&frame).await?;
                // The sender's own session has the message now, through its ack.
                self.written
                    .entry(m.conversation)
                    .or_default()
                    .insert(m.seq, m.seq);
                Ok(())
            }
            Err(e) => {
                let (_, code) = crate::http::routes::messages::send_error_code(&e);
                let message = match &e {
                    SendError::Store(cause) => {
                        tracing::error!(error = %cause, "send failed in the store");
                        "The message could not be stored; retry with the same client_id.".to_owned()
                    }
                    other => other.to_string(),
                };
                self.error(code, &message, client_id, None).await
            }
        }
    }

    /// Writes one delivery and whatever else is already queued, in order.
    async fn on_deliveries(
        &mut self,
        first: Arc<Message>,
        queue: &mut tokio::sync::mpsc::Receiver<Arc<Message>>,
    ) -> Result<(), Stop> {
        self.on_live(&first).await?;
        for _ in 1..WRITE_BATCH {
            match queue.try_recv() {
                Ok(m) => self.on_live(&m).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn on_live(&mut self, m: &Message) -> Result<(), Stop> {
        let written = self.written.entry(m.conversation).or_default();
        if written.contains(m.seq) {
            return Ok(());
        }
        if let Some(top) = written.top()
            && m.seq > top + 1
        {
            // Deliveries arrive in seq order, so one went missing (an actor restarted):
            // fill the gap from history first.
            Box::pin(self.replay(m.conversation, top, Some(m.seq), usize::MAX)).await?;
        }
        self.write(&OutFrame::Message {
            message: MessageJson::from(m),
        })
        .await?;
        crate::metrics::delivered(m.sent_at);
        self.written
            .entry(m.conversation)
            .or_default()
            .insert(m.seq, m.seq);
        Ok(())
    }

    /// Replays, for every conversation of the user, what comes after the client's cursor
    /// and was not written by this session already; at most `sync_batch` messages.
    async fn sync(&mut self, cursors: HashMap<ConversationId, Seq>) -> Result<(), Stop> {
        let mut budget = self.state.config().sync_batch;
        let mut more = false;
        let mut done = BTreeMap::new();
        let mut conversations = match self.state.store().user_conversations(self.me.user.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "sync failed in the store");
                return self
                    .error("internal", "Sync failed; try again.", None, None)
                    .await;
            }
        };
        conversations.sort();
        for conv in conversations {
            let cursor = cursors.get(&conv).copied().unwrap_or(0);
            let gaps = self
                .written
                .get(&conv)
                .map_or_else(|| vec![(cursor, None)], |w| w.gaps_after(cursor));
            for (after, before) in gaps {
                if budget == 0 {
                    more = true;
                    break;
                }
                let (replayed, exhausted) = self.replay(conv, after, before, budget).await?;
                budget -= replayed;
                if !exhausted {
                    more = true;
                    break;
                }
                // The whole gap is now written, even the seqs that do not exist yet.
                if let Some(before) = before {
                    self.written
                        .entry(conv)
                        .or_default()
                        .insert(after + 1, before - 1);
                }
            }
            let reached = self
                .written
                .get(&conv)
                .map_or(cursor, |w| w.complete_from(cursor));
            done.insert(conv.to_string(), reached);
        }
        self.write(&OutFrame::Synced {
            cursors: done,
            more,
        })
        .await
    }

    /// Writes messages of `conv` with seq in (after, before), up to `budget`, recording
    /// them as written. Returns how many, and whether the range was exhausted.
    async fn replay(
        &mut self,
        conv: ConversationId,
        mut after: Seq,
        before: Option<Seq>,
        budget: usize,
    ) -> Result<(usize, bool), Stop> {
        let mut count = 0;
        while count < budget {
            let limit = PAGE.min(budget - count);
            let range = HistoryRange {
                after: Some(after),
                before,
                limit,
                from_newest: false,
            };
            let page = match self.state.store().messages(conv, range).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "replay failed in the store");
                    return Err(Stop::Internal);
                }
            };
            for m in &page {
                self.write(&OutFrame::Message {
                    message: MessageJson::from(m),
                })
                .await?;
                crate::metrics::replayed();
                self.written.entry(conv).or_default().insert(m.seq, m.seq);
                after = m.seq;
            }
            count += page.len();
            if page.len() < limit {
                return Ok((count, true));
            }
        }
        Ok((count, false))
    }

    async fn error(
        &mut self,
        code: &str,
        message: &str,
        client_id: Option<&Value>,
        retry_after_ms: Option<u64>,
    ) -> Result<(), Stop> {
        self.write(&OutFrame::Error {
            code,
            message,
            client_id,
            retry_after_ms,
        })
        .await
    }

    async fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), Stop> {
        self.dirty = true;
        self.sink
            .feed(WsMessage::Text(Utf8Bytes::from(frame.encode())))
            .await
            .map_err(|_| Stop::Transport)
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        self.sink.flush().await.map_err(|_| Stop::Transport)
    }
}

fn kick_ending(kick: Result<Kick, tokio::sync::oneshot::error::RecvError>) -> Ending {
    match kick {
        Ok(Kick::SlowConsumer) => {
            Ending::close(close::SLOW_CONSUMER, "slow consumer: reconnect and sync")
        }
        // The user actor went away (it failed and is being restarted).
        Err(_) => Ending::close(close::RESTART, "session reset: reconnect and sync"),
    }
}

fn read_error(e: axum::Error) -> Ending {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Ending::close(close::TOO_BIG, "frame too large"),
        // tungstenite checks text frames as they are assembled; the socket is still
        // usable, so the client is told why (RFC 6455 §8.1) instead of being cut off.
        Some(tungstenite::Error::Utf8(_)) => {
            Ending::close(close::INVALID_PAYLOAD, "text frame is not UTF-8")
        }
        // A peer that vanished without a closing handshake is simply gone.
        Some(tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        )) => Ending::gone("client_gone"),
        Some(tungstenite::Error::Protocol(_)) => {
            Ending::close(close::PROTOCOL_ERROR, "protocol error")
        }
        _ => Ending::gone("transport_error"),
    }
}
