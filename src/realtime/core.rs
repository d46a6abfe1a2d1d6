//! The session core: everything a realtime session does that does not depend on its
//! transport. It reads client commands and deliveries, hands sends to the messaging
//! service without waiting (their acks wait for an fsync), writes acks, events, signals
//! and errors, and ends on a kick, a reset, a heartbeat timeout or shutdown. Transports
//! drive it through [`InboundStream`]/[`Outbound`]: WebSocket (`ws`) and Socket.IO
//! (`socketio`). A transport may attach a reply handle to each command (Socket.IO's ack
//! callback); the core hands it back with the command's answer.
//!
//! At most [`MAX_IN_FLIGHT`] sends are awaited at once; past that the core stops reading,
//! which pushes back on the client through the transport.
//!
//! Per conversation, the core remembers which seqs it has written (a few merged ranges),
//! so an event is never written twice, a gap in live deliveries is filled from history
//! first, and a `sync` replays exactly what the client lacks.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::domain::{
    ClientId, ConversationId, Event, EventKind, MessageContent, Seq, SessionId, Signal,
};
use actors::{Kick, PresenceSwitch, SendRequest, Sent, SessionLink, Target};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use tokio::sync::mpsc;

use super::protocol::{Command, FrameError, OutFrame, close};
use super::written::Written;
use crate::service::{AuthUser, ServiceError};
use crate::state::AppState;
use crate::wire::{MessageJson, UserJson};

/// Sends of one session awaiting their commit at once.
pub(crate) const MAX_IN_FLIGHT: usize = 256;
/// Deliveries written before a flush when many are queued.
const WRITE_BATCH: usize = 64;
/// Events read from history per page when filling a gap or replaying.
const PAGE: usize = 500;

type SendFuture<R> =
    Pin<Box<dyn Future<Output = (Option<Value>, R, Result<Sent, ServiceError>)> + Send>>;

/// Why a session ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    /// The close code the client is told, if it can still be told.
    pub(crate) code: Option<u16>,
    /// Why, for the client and the log.
    pub(crate) reason: &'static str,
    /// Whether the server still owes a close (not when the client closed first: the
    /// transport has answered it already).
    pub(crate) send_close: bool,
}

impl Ending {
    /// The server closes with this code.
    pub(crate) fn close(code: u16, reason: &'static str) -> Self {
        Self {
            code: Some(code),
            reason,
            send_close: true,
        }
    }
    /// The client vanished: nobody is left to tell.
    pub(crate) fn gone(reason: &'static str) -> Self {
        Self {
            code: None,
            reason,
            send_close: false,
        }
    }
    /// The client closed; the transport answered it.
    pub(crate) fn client_closed() -> Self {
        Self {
            code: Some(close::NORMAL),
            reason: "client_close",
            send_close: false,
        }
    }
}

