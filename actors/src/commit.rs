//! Group commit for every conversation: one thread that owns the store's write path.
//!
//! Conversation actors hand it batches of sequenced events. While one commit (one
//! fsync) is in flight, further batches queue up in its channel; when it completes,
//! everything queued goes out in the next commit. Throughput therefore rises with load
//! instead of paying one fsync per event, and latency stays at about one fsync when idle.
//!
//! The committer is an OS thread, not a task: it exists to wait for the disk, so the
//! store may write and fsync inline on it ([`crate::store::may_block`]) instead of
//! handing each commit to the blocking pool and being woken back, which cost two thread
//! switches per commit. It then completes each batch: the outcome goes to the
//! conversation on a oneshot, and the conversation actor is woken to act on it, so acks
//! and fan-out run on each conversation's own actor, in parallel, never serially here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ractor::ActorRef;
use tokio::sync::{mpsc, oneshot};

use crate::conversation::msg::ConversationMsg;
use crate::domain::Event;
use crate::store::{Store, StoreResult};

/// The outcome of a batch's commit, as its conversation receives it: `Err` of the
/// oneshot means the batch was dropped without a commit (the committer stopped).
pub(crate) type Outcome = oneshot::Receiver<StoreResult<()>>;

/// Handle to the group-commit thread. Cheap to share.
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<Entry>,
    queued: Arc<AtomicUsize>,
}

/// What to do once a batch's commit is over: send the outcome, then wake the
/// conversation actor (when it is running; a stopping actor awaits the outcome itself).
/// Dropped without running, the sender's drop tells the conversation the batch was not
/// committed, so no sender waits forever.
pub(crate) struct Completion {
    outcome: Option<oneshot::Sender<StoreResult<()>>>,
    wake: Option<ActorRef<ConversationMsg>>,
}

impl Completion {
    fn complete(mut self, result: StoreResult<()>) {
        if let Some(outcome) = self.outcome.take() {
            let _ = outcome.send(result);
        }
        if let Some(actor) = self.wake.take() {
            // Fails only when the actor is stopping; its post_stop awaits the outcome.
            let _ = actor.cast(ConversationMsg::Committed);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        // Unrun: the outcome's sender drops with `self`, which the conversation reads
        // as "not committed".
        drop(self.outcome.take());
        if let Some(actor) = self.wake.take() {
            let _ = actor.cast(ConversationMsg::Committed);
        }
    }
}

enum Entry {
    Commit(Vec<Arc<Event>>, Completion),
    /// Answered once every commit queued before it has completed.
    Barrier(oneshot::Sender<()>),
    /// Ends the thread after every commit queued before it; answered once the thread
    /// has let go of the store.
    Stop(oneshot::Sender<()>),
}

impl Committer {
    /// Starts the thread; it runs the store's futures on the calling runtime and ends
    /// when every handle to it is dropped.
    pub(crate) fn start(store: Arc<dyn Store>, max_batch: usize, interval: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let runtime = tokio::runtime::Handle::current();
        let counter = queued.clone();
        std::thread::Builder::new()
            .name("parley-commit".into())
            .spawn(move || run(&runtime, store, rx, max_batch.max(1), interval, counter))
            .expect("the group-commit thread starts");
        Self { tx, queued }
    }

    /// Queues a batch for the next commit. `wake` is told when the outcome is ready.
    pub(crate) fn commit(
        &self,
        events: Vec<Arc<Event>>,
        wake: Option<ActorRef<ConversationMsg>>,
    ) -> Outcome {
        let (outcome, rx) = oneshot::channel();
        self.queued.fetch_add(events.len(), Ordering::Relaxed);
        // Should the task be gone, the entry is dropped here, which rejects the batch.
        let _ = self.tx.send(Entry::Commit(
            events,
            Completion {
                outcome: Some(outcome),
                wake,
            },
        ));
        rx
    }

    /// Resolves once every batch queued before this call is committed (or failed). A
    /// conversation actor that restarts waits on this before reading its last seq, so a
    /// commit sent by its previous incarnation cannot land behind its back.
    pub(crate) async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Entry::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Commits what is queued, then ends the thread; resolves once it has let go of the
    /// store. Shutdown waits on this, so that a store reopened in the same process (a
    /// restart) never meets the old one still open on this thread. Later commits are
    /// refused, as after any stop.
    pub(crate) async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Entry::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Events waiting for a commit.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

fn run(
    runtime: &tokio::runtime::Handle,
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Entry>,
    max_batch: usize,
    interval: Duration,
    queued: Arc<AtomicUsize>,
) {
    crate::store::allow_blocking();
    let mut stopped: Option<oneshot::Sender<()>> = None;
    let mut carried: Option<Entry> = None;
    let mut last_start: Option<Instant> = None;
    loop {
        let first = match carried.take() {
            Some(entry) => entry,
            None => match rx.blocking_recv() {
                Some(entry) => entry,
                None => return,
            },
        };
        // Under load (the last commit started less than `interval` ago), wait out the
        // interval so the sends arriving meanwhile share this commit's fsync. A thread
        // sleep, not a runtime timer: it is precise to tens of microseconds.
        if let Some(due) = last_start.map(|at| at + interval) {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        // Everything queued now goes into one commit, up to `max_batch` events.
        let mut events: Vec<Arc<Event>> = Vec::new();
        let mut waiters = Vec::new();
        let mut next = Some(first);
        while let Some(entry) = next.take() {
            match entry {
                Entry::Commit(batch, done) => {
                    if !events.is_empty() && events.len() + batch.len() > max_batch {
                        carried = Some(Entry::Commit(batch, done));
                        break;
                    }
                    events.extend(batch);
                    waiters.push(Entry::Commit(Vec::new(), done));
                }
                barrier @ Entry::Barrier(_) => waiters.push(barrier),
                Entry::Stop(reply) => {
                    stopped = Some(reply);
                    break;
                }
            }
            next = rx.try_recv().ok();
        }
        queued.fetch_sub(events.len(), Ordering::Relaxed);
        last_start = Some(Instant::now());
        let result = if events.is_empty() {
            Ok(())
        } else {
            runtime.block_on(commit(store.as_ref(), &events))
        };
        for waiter in waiters {
            match waiter {
                Entry::Commit(_, done) => done.complete(result.clone()),
                Entry::Barrier(reply) | Entry::Stop(reply) => {
                    let _ = reply.send(());
                }
            }
        }
        if let Some(reply) = stopped {
            // Let go of the store (and refuse what comes later) before answering.
            drop(store);
            drop(rx);
            let _ = reply.send(());
            return;
        }
    }
}

#[tracing::instrument(level = "trace", skip_all, fields(batch = events.len()))]
async fn commit(store: &dyn Store, events: &[Arc<Event>]) -> StoreResult<()> {
    let started = Instant::now();
    let result = match crate::fault::check_commit(events) {
        Ok(()) => store.append_events(events).await,
        Err(injected) => Err(injected),
    };
    let elapsed = started.elapsed();
    crate::metrics::commit(events.len(), elapsed, result.is_ok());
    tracing::trace!(
        micros = elapsed.as_micros() as u64,
        ok = result.is_ok(),
        "commit"
    );
    result
}
