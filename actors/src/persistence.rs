//! The persistence actor: group commit for every conversation.
//!
//! Conversation actors hand it batches of sequenced messages. While one commit (one
//! fsync) is in flight, further batches queue up; when it completes, everything queued
//! goes out in the next commit. Throughput therefore rises with load instead of paying
//! one fsync per message, and latency stays at about one fsync when idle.
//!
//! The flush task runs each batch's [`OnCommit`] itself, once the fsync is done: the
//! conversation's acks and deliveries go out from there, with no task or wake-up per
//! batch, and a commit's outcome reaches the conversations even while this actor is
//! being stopped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::domain::Message;
use crate::store::{Store, StoreResult};

/// The persistence actor.
pub(crate) struct PersistenceActor;

/// Its arguments.
pub(crate) struct PersistenceArgs {
    /// Where messages go.
    pub(crate) store: Arc<dyn Store>,
    /// Most messages in one commit (a larger backlog is split over several).
    pub(crate) max_batch: usize,
    /// Where it publishes how many messages wait for a commit.
    pub(crate) queued: Arc<AtomicUsize>,
}

/// What to do once a batch's commit is over: run with `Some(outcome)`, or with `None`
/// when the batch was dropped without a commit (this actor stopped). Runs exactly once,
/// on the flush task, so it must not block.
pub(crate) struct OnCommit(Option<Completion>);

type Completion = Box<dyn FnOnce(Option<StoreResult<()>>) + Send>;

impl OnCommit {
    pub(crate) fn new(f: impl FnOnce(Option<StoreResult<()>>) + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }

    fn run(mut self, outcome: StoreResult<()>) {
        if let Some(f) = self.0.take() {
            f(Some(outcome));
        }
    }
}

impl Drop for OnCommit {
    fn drop(&mut self) {
        // Dropped unrun (a cast that failed, a queue dropped with the actor): the batch
        // was not committed, and its senders must hear so rather than wait forever.
        if let Some(f) = self.0.take() {
            f(None);
        }
    }
}

/// Its messages.
pub(crate) enum PersistenceMsg {
    /// Durably append these messages, then run `done`.
    Commit {
        /// The messages, already sequenced.
        messages: Vec<Message>,
        /// Run once they are fsynced (or the commit failed).
        done: OnCommit,
    },
    /// Reply once every commit queued before this one has completed. A conversation
    /// actor that restarts waits on this before reading its last seq, so a commit sent
    /// by its previous incarnation cannot land behind its back.
    Barrier {
        /// Answered when the earlier commits are done.
        reply: RpcReplyPort<()>,
    },
    /// Internal: the flush in flight has completed.
    Flushed,
}

enum Entry {
    Commit(Vec<Message>, OnCommit),
    Barrier(RpcReplyPort<()>),
}

/// Its state.
pub(crate) struct PersistenceState {
    store: Arc<dyn Store>,
    max_batch: usize,
    queue: VecDeque<Entry>,
    /// Messages in `queue`, published to `queued_gauge` after each message.
    queued: usize,
    queued_gauge: Arc<AtomicUsize>,
    flushing: bool,
}

impl Actor for PersistenceActor {
    type Msg = PersistenceMsg;
    type State = PersistenceState;
    type Arguments = PersistenceArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: PersistenceArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(PersistenceState {
            store: args.store,
            max_batch: args.max_batch.max(1),
            queue: VecDeque::new(),
            queued: 0,
            queued_gauge: args.queued,
            flushing: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: PersistenceMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PersistenceMsg::Commit { messages, done } => {
                state.queued += messages.len();
                state.queue.push_back(Entry::Commit(messages, done));
            }
            PersistenceMsg::Barrier { reply } => state.queue.push_back(Entry::Barrier(reply)),
            PersistenceMsg::Flushed => state.flushing = false,
        }
        if !state.flushing {
            start_flush(&myself, state);
        }
        state.queued_gauge.store(state.queued, Ordering::Relaxed);
        Ok(())
    }
}

/// Takes what is queued (up to `max_batch` messages) into one commit.
fn start_flush(myself: &ActorRef<PersistenceMsg>, state: &mut PersistenceState) {
    // Barriers at the head have nothing in flight before them.
    while let Some(Entry::Barrier(_)) = state.queue.front() {
        if let Some(Entry::Barrier(reply)) = state.queue.pop_front() {
            let _ = reply.send(());
        }
    }
    if state.queue.is_empty() {
        return;
    }
    let mut messages = Vec::new();
    let mut waiters = Vec::new();
    while let Some(entry) = state.queue.front() {
        if let Entry::Commit(m, _) = entry
            && !messages.is_empty()
            && messages.len() + m.len() > state.max_batch
        {
            break;
        }
        match state.queue.pop_front() {
            Some(Entry::Commit(m, done)) => {
                messages.extend(m);
                waiters.push(Entry::Commit(Vec::new(), done));
            }
            Some(barrier) => waiters.push(barrier),
            None => break,
        }
    }
    state.queued = state.queued.saturating_sub(messages.len());
    state.flushing = true;
    let store = state.store.clone();
    let myself = myself.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let result = match crate::fault::check_commit(&messages) {
            Ok(()) => store.append_messages(&messages).await,
            Err(injected) => Err(injected),
        };
        let elapsed = started.elapsed();
        crate::metrics::commit(messages.len(), elapsed, result.is_ok());
        tracing::trace!(
            batch = messages.len(),
            micros = elapsed.as_micros() as u64,
            ok = result.is_ok(),
            "commit"
        );
        // The next commit may start while this one's waiters are answered: it cannot
        // hold a later batch of the same conversation, which waits for this batch's
        // completion to be cut. Fails only when the actor is already stopping; nothing
        // is left to flush then.
        let _ = myself.cast(PersistenceMsg::Flushed);
        for waiter in waiters {
            match waiter {
                Entry::Commit(_, done) => done.run(result.clone()),
                Entry::Barrier(reply) => {
                    let _ = reply.send(());
                }
            }
        }
    });
}