/// Why handling an event stopped the session.
pub(crate) enum Stop {
    /// The transport failed: nobody is left to tell.
    Transport,
    /// History could not be read mid-replay: the session cannot promise order any more.
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

/// What a transport read from its client.
pub(crate) enum Inbound<R> {
    /// A client command, or why a frame could not be one, with the transport's handle
    /// for its answer.
    Command(Result<Command, FrameError>, R),
    /// A sign of life with nothing to do (a pong).
    Alive,
    /// The client is gone, closed, or broke the transport's rules.
    End(Ending),
}

/// A transport's reading half.
pub(crate) trait InboundStream: Send {
    /// What the transport attaches to a command to answer it by (`()` when answers are
    /// ordinary frames).
    type Reply: Send + 'static;
    /// The next thing the client did. Must be cancel-safe: the core races it against
    /// deliveries, acks and timers.
    fn next(&mut self) -> impl Future<Output = Inbound<Self::Reply>> + Send;
}

/// A transport's writing half.
pub(crate) trait Outbound: Send {
    /// The reply handle its reading half attaches to commands.
    type Reply: Send + 'static;
    /// Queues a frame.
    fn write(&mut self, frame: &OutFrame<'_>) -> impl Future<Output = Result<(), Stop>> + Send;
    /// Queues the answer to one command (an `ack`, `error`, `pong` or `synced`), given
    /// the handle the command came with. Called exactly once per command the session
    /// finishes handling.
    fn answer(
        &mut self,
        reply: Self::Reply,
        frame: &OutFrame<'_>,
    ) -> impl Future<Output = Result<(), Stop>> + Send;
    /// Pushes out what is queued (cheap when nothing is).
    fn flush(&mut self) -> impl Future<Output = Result<(), Stop>> + Send;
    /// A transport-level ping, for the heartbeat.
    fn ping(&mut self) -> impl Future<Output = Result<(), Stop>> + Send;
}

/// Something the session must act on.
enum Work<R> {
    Start,
    Inbound(Inbound<R>),
    Sent(Option<Value>, R, Result<Sent, ServiceError>),
    Event(Option<Arc<Event>>),
    Signal(Arc<Signal>),
    Tick,
}

struct Core<'a, O> {
    state: &'a AppState,
    me: &'a AuthUser,
    id: SessionId,
    out: &'a mut O,
    written: HashMap<ConversationId, Written>,
    /// Whether this session gets presence signals (the `presence` frame sets it).
    presence: PresenceSwitch,
}

/// Runs a session until it ends, and says why. `heartbeat` is the interval of
/// transport pings, for transports without their own.
pub(crate) async fn serve<I: InboundStream, O: Outbound<Reply = I::Reply>>(
    state: &AppState,
    me: &AuthUser,
    id: SessionId,
    link: SessionLink,
    inbound: &mut I,
    out: &mut O,
    heartbeat: Option<Duration>,
) -> Ending {
    tracing::info!(target: "parley::session", user_id = %me.user.id, session = %id, "session_opened");
    crate::metrics::session_opened();
    // Off the session's path: telling everyone who may see it reads the user's
    // conversations.
    let presence_state = state.clone();
    let user_id = me.user.id;
    tokio::spawn(async move {
        if let Err(e) = presence_state.presence().connected(user_id).await {
            tracing::warn!(error = %e, cause = e.cause(), "presence not told");
        }
    });
    let mut core = Core {
        state,
        me,
        id,
        out,
        written: HashMap::new(),
        presence: link.presence.clone(),
    };
    core.run(inbound, link, heartbeat).await
}

/// Detaches an ended session and records why it ended.
pub(crate) fn finish(state: &AppState, me: &AuthUser, id: SessionId, ending: Ending) {
    let user_id = me.user.id;
    state.messaging().detach(user_id, id);
    let presence_state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = presence_state.presence().disconnected(user_id).await {
            tracing::warn!(error = %e, cause = e.cause(), "presence not told");
        }
    });
    tracing::info!(
        target: "parley::session",
        user_id = %user_id, session = %id, close_code = ending.code, reason = ending.reason, "session_closed"
    );
    crate::metrics::session_closed(ending.code, ending.reason);
}

