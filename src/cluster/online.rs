//! Which users have a session on another node. Asked of every node at once: the
//! question goes out on a broadcast subject with a reply inbox, and each node that has
//! a live session of some of the users answers with those; a node with none stays
//! silent. So answers stop at [`WAIT`], or earlier once every user asked about was
//! found. Used where the other party must be online (ringing a call) and for presence
//! (whether someone is online, and whether a user's last session here was their last).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actors::Messenger;
use actors::domain::UserId;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::broker::{self, Broker};

/// How long silence takes to mean "not online on any other node".
pub(crate) const WAIT: Duration = Duration::from_millis(300);

/// Of `users`, those another node has a live session of (as far as it answers in time).
pub(crate) async fn elsewhere(broker: &Broker, users: &[UserId]) -> Vec<UserId> {
    if users.is_empty() || !broker.is_connected() {
        return Vec::new();
    }
    let asked: BTreeSet<UserId> = users.iter().copied().collect();
    let Ok(question) = serde_json::to_vec(&asked) else {
        return Vec::new();
    };
    let client = broker.client();
    let inbox = client.new_inbox();
    let Ok(mut answers) = client.subscribe(inbox.clone()).await else {
        return Vec::new();
    };
    if client
        .publish_with_reply(broker::ONLINE, inbox, Bytes::from(question))
        .await
        .is_err()
    {
        return Vec::new();
    }
    let deadline = Instant::now() + WAIT;
    let mut found = BTreeSet::new();
    while found.len() < asked.len() {
        match tokio::time::timeout_at(deadline, answers.next()).await {
            Ok(Some(answer)) => {
                if let Ok(some) = serde_json::from_slice::<Vec<UserId>>(&answer.payload) {
                    found.extend(some.into_iter().filter(|u| asked.contains(u)));
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    found.into_iter().collect()
}

/// Answers the other nodes' questions for this node's sessions, until the
/// subscription ends.
pub(crate) async fn serve(
    broker: Arc<Broker>,
    messenger: Messenger,
) -> Result<(), async_nats::SubscribeError> {
    let mut questions = broker.client().subscribe(broker::ONLINE).await?;
    tokio::spawn(async move {
        while let Some(question) = questions.next().await {
            let Some(reply) = question.reply else {
                continue;
            };
            let Ok(users) = serde_json::from_slice::<Vec<UserId>>(&question.payload) else {
                continue;
            };
            let here: Vec<UserId> = users
                .into_iter()
                .filter(|u| messenger.has_live_session(*u))
                .collect();
            if here.is_empty() {
                continue;
            }
            if let Ok(answer) = serde_json::to_vec(&here) {
                let _ = broker.client().publish(reply, Bytes::from(answer)).await;
            }
        }
    });
    Ok(())
}
