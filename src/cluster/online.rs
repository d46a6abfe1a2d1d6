//! Whether a user has a session on another node. Asked of every node at once (a
//! request on a broadcast subject): only a node with a live session of the user
//! answers, so the first answer says yes and silence until [`WAIT`] says no. Used by
//! what needs the other party online, such as ringing a call; presence does not ask
//! (a contact list would cost a wait per offline contact).

use std::sync::Arc;
use std::time::Duration;

use actors::Messenger;
use actors::domain::UserId;
use bytes::Bytes;
use futures_util::StreamExt;

use super::broker::{self, Broker};

/// How long silence takes to mean "not online anywhere else".
const WAIT: Duration = Duration::from_millis(300);

/// Whether another node answers that it has a live session of `user`.
pub(crate) async fn elsewhere(broker: &Broker, user: UserId) -> bool {
    if !broker.is_connected() {
        return false;
    }
    let ask = broker
        .client()
        .request(broker::ONLINE, Bytes::from(user.to_string()));
    matches!(tokio::time::timeout(WAIT, ask).await, Ok(Ok(_)))
}

/// Answers the other nodes' questions for this node's sessions, until the
/// subscription ends.
pub(crate) async fn serve(
    broker: Arc<Broker>,
    messenger: Messenger,
) -> Result<(), async_nats::SubscribeError> {
    let mut asks = broker.client().subscribe(broker::ONLINE).await?;
    tokio::spawn(async move {
        while let Some(ask) = asks.next().await {
            let Some(reply) = ask.reply else { continue };
            let user = std::str::from_utf8(&ask.payload)
                .ok()
                .and_then(|s| s.parse::<UserId>().ok());
            if user.is_some_and(|u| messenger.has_live_session(u)) {
                let _ = broker
                    .client()
                    .publish(reply, Bytes::from_static(b"1"))
                    .await;
            }
        }
    });
    Ok(())
}
