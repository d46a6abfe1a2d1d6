//! The lease gate of the conversation actor, driven through the messaging core with a
//! placement whose lease the test takes away: a node that no longer holds a
//! conversation's lease (its renewals fail: cut from the store) stops acking, and a
//! lease taken again starts from what the store holds, without a gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use actors::domain::{
    ClientId, ConversationId, DisplayName, Email, EventKind, MessageBody, MessageContent,
    Timestamp, User, UserId, UserRecord,
};
use actors::placement::{LeaseToken, Place, Placement};
use actors::{Messenger, MessengerConfig, SendError, SendRequest, Sent, Store, Target};
use parley::store::FjallStore;

/// A lease the test can withdraw and take again.
#[derive(Default)]
struct Lease {
    lost: AtomicBool,
    token: AtomicU64,
}

#[async_trait::async_trait]
impl Placement for Lease {
    // Says "here" even without the lease: the lease lapses between the check at the
    // door and the batch, which only the actor's own gate can catch.
    async fn place(&self, _: ConversationId) -> Place {
        Place::Here(self.token.load(Ordering::SeqCst))
    }
    fn token(&self, _: ConversationId) -> Option<LeaseToken> {
        (!self.lost.load(Ordering::SeqCst)).then(|| self.token.load(Ordering::SeqCst))
    }
    fn holds(&self, c: ConversationId, token: LeaseToken) -> bool {
        self.token(c) == Some(token)
    }
    async fn forward(&self, _: &str, _: SendRequest) -> Result<Sent, SendError> {
        Err(SendError::Unavailable)
    }
    fn revoked(&self, _: UserId, _: Option<&str>) {}
    async fn online_elsewhere(&self, _: &[UserId]) -> Vec<UserId> {
        Vec::new()
    }
}

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

#[tokio::test]
async fn a_node_without_the_lease_acks_nothing_and_a_new_lease_continues_the_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FjallStore::open(&dir.path().join("store")).unwrap());
    let (ada, bob) = (
        user(store.as_ref(), "ada").await,
        user(store.as_ref(), "bob").await,
    );
    let lease = Arc::new(Lease::default());
    let messenger = Messenger::start_placed(
        store.clone(),
        MessengerConfig::default(),
        lease.clone(),
        |local| local,
    )
    .await
    .unwrap();

    let first = messenger.send(text(ada, bob, 1)).await.unwrap();
    assert_eq!(first.event.seq, 1);

    // The lease is gone (renewals failed): the live actor refuses and stops.
    lease.lost.store(true, Ordering::SeqCst);
    let refused = messenger.send(text(ada, bob, 2)).await;
    assert!(
        matches!(refused, Err(SendError::Unavailable)),
        "{refused:?}"
    );

    // Taken again, under a new token: a new actor reads the end of the stream.
    lease.token.fetch_add(1, Ordering::SeqCst);
    lease.lost.store(false, Ordering::SeqCst);
    let mut next = None;
    for _ in 0..50 {
        match messenger.send(text(ada, bob, 3)).await {
            Ok(sent) => {
                next = Some(sent);
                break;
            }
            // The old actor may still be stopping.
            Err(SendError::Unavailable) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    let next = next.expect("acked under the new lease");
    assert_eq!(
        next.event.seq, 2,
        "no gap, nothing stored for the refused send"
    );
    let conversation = ConversationId::direct(ada, bob);
    let last = store.last_event(conversation).await.unwrap().unwrap();
    assert_eq!(last.seq, 2);
    messenger.shutdown().await.unwrap();
}
