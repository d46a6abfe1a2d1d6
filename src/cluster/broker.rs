//! The connection to NATS: subjects, whether it is up (for `/healthz`), and a publisher
//! that never makes a conversation actor wait.
//!
//! NATS core is at most once, and Parley treats it as the fast path only: a batch
//! dropped here (the queue is full, or NATS is down) reaches each session through the
//! session core's gap filling from the store, on the conversation's next event or the
//! client's next sync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use bytes::Bytes;
use tokio::sync::mpsc;

/// Every node's committed events (a broadcast: each node looks up its own sessions).
pub(crate) const EVENTS: &str = "parley.events";
/// Every node's revocations.
pub(crate) const REVOCATIONS: &str = "parley.revocations";
/// Every node's signals (typing, receipts, calls), broadcast like events.
pub(crate) const SIGNALS: &str = "parley.signals";
/// Every node's block-list changes.
pub(crate) const BLOCKS: &str = "parley.blocks";
/// Questions to every node: "has a session of this user?" (`online`).
pub(crate) const ONLINE: &str = "parley.online";

/// The subject a node answers forwarded sends on.
pub(crate) fn sends_of(node: &str) -> String {
    format!("parley.node.{node}.send")
}

/// Batches waiting to be published, at most.
const PUBLISH_QUEUE: usize = 4096;

/// Metric names (docs/operations.md).
pub(crate) const BROKER_CONNECTED: &str = "parley_cluster_broker_connected";
/// Counter: connections to NATS lost.
pub(crate) const BROKER_DISCONNECTS: &str = "parley_cluster_broker_disconnects_total";
/// Counter: batches not published (queue full or NATS down): recovered by gap filling.
pub(crate) const PUBLISH_DROPPED: &str = "parley_cluster_publish_dropped_total";

/// This node's connection to NATS.
pub(crate) struct Broker {
    client: Client,
    connected: Arc<AtomicBool>,
    queue: mpsc::Sender<(&'static str, Bytes)>,
}

impl Broker {
    /// Connects to `url` (retrying in the background if NATS is not up yet: the node
    /// serves its own sessions meanwhile, degraded). The URL is never logged: it may
    /// carry a password.
    pub(crate) async fn connect(url: &str, node: &str) -> Result<Self, async_nats::ConnectError> {
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        // The client logs server addresses at some levels: it gets the credentials
        // apart, never inside the address.
        let (address, credentials) = split_credentials(url);
        let options = match credentials {
            Some((user, password)) => ConnectOptions::with_user_and_password(user, password),
            None => ConnectOptions::new(),
        };
        let client = options
            .name(format!("parley-{node}"))
            .retry_on_initial_connect()
            // Back within a second of NATS coming back, not the default's seconds.
            .reconnect_delay_callback(|attempt| Duration::from_millis(100 * attempt.min(10) as u64))
            .event_callback(move |event| {
                let flag = flag.clone();
                async move {
                    match event {
                        Event::Connected => {
                            flag.store(true, Ordering::Relaxed);
                            metrics::gauge!(BROKER_CONNECTED).set(1.0);
                            tracing::info!("connected to NATS");
                        }
                        Event::Disconnected => {
                            flag.store(false, Ordering::Relaxed);
                            metrics::gauge!(BROKER_CONNECTED).set(0.0);
                            metrics::counter!(BROKER_DISCONNECTS).increment(1);
                            tracing::warn!("disconnected from NATS: cross-node traffic paused");
                        }
                        Event::SlowConsumer(_) => {
                            tracing::warn!("NATS dropped messages for this slow node")
                        }
                        _ => {}
                    }
                }
            })
            .connect(address)
            .await?;
        let (queue, mut outgoing) = mpsc::channel::<(&'static str, Bytes)>(PUBLISH_QUEUE);
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some((subject, payload)) = outgoing.recv().await {
                if publisher.publish(subject, payload).await.is_err() {
                    metrics::counter!(PUBLISH_DROPPED).increment(1);
                }
            }
        });
        Ok(Self {
            client,
            connected,
            queue,
        })
    }

    /// The client, for subscriptions and requests.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Whether NATS is connected now.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Queues a publication without waiting; dropped (and counted) when NATS is down
    /// or the queue is full.
    pub(crate) fn publish(&self, subject: &'static str, payload: Vec<u8>) {
        if !self.is_connected() || self.queue.try_send((subject, payload.into())).is_err() {
            metrics::counter!(PUBLISH_DROPPED).increment(1);
        }
    }
}

/// `nats://user:password@host:port` as (`nats://host:port`, the user and password).
fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (
        format!("{scheme}://{host}"),
        Some((user.to_owned(), password.to_owned())),
    )
}

#[cfg(test)]
mod tests {
    use super::split_credentials;

    #[test]
    fn credentials_are_taken_out_of_the_address() {
        assert_eq!(
            split_credentials("nats://parley:s3cr@t@10.0.0.9:4222"),
            (
                "nats://10.0.0.9:4222".to_owned(),
                Some(("parley".to_owned(), "s3cr@t".to_owned()))
            )
        );
        assert_eq!(
            split_credentials("nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".to_owned(), None)
        );
    }
}