impl<O: Outbound> Core<'_, O> {
    async fn run<I: InboundStream<Reply = O::Reply>>(
        &mut self,
        inbound: &mut I,
        link: SessionLink,
        heartbeat: Option<Duration>,
    ) -> Ending {
        let SessionLink {
            mut events,
            mut signals,
            mut kicked,
            ..
        } = link;
        let shutdown = self.state.shutdown_signal().clone();
        // Checked every half interval against 1.5 intervals of silence, so a dead peer is
        // found within two intervals while a live one (pinged every interval) never is.
        let heartbeat = heartbeat.unwrap_or(Duration::from_secs(365 * 24 * 3600));
        let half = heartbeat / 2;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
        let mut ticks: u64 = 0;
        let mut last_seen = Instant::now();
        let mut in_flight: FuturesUnordered<SendFuture<O::Reply>> = FuturesUnordered::new();
        let mut work = Work::Start;
        let grace = self.state.config().shutdown_timeout / 2;
        // The session ends when its token does (revocation kicks it through the core).
        let expiry = tokio::time::sleep(until(self.me.claims.expires_at()));
        tokio::pin!(expiry);
        loop {
            // Handle the last event; every write in it races the kick and shutdown, so a
            // client that stops reading cannot pin the session in a blocked write.
            let handled = {
                // Boxed: the handling of one event (a send, a batch of events) holds far
                // larger futures than waiting does, and inline they would set the size of
                // every session, idle or not, to theirs (about 4 KiB). A box lives only
                // while an event is handled.
                let mut handling = Box::pin(async {
                    match work {
                        Work::Start => {
                            let ready = OutFrame::Ready {
                                user: UserJson::from(&self.me.user),
                                session_id: self.id.to_string(),
                            };
                            self.out.write(&ready).await?;
                        }
                        Work::Inbound(Inbound::End(ending)) => return Ok(Some(ending)),
                        Work::Inbound(Inbound::Alive) => {}
                        Work::Inbound(Inbound::Command(command, reply)) => {
                            self.on_command(command, reply, &mut in_flight).await?
                        }
                        Work::Sent(client_id, reply, result) => {
                            self.on_sent(client_id.as_ref(), reply, result).await?
                        }
                        Work::Event(None) => {
                            return Ok(Some(Ending::close(
                                close::RESTART,
                                "session reset: reconnect and sync",
                            )));
                        }
                        Work::Event(Some(event)) => self.on_events(event, &mut events).await?,
                        Work::Signal(signal) => {
                            self.out.write(&OutFrame::of_signal(&signal)).await?;
                        }
                        Work::Tick => {
                            if last_seen.elapsed() > heartbeat + half {
                                return Ok(Some(Ending::close(
                                    close::HEARTBEAT_TIMEOUT,
                                    "heartbeat timeout",
                                )));
                            }
                            ticks += 1;
                            if ticks.is_multiple_of(2) {
                                self.out.ping().await?;
                            }
                        }
                    }
                    self.out.flush().await.map(|()| None)
                });
                tokio::select! {
                    biased;
                    kick = &mut kicked => return kick_ending(kick),
                    handled = &mut handling => handled,
                    // Shutdown lets the event in hand finish (it may be an ack of a committed
                    // send), but not for longer than the grace: the client may not be reading.
                    () = shutdown.cancelled() => match tokio::time::timeout(grace, &mut handling).await {
                        Ok(handled) => handled,
                        Err(_) => break,
                    },
                }
            };
            match handled {
                Err(stop) => return stop.into(),
                Ok(Some(ending)) => return ending,
                Ok(None) => {}
            }
            // Wait for the next event.
            work = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                kick = &mut kicked => return kick_ending(kick),
                () = &mut expiry => return Ending::close(close::TOKEN_EXPIRED, "token expired: log in again"),
                Some((client_id, reply, result)) = in_flight.next(), if !in_flight.is_empty() => Work::Sent(client_id, reply, result),
                event = events.recv() => Work::Event(event),
                Some(signal) = signals.recv() => Work::Signal(signal),
                inbound = inbound.next(), if in_flight.len() < MAX_IN_FLIGHT => {
                    last_seen = Instant::now();
                    Work::Inbound(inbound)
                }
                _ = ticker.tick() => Work::Tick,
            };
        }
        // Shutting down. Sends already handed to the actors are committed before the
        // store is flushed; answer them now so clients need not retry after a restart.
        // Boxed for the reason `handling` is.
        let _ = tokio::time::timeout(
            grace,
            Box::pin(async {
                while let Some((client_id, reply, result)) = in_flight.next().await {
                    if self
                        .on_sent(client_id.as_ref(), reply, result)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = self.out.flush().await;
            }),
        )
        .await;
        Ending::close(close::GOING_AWAY, "server shutting down")
    }

    async fn on_command(
        &mut self,
        command: Result<Command, FrameError>,
        reply: O::Reply,
        in_flight: &mut FuturesUnordered<SendFuture<O::Reply>>,
    ) -> Result<(), Stop> {
        match command {
            Err(e) => {
                self.error(reply, e.code, &e.message, e.client_id.as_ref(), None)
                    .await
            }
            Ok(Command::Ping) => self.out.answer(reply, &OutFrame::Pong).await,
            Ok(Command::WatchPresence { on }) => {
                self.presence.set(on);
                self.out.answer(reply, &OutFrame::Ok).await
            }
            Ok(Command::Typing {
                conversation,
                active,
            }) => {
                let typed = self
                    .state
                    .typing()
                    .notify(self.me.user.id, self.id, conversation, active)
                    .await;
                match typed {
                    Ok(()) => self.out.answer(reply, &OutFrame::Ok).await,
                    Err(e) => self.service_error(reply, &e, None).await,
                }
            }
            Ok(Command::Receipt {
                conversation,
                mark,
                seq,
            }) => {
                let marked = self
                    .state
                    .receipts()
                    .mark(self.me.user.id, conversation, mark, seq, Some(self.id))
                    .await;
                match marked {
                    Ok(receipt) => {
                        let frame = OutFrame::Receipt {
                            conversation_id: conversation.to_string(),
                            delivered: receipt.delivered,
                            read: receipt.read,
                        };
                        self.out.answer(reply, &frame).await
                    }
                    Err(e) => self.service_error(reply, &e, None).await,
                }
            }
            // Boxed, like the gap fill below: the session future is held by every idle
            // connection, and inlining these rarely taken paths made it ~3 KiB.
            Ok(Command::Sync { cursors }) => {
                if let Err(e) = self.state.messaging().check_sync(self.me.user.id) {
                    return self.service_error(reply, &e, None).await;
                }
                Box::pin(self.sync(cursors, reply)).await
            }
            Ok(Command::Send {
                target,
                body,
                client_id,
            }) => {
                let kind = EventKind::Message(MessageContent::text(body));
                self.submit(target, kind, client_id, reply, in_flight).await
            }
            // An edit or a delete is an event of the stream like a message: it is
            // sequenced, acked and delivered the same way.
            Ok(Command::Change {
                conversation,
                seq,
                body,
                client_id,
            }) => {
                let kind = match body {
                    Some(content) => EventKind::Edit {
                        target: seq,
                        content,
                    },
                    None => EventKind::Delete { target: seq },
                };
                let target = Target::Conversation(conversation);
                self.submit(target, kind, client_id, reply, in_flight).await
            }
        }
    }

    /// Hands an event to the messaging service without waiting: its answer comes back
    /// through `in_flight`.
    async fn submit(
        &mut self,
        target: Target,
        kind: EventKind,
        client_id: Option<ClientId>,
        reply: O::Reply,
        in_flight: &mut FuturesUnordered<SendFuture<O::Reply>>,
    ) -> Result<(), Stop> {
        let echo = client_id
            .as_ref()
            .map(|c| Value::String(c.as_str().to_owned()));
        let messaging = self.state.messaging();
        if let Err(e) = messaging.check_rate(self.me.user.id) {
            return self.service_error(reply, &e, echo.as_ref()).await;
        }
        let request = SendRequest {
            from: self.me.user.id,
            target,
            kind,
            client_id,
            origin: Some(self.id),
        };
        let state = self.state.clone();
        in_flight.push(Box::pin(async move {
            (echo, reply, state.messaging().send(request).await)
        }));
        Ok(())
    }

    async fn on_sent(
        &mut self,
        client_id: Option<&Value>,
        reply: O::Reply,
        result: Result<Sent, ServiceError>,
    ) -> Result<(), Stop> {
        match result {
            Ok(sent) => {
                let e = &sent.event;
                let frame = OutFrame::Ack {
                    client_id: e.client_id.as_ref().map(|c| c.as_str()),
                    duplicate: sent.duplicate,
                    message: MessageJson::from(e.as_ref()),
                };
                self.out.answer(reply, &frame).await?;
                // The sender's own session has the event now, through its ack.
                self.written
                    .entry(e.conversation)
                    .or_default()
                    .insert(e.seq, e.seq);
                Ok(())
            }
            Err(e) => self.service_error(reply, &e, client_id).await,
        }
    }

    /// Writes one delivery and whatever else is already queued, in order.
    async fn on_events(
        &mut self,
        first: Arc<Event>,
        queue: &mut mpsc::Receiver<Arc<Event>>,
    ) -> Result<(), Stop> {
        self.on_live(&first).await?;
        for _ in 1..WRITE_BATCH {
            match queue.try_recv() {
                Ok(e) => self.on_live(&e).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn on_live(&mut self, e: &Event) -> Result<(), Stop> {
        let written = self.written.entry(e.conversation).or_default();
        if written.contains(e.seq) {
            return Ok(());
        }
        if let Some(top) = written.top()
            && e.seq > top + 1
        {
            // Deliveries arrive in seq order, so one went missing (an actor restarted):
            // fill the gap from history first.
            Box::pin(self.replay(e.conversation, top, Some(e.seq), usize::MAX)).await?;
        }
        self.out
            .write(&OutFrame::Message {
                message: MessageJson::from(e),
            })
            .await?;
        crate::metrics::delivered(e.at);
        self.written
            .entry(e.conversation)
            .or_default()
            .insert(e.seq, e.seq);
        Ok(())
    }

    /// Replays, for every conversation of the user, what comes after the client's cursor
    /// and was not written by this session already; at most `sync_batch` events.
    async fn sync(
        &mut self,
        cursors: HashMap<ConversationId, Seq>,
        reply: O::Reply,
    ) -> Result<(), Stop> {
        let mut budget = self.state.config().sync_batch;
        let mut more = false;
        let mut done = BTreeMap::new();
        let conversations = match self
            .state
            .messaging()
            .conversations_of(self.me.user.id)
            .await
        {
            Ok(c) => c,
            Err(e) => return self.service_error(reply, &e, None).await,
        };
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
        self.out
            .answer(
                reply,
                &OutFrame::Synced {
                    cursors: done,
                    more,
                },
            )
            .await
    }

    /// Writes events of `conv` with seq in (after, before), up to `budget`, recording
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
            let page = match self
                .state
                .messaging()
                .replay_page(self.me.user.id, conv, after, before, limit)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, cause = e.cause(), "replay failed");
                    return Err(Stop::Internal);
                }
            };
            for e in &page {
                self.out
                    .write(&OutFrame::Message {
                        message: MessageJson::from(e),
                    })
                    .await?;
                crate::metrics::replayed();
                self.written.entry(conv).or_default().insert(e.seq, e.seq);
                after = e.seq;
            }
            count += page.len();
            if page.len() < limit {
                return Ok((count, true));
            }
        }
        Ok((count, false))
    }

    /// Answers a failed command with its service error's code and sentence.
    async fn service_error(
        &mut self,
        reply: O::Reply,
        e: &ServiceError,
        client_id: Option<&Value>,
    ) -> Result<(), Stop> {
        if let Some(cause) = e.cause() {
            tracing::error!(error = %cause, code = e.code(), "command failed");
        }
        let retry_after_ms = e.retry_after().map(|d| d.as_millis().max(1) as u64);
        self.error(reply, e.code(), &e.to_string(), client_id, retry_after_ms)
            .await
    }

    async fn error(
        &mut self,
        reply: O::Reply,
        code: &str,
        message: &str,
        client_id: Option<&Value>,
        retry_after_ms: Option<u64>,
    ) -> Result<(), Stop> {
        let frame = OutFrame::Error {
            code,
            message,
            client_id,
            retry_after_ms,
        };
        self.out.answer(reply, &frame).await
    }
}

fn kick_ending(kick: Result<Kick, tokio::sync::oneshot::error::RecvError>) -> Ending {
    match kick {
        Ok(Kick::SlowConsumer) => {
            Ending::close(close::SLOW_CONSUMER, "slow consumer: reconnect and sync")
        }
        Ok(Kick::Revoked) => Ending::close(close::TOKEN_REVOKED, "token revoked: log in again"),
        // The user's actor went away (it failed and is being restarted).
        Err(_) => Ending::close(close::RESTART, "session reset: reconnect and sync"),
    }
}

/// How long from now until `at` (zero when it has passed).
fn until(at: actors::domain::Timestamp) -> Duration {
    at.as_system_time()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
}
