//! One WebSocket session: a loop that reads client frames, writes deliveries, acks and
//! replies, and ends on close, error, kick, heartbeat timeout or shutdown.
//!
//! Sends are handed to the messenger and awaited concurrently (their acks wait for an
//! fsync), at most [`MAX_IN_FLIGHT`] at a time; past that the session stops reading,
//! which pushes back on the client through TCP.
//!
//! Per conversation, the session remembers the contiguous range of seqs it has written,
//! so a message is never written twice, a gap in live deliveries is filled from the
//! store, and a `sync` replays exactly what the client lacks.

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

/// What this session has written for one conversation: seqs `from..=to`.
#[derive(Clone, Copy)]
struct Written {
    from: Seq,
    to: Seq,
}

/// Why a session ended.
struct Ending {
    code: Option<u16>,
    reason: &'static str,
}

impl Ending {
    fn close(code: u16, reason: &'static str) -> Self {
        Self {
            code: Some(code),
            reason,
        }
    }
    fn gone(reason: &'static str) -> Self {
        Self { code: None, reason }
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
    let (sink, stream) = socket.split();
    let user_id = me.user.id;
    tracing::info!(target: "parley::session", user_id = %user_id, session = %id, "session_opened");
    let mut session = Session {
        state: state.clone(),
        me,
        id,
        sink,
        written: HashMap::new(),
        dirty: false,
    };
    let ending = session.serve(stream, link).await;
    if let Some(code) = ending.code {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(ending.reason),
        };
        let _ = tokio::time::timeout(
            CLOSE_GRACE,
            session.sink.send(WsMessage::Close(Some(frame))),
        )
        .await;
    }
    state.messenger().detach(user_id, id);
    tracing::info!(
        target: "parley::session",
        user_id = %user_id, session = %id, close_code = ending.code, reason = ending.reason, "session_closed"
    );
}

