//! One actor routing hop: `Messenger::send` from call to reply, against a real
//! `FjallStore` in a temp dir. What one send includes: the live-conversation lookup in
//! the directory, the call into the conversation actor, sequencing, the cast to the
//! persistence actor, one group commit (`append_messages`: one batch, one fsync), the
//! reply, and the `Deliver` cast to the recipient's user actor (which has one attached
//! session, whose queue a task drains). It excludes the WebSocket and JSON layers.
//!
//! `sequential` pays one fsync per send; `concurrent_64` sends 64 at once (from 64
//! pairs), so they share group commits: that is the per-message cost under load.
//!
//! Run: `cargo bench --bench routing`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actors::domain::{
    ClientId, DisplayName, Email, EventKind, MessageBody, MessageContent, SessionId, Timestamp,
    User, UserId, UserRecord,
};
use actors::{Messenger, MessengerConfig, SendRequest, Store, Target};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use parley::store::FjallStore;

async fn user(store: &FjallStore, n: usize) -> UserId {
    let record = UserRecord {
        user: User {
            id: UserId::generate(),
            name: DisplayName::parse(&format!("bench {n}")).expect("valid name"),
            email: Email::parse(&format!("bench-{n}@bench.parley.test")).expect("valid email"),
        },
        password_hash: "unused".to_owned(),
        created_at: Timestamp::now(),
    };
    store.insert_user(&record).await.expect("user inserted");
    record.user.id
}

fn request(from: UserId, to: UserId, n: u64) -> SendRequest {
    SendRequest {
        from,
        target: Target::User(to),
        kind: EventKind::Message(MessageContent::text(
            MessageBody::parse(&format!("{n:020} {}", "x".repeat(79)), 4096).expect("body"),
        )),
        client_id: Some(ClientId::parse(&format!("c-{n}")).expect("client id")),
        origin: Some(SessionId::next()),
    }
}

fn routing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let (messenger, pairs) = rt.block_on(async {
        let store = FjallStore::open(&dir.path().join("db")).expect("store opens");
        let mut pairs = Vec::new();
        for i in 0..64 {
            pairs.push((user(&store, 2 * i).await, user(&store, 2 * i + 1).await));
        }
        let store: Arc<dyn Store> = Arc::new(store);
        let config = MessengerConfig {
            session_queue: 1 << 16,
            ..MessengerConfig::default()
        };
        let messenger = Messenger::start(store, config).await.expect("actors start");
        // Every recipient has a live session whose queue is drained, as in a server.
        for &(_, to) in &pairs {
            let mut link = messenger
                .attach(to, SessionId::next(), "bench")
                .await
                .expect("attached");
            tokio::spawn(async move { while link.events.recv().await.is_some() {} });
        }
        // Start every conversation actor before measuring.
        for (i, &(from, to)) in pairs.iter().enumerate() {
            messenger
                .send(request(from, to, i as u64))
                .await
                .expect("sent");
        }
        (messenger, pairs)
    });
    let counter = AtomicU64::new(1_000);
    let mut g = c.benchmark_group("messenger_send");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    g.throughput(Throughput::Elements(1));
    g.bench_function("sequential", |b| {
        b.to_async(&rt).iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let (from, to) = pairs[0];
            let messenger = messenger.clone();
            async move { messenger.send(request(from, to, n)).await.expect("sent") }
        })
    });
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("concurrent_64", |b| {
        b.to_async(&rt).iter(|| {
            let sends: Vec<_> = pairs
                .iter()
                .map(|&(from, to)| {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let messenger = messenger.clone();
                    async move { messenger.send(request(from, to, n)).await.expect("sent") }
                })
                .collect();
            join_all(sends)
        })
    });
    g.finish();
    rt.block_on(async { messenger.shutdown().await.expect("clean shutdown") });
}

criterion_group!(benches, routing);
criterion_main!(benches);
