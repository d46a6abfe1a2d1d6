//! Sends reaching a node that does not sequence their conversation travel to the one
//! that does, over NATS request/reply, and its answer (the ack, or why not) travels
//! back. The owner sequences a forwarded send or refuses it; it never forwards again.

use std::time::Duration;

use actors::domain::ConversationId;
use actors::{Messenger, SendError, SendRequest, Sent, Target};
use async_nats::client::RequestErrorKind;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::broker::{self, Broker};
use super::codec::{Answer, Forward};

/// Counter: sends this node forwarded to another, by `outcome`.
pub(crate) const FORWARDED: &str = "parley_cluster_forwarded_sends_total";
/// Counter: sends other nodes forwarded to this one.
pub(crate) const FORWARDS_SERVED: &str = "parley_cluster_forwards_served_total";

/// The conversation a request goes to.
pub(crate) fn conversation_of(request: &SendRequest) -> ConversationId {
    match request.target {
        Target::User(to) => ConversationId::direct(request.from, to),
        Target::Conversation(id) => id,
    }
}

/// Why a forward did not get an answer from the owner.
pub(crate) enum Unanswered {
    /// Nobody answers for that node (it is gone) or NATS is down: ask again where the
    /// conversation lives.
    Gone,
    /// The owner took too long: the send may or may not be committed.
    Timeout,
}

/// Sends `request` to `node` and waits (at most `wait`) for its answer.
pub(crate) async fn forward(
    broker: &Broker,
    node: &str,
    request: &SendRequest,
    wait: Duration,
) -> Result<Result<Sent, SendError>, Unanswered> {
    let conversation = conversation_of(request);
    if !broker.is_connected() {
        metrics::counter!(FORWARDED, "outcome" => "broker_down").increment(1);
        return Err(Unanswered::Gone);
    }
    let payload = match Forward::encode(conversation, request) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode a forwarded send");
            return Ok(Err(SendError::Failed));
        }
    };
    let call = broker
        .client()
        .request(broker::sends_of(node), payload.into());
    match tokio::time::timeout(wait, call).await {
        Err(_) => {
            metrics::counter!(FORWARDED, "outcome" => "timeout").increment(1);
            Err(Unanswered::Timeout)
        }
        Ok(Err(e)) if e.kind() == RequestErrorKind::TimedOut => {
            metrics::counter!(FORWARDED, "outcome" => "timeout").increment(1);
            Err(Unanswered::Timeout)
        }
        Ok(Err(_)) => {
            metrics::counter!(FORWARDED, "outcome" => "gone").increment(1);
            Err(Unanswered::Gone)
        }
        Ok(Ok(message)) => match Answer::decode(conversation, &message.payload) {
            Ok(answer) => {
                metrics::counter!(FORWARDED, "outcome" => "answered").increment(1);
                Ok(answer)
            }
            Err(e) => {
                tracing::warn!(error = %e, %node, "unreadable answer to a forwarded send");
                Ok(Err(SendError::Failed))
            }
        },
    }
}

/// Answers the sends other nodes forward to `node`, concurrently, until the
/// subscription ends. They are started in the order they arrive (a `FuturesUnordered`
/// first polls futures in the order they were pushed), so one session's sends reach the
/// conversation actor's mailbox in the order that session sent them, as on one node.
pub(crate) async fn serve(
    broker: std::sync::Arc<Broker>,
    node: String,
    messenger: Messenger,
) -> Result<(), async_nats::SubscribeError> {
    let mut requests = broker.client().subscribe(broker::sends_of(&node)).await?;
    tokio::spawn(async move {
        let mut answering = FuturesUnordered::new();
        loop {
            tokio::select! {
                biased;
                Some(()) = answering.next(), if !answering.is_empty() => {}
                message = requests.next() => {
                    let Some(message) = message else { break };
                    answering.push(answer(broker.clone(), messenger.clone(), message));
                }
            }
        }
    });
    Ok(())
}

/// Sequences one forwarded send here and publishes the answer to its reply subject.
async fn answer(
    broker: std::sync::Arc<Broker>,
    messenger: Messenger,
    message: async_nats::Message,
) {
    let Some(reply) = message.reply else {
        return;
    };
    metrics::counter!(FORWARDS_SERVED).increment(1);
    let answer = match Forward::decode(&message.payload) {
        Ok(request) => messenger.send_forwarded(request).await,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable forwarded send");
            Err(SendError::NotAllowed)
        }
    };
    // Lost if NATS is down: the forwarding node times out, its client retries with the
    // same client id and gets this event as a duplicate.
    let _ = broker
        .client()
        .publish(reply, Answer::encode(&answer).into())
        .await;
}
