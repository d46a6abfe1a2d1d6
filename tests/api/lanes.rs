//! A session's two lanes, driven through the messaging core directly: signals are shed
//! when a session falls behind; durable events never are (the session is kicked and
//! catches up by sync instead).

use std::sync::Arc;
use std::time::Duration;

use actors::domain::{
    ClientId, DisplayName, Email, EventKind, MessageBody, MessageContent, SessionId, Signal,
    SignalKind, Timestamp, User, UserId, UserRecord,
};
use actors::{Kick, Messenger, MessengerConfig, SendRequest, Store, Target};
use parley::store::FjallStore;

async fn user(store: &dyn Store, name: &str) -> UserId {
    let id = UserId::generate();
    let record = UserRecord {
        user: User {
            id,
            name: DisplayName::parse(name).unwrap(),
            email: Email::parse(&format!("{name}.{id}@example.com")).unwrap(),
        },
        password_hash: "unused".into(),
        created_at: Timestamp::now(),
    };
    store.insert_user(&record).await.unwrap();
    id
}

fn text(from: UserId, to: UserId, n: usize) -> SendRequest {
    SendRequest {
        from,
        target: Target::User(to),
        kind: EventKind::Message(MessageContent::text(
            MessageBody::parse(&format!("message {n}"), 100).unwrap(),
        )),
        client_id: Some(ClientId::parse(&format!("c{n}")).unwrap()),
        origin: None,
    }
}

fn shed_count() -> f64 {
    // The recorder is process-wide: install it, then read the counter's current value.
    parley::metrics::handle()
        .expect("no other recorder in this process")
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("parley_signals_shed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A messaging core on a fresh store, with Ada, and Bob attached as one session.
struct Core {
    _dir: tempfile::TempDir,
    messenger: Messenger,
    ada: UserId,
    bob: UserId,
    link: actors::SessionLink,
}

async fn core(session_queue: usize, signal_queue: usize) -> Core {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FjallStore::open(&dir.path().join("store")).unwrap());
    let config = MessengerConfig {
        session_queue,
        signal_queue,
        ..MessengerConfig::default()
    };
    let messenger = Messenger::start(store.clone(), config).await.unwrap();
    let (ada, bob) = (
        user(store.as_ref(), "ada").await,
        user(store.as_ref(), "bob").await,
    );
    let link = messenger
        .attach(bob, SessionId::next(), "token-1")
        .await
        .unwrap();
    Core {
        _dir: dir,
        messenger,
        ada,
        bob,
        link,
    }
}

#[tokio::test]
async fn a_session_that_falls_behind_loses_signals_but_still_gets_every_event() {
    let Core {
        _dir,
        messenger,
        ada,
        bob,
        mut link,
    } = core(64, 4).await;
    let before = shed_count();

    // Ten typing signals into a lane of four that nobody reads: six are shed.
    for _ in 0..10 {
        let typing = Signal {
            conversation: None,
            from: ada,
            kind: SignalKind::Typing { active: true },
        };
        messenger.signal(&[bob], typing, None);
    }
    // Events meanwhile take their own lane, untouched by the full one.
    for n in 1..=5 {
        messenger.send(text(ada, bob, n)).await.unwrap();
    }

    let mut signals = 0;
    while link.signals.try_recv().is_ok() {
        signals += 1;
    }
    assert_eq!(signals, 4, "the lane keeps what fits and sheds the rest");
    let mut seqs = Vec::new();
    while let Ok(event) = link.events.try_recv() {
        seqs.push(event.seq);
    }
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "every durable event arrives, in order"
    );
    assert!(shed_count() - before >= 6.0, "shed signals are counted");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut link.kicked)
            .await
            .is_err(),
        "shedding signals is no reason to drop the session"
    );
    messenger.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_durable_lane_kicks_the_session_rather_than_drop_an_event() {
    let Core {
        _dir,
        messenger,
        ada,
        bob,
        mut link,
    } = core(4, 4).await;

    for n in 1..=6 {
        messenger.send(text(ada, bob, n)).await.unwrap();
    }

    let kick = tokio::time::timeout(Duration::from_secs(5), &mut link.kicked)
        .await
        .expect("the session is kicked")
        .expect("with a reason");
    assert_eq!(kick, Kick::SlowConsumer);
    // What was queued is a gapless prefix: the rest is found by sync, never skipped.
    let mut seqs = Vec::new();
    while let Ok(event) = link.events.try_recv() {
        seqs.push(event.seq);
    }
    assert_eq!(seqs, [1, 2, 3, 4]);
    messenger.shutdown().await.unwrap();
}
