//! The embedded store: one group commit (`append_messages`, one atomic batch and one
//! fsync) of 1 and of 256 messages, and one history page (`messages`, limit 50) read
//! from the middle and from the newest end of a 10,000-message conversation.
//!
//! The commits fsync a real file in a temp dir (under `$TMPDIR`), so they measure that
//! disk's fsync latency as much as the code.
//!
//! Run: `cargo bench --bench store`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::sync::Arc;

use actors::Store;
use actors::domain::{
    ClientId, ConversationId, Event, EventId, EventKind, MessageBody, MessageContent, Seq,
    Timestamp, UserId,
};
use actors::store::HistoryRange;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use parley::store::FjallStore;

fn message(conversation: ConversationId, from: UserId, seq: Seq) -> Arc<Event> {
    Arc::new(Event {
        id: EventId::generate(),
        conversation,
        seq,
        sender: from,
        client_id: Some(ClientId::parse(&format!("c-{seq}")).expect("valid client id")),
        at: Timestamp::now(),
        kind: EventKind::Message(MessageContent::text(MessageBody::from_stored(format!(
            "{seq:020} {}",
            "x".repeat(79)
        )))),
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn commits(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = FjallStore::open(&dir.path().join("db")).expect("store opens");
    let (a, b) = (UserId::generate(), UserId::generate());
    let conv = ConversationId::direct(a, b);
    let next = AtomicU64::new(1);
    let mut g = c.benchmark_group("store_append_messages");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    for n in [1u64, 256] {
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("{n}_messages_fsync"), |bench| {
            bench.to_async(&rt).iter_batched(
                || {
                    let first = next.fetch_add(n, Ordering::Relaxed);
                    (first..first + n)
                        .map(|s| message(conv, a, s))
                        .collect::<Vec<_>>()
                },
                |batch| {
                    let store = store.clone();
                    async move { store.append_events(&batch).await.expect("commits") }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn history(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = FjallStore::open(&dir.path().join("db")).expect("store opens");
    let (a, b) = (UserId::generate(), UserId::generate());
    let conv = ConversationId::direct(a, b);
    rt.block_on(async {
        for chunk in (1..=10_000u64).collect::<Vec<_>>().chunks(1000) {
            let batch: Vec<_> = chunk.iter().map(|&s| message(conv, a, s)).collect();
            store.append_events(&batch).await.expect("commits");
        }
    });
    let mut g = c.benchmark_group("store_history_page");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(50));
    let page = |after: Option<Seq>, from_newest: bool| HistoryRange {
        after,
        before: None,
        limit: 50,
        from_newest,
    };
    g.bench_function("50_of_10k_after_5000", |bench| {
        bench.to_async(&rt).iter(|| {
            let store = store.clone();
            async move {
                let m = store.events(conv, page(Some(5000), false)).await;
                assert_eq!(m.expect("reads").len(), 50);
            }
        })
    });
    g.bench_function("50_of_10k_newest", |bench| {
        bench.to_async(&rt).iter(|| {
            let store = store.clone();
            async move {
                let m = store.events(conv, page(None, true)).await;
                assert_eq!(m.expect("reads").len(), 50);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, commits, history);
criterion_main!(benches);