impl Session {
    async fn serve(&mut self, mut stream: SplitStream<WebSocket>, link: SessionLink) -> Ending {
        let SessionLink {
            mut messages,
            mut kicked,
        } = link;
        let shutdown = self.state.shutdown_signal().clone();
        let heartbeat = self.state.config().heartbeat_interval;
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
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
                            return Ok(Some(Ending::close(close::NORMAL, "client_close")));
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
                        if last_seen.elapsed() > heartbeat * 2 {
                            return Ok(Some(Ending::close(
                                close::HEARTBEAT_TIMEOUT,
                                "heartbeat timeout",
                            )));
                        }
                        self.dirty = true;
                        self.sink
                            .feed(WsMessage::Ping(Default::default()))
                            .await
                            .map_err(|_| ())?;
                    }
                }
                self.flush().await.map(|()| None)
            };
            let handled = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ending::close(close::GOING_AWAY, "server shutting down"),
                kick = &mut kicked => return kick_ending(kick),
                handled = work => handled,
            };
            match handled {
                Err(()) => return Ending::gone("transport_error"),
                Ok(Some(ending)) => return ending,
                Ok(None) => {}
            }
            // Wait for the next event.
            event = Some(tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ending::close(close::GOING_AWAY, "server shutting down"),
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
    }

    async fn on_text(
        &mut self,
        text: &str,
        in_flight: &mut FuturesUnordered<SendFuture>,
    ) -> Result<(), ()> {
        let max = self.state.config().max_message_chars;
        match protocol::parse(text, max) {
            Err(e) => {
                self.error(e.code, &e.message, e.client_id.as_ref(), None)
                    .await
            }
            Ok(Command::Ping) => self.write(&OutFrame::Pong).await,
            Ok(Command::Sync { cursors }) => self.sync(cursors).await,
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
    ) -> Result<(), ()> {
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
                self.note_written(m.conversation, m.seq);
                Ok(())
            }
            Err(e) => {
                let (_, code) = crate::http::routes::messages::send_error_code(&e);
                if let SendError::Store(cause) = &e {
                    tracing::error!(error = %cause, "send failed in the store");
                }
                self.error(code, &e.to_string(), client_id, None).await
            }
        }
    }

    /// Writes one delivery and whatever else is already queued, in order.
    async fn on_deliveries(
        &mut self,
        first: Arc<Message>,
        queue: &mut tokio::sync::mpsc::Receiver<Arc<Message>>,
    ) -> Result<(), ()> {
        self.on_live(&first).await?;
        for _ in 1..WRITE_BATCH {
            match queue.try_recv() {
                Ok(m) => self.on_live(&m).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn on_live(&mut self, m: &Message) -> Result<(), ()> {
        if let Some(w) = self.written.get(&m.conversation).copied() {
            if m.seq >= w.from && m.seq <= w.to {
                return Ok(());
            }
            if m.seq > w.to + 1 {
                // A delivery went missing (an actor restarted): fill the gap from history.
                self.replay(m.conversation, w.to, Some(m.seq), usize::MAX)
                    .await?;
            }
        }
        self.write(&OutFrame::Message {
            message: MessageJson::from(m),
        })
        .await?;
        self.note_written(m.conversation, m.seq);
        Ok(())
    }

    /// Replays, for every conversation of the user, what comes after the client's cursor
    /// and was not written by this session already; at most `sync_batch` messages.
    async fn sync(&mut self, cursors: HashMap<ConversationId, Seq>) -> Result<(), ()> {
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
            let mut reached = cursor;
            if budget == 0 {
                more = true;
                done.insert(conv.to_string(), reached);
                continue;
            }
            let written = self.written.get(&conv).copied();
            // What the client lacks: after its cursor, less what this session wrote.
            let segments = match written {
                Some(w) if cursor < w.to => vec![(cursor, Some(w.from)), (w.to, None)],
                _ => vec![(cursor, None)],
            };
            for (after, before) in segments {
                if before.is_some_and(|b| b <= after + 1) {
                    continue;
                }
                let (last, exhausted) = self.replay(conv, after, before, budget).await?;
                budget -= last.1;
                if let Some(seq) = last.0 {
                    reached = reached.max(seq);
                }
                if !exhausted {
                    more = true;
                    break;
                }
                if let Some(w) = written {
                    reached = reached.max(w.to);
                }
            }
            done.insert(conv.to_string(), reached);
            if reached > cursor {
                let from = written.map_or(cursor + 1, |w| w.from.min(cursor + 1));
                self.written.insert(
                    conv,
                    Written {
                        from,
                        to: reached.max(written.map_or(0, |w| w.to)),
                    },
                );
            }
        }
        self.write(&OutFrame::Synced {
            cursors: done,
            more,
        })
        .await
    }

    /// Writes messages of `conv` with seq in (after, before), up to `budget`. Returns the
    /// last seq written with the count, and whether the range was exhausted.
    async fn replay(
        &mut self,
        conv: ConversationId,
        mut after: Seq,
        before: Option<Seq>,
        budget: usize,
    ) -> Result<((Option<Seq>, usize), bool), ()> {
        let mut count = 0;
        let mut last = None;
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
                    return Err(());
                }
            };
            for m in &page {
                self.write(&OutFrame::Message {
                    message: MessageJson::from(m),
                })
                .await?;
                after = m.seq;
                last = Some(m.seq);
            }
            count += page.len();
            if page.len() < limit {
                return Ok(((last, count), true));
            }
        }
        Ok(((last, count), false))
    }

    fn note_written(&mut self, conv: ConversationId, seq: Seq) {
        let entry = self
            .written
            .entry(conv)
            .or_insert(Written { from: seq, to: seq });
        if seq == entry.to + 1 {
            entry.to = seq;
        } else if seq > entry.to + 1 || seq + 1 < entry.from {
            // Not contiguous with what was written: start a new range here.
            *entry = Written { from: seq, to: seq };
        } else if seq + 1 == entry.from {
            entry.from = seq;
        }
    }

    async fn error(
        &mut self,
        code: &str,
        message: &str,
        client_id: Option<&Value>,
        retry_after_ms: Option<u64>,
    ) -> Result<(), ()> {
        self.write(&OutFrame::Error {
            code,
            message,
            client_id,
            retry_after_ms,
        })
        .await
    }

    async fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), ()> {
        self.dirty = true;
        self.sink
            .feed(WsMessage::Text(Utf8Bytes::from(frame.encode())))
            .await
            .map_err(|_| ())
    }

    async fn flush(&mut self) -> Result<(), ()> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        self.sink.flush().await.map_err(|_| ())
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
        Some(tungstenite::Error::Protocol(_)) => Ending::close(1002, "protocol error"),
        _ => Ending::gone("transport_error"),
    }
}
