//! The floor: a bare tokio-tungstenite relay. No auth, no actors, no persistence, no
//! ordering: a map of user id -> the connection's outbound channel, and the same JSON
//! frames as Parley so the same generator drives both.
//!
//! - `GET /ws?user=<id>` (any path): the user id comes from the query; the first frame
//!   is `{"type":"ready","user":{"id":..},"sessionId":".."}`.
//! - `{"type":"send","receiverId":..,"content":..,"clientId":..}` (Parley's protocol v2)
//!   is answered with `{"type":"ack","clientId":..,"duplicate":false,"message":{..}}` to
//!   the sender and relayed as `{"type":"message","message":{..}}` to the recipient's
//!   connection, with the fields of Parley's message object in its order (id,
//!   conversationId, seq, sender, content, type, clientId, createdAt), so frames have the
//!   same shape and size.
//! - `{"type":"group","conversationId":..,"memberIds":[..]}` registers a group (the load
//!   generator's `group` scenario sends it once); a `send` with `conversationId` is
//!   relayed to every member but the sender, encoded once.
//! - One reader task and one writer task per connection; the writer drains its
//!   unbounded channel, writing everything queued before one flush.
//!
//! It is compiled into the load generator and run as a child process by it:
//! `cargo bench --bench load -- serve-relay --listen 127.0.0.1:9002 [--read-buffer N]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

type Outbox = mpsc::UnboundedSender<Utf8Bytes>;

struct Relay {
    users: Mutex<HashMap<String, Outbox>>,
    /// Groups by id: their members, as the `group` frame registered them.
    groups: Mutex<HashMap<String, Vec<String>>>,
    config: WebSocketConfig,
    seq: AtomicU64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Send<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    receiver_id: Option<&'a str>,
    conversation_id: Option<&'a str>,
    content: Option<&'a str>,
    client_id: Option<&'a str>,
    /// `group`: the members of `conversationId`.
    #[serde(borrow, default)]
    member_ids: Option<Vec<&'a str>>,
}

/// Parley's `wire::MessageJson`, field for field.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageJson<'a> {
    id: String,
    conversation_id: String,
    seq: u64,
    sender: &'a str,
    /// None, as in Parley until its event model fills it in; then `Some(to)` here too.
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver: Option<&'a str>,
    content: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    created_at: String,
}

#[derive(Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
enum Out<'a> {
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        duplicate: bool,
        message: &'a MessageJson<'a>,
    },
    Message {
        message: &'a MessageJson<'a>,
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
}

/// Runs the relay until the process is killed. `read_buffer` of `None` keeps
/// tungstenite's defaults (128 KiB read buffer, 128 KiB write buffer target).
pub(crate) async fn serve(listen: SocketAddr, read_buffer: Option<usize>) -> std::io::Result<()> {
    let mut config = WebSocketConfig::default();
    if let Some(n) = read_buffer {
        config = config.read_buffer_size(n).write_buffer_size(n);
    }
    let relay = Arc::new(Relay {
        users: Mutex::new(HashMap::new()),
        groups: Mutex::new(HashMap::new()),
        config,
        seq: AtomicU64::new(0),
    });
    let listener = TcpListener::bind(listen).await?;
    eprintln!("relay listening on {listen}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of file descriptors and the like: keep serving the others.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            connection(relay, stream).await;
        });
    }
}

// The handshake callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn connection(relay: Arc<Relay>, stream: TcpStream) {
    let mut user = String::new();
    let callback = |req: &Request, res: Response| {
        if let Some(q) = req.uri().query() {
            for pair in q.split('&') {
                if let Some(v) = pair.strip_prefix("user=") {
                    user = v.to_owned();
                }
            }
        }
        Ok(res)
    };
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(relay.config)).await
    else {
        return;
    };
    if user.is_empty() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    relay
        .users
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(user.clone(), tx.clone());
    let ready = format!(r#"{{"type":"ready","user":{{"id":"{user}"}},"sessionId":"1"}}"#);
    let _ = tx.send(Utf8Bytes::from(ready));
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            while let Ok(next) = rx.try_recv() {
                if sink.feed(Message::Text(next)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else {
            if matches!(frame, Message::Close(_)) {
                break;
            }
            continue;
        };
        on_text(&relay, &user, &tx, text.as_str());
    }
    {
        let mut users = relay
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if users.get(&user).is_some_and(|t| t.same_channel(&tx)) {
            users.remove(&user);
        }
    }
    drop(tx);
    writer.abort();
}

fn on_text(relay: &Relay, user: &str, me: &Outbox, text: &str) {
    let send: Send<'_> = match serde_json::from_str(text) {
        Ok(s) => s,
        Err(_) => return error(me, "malformed_json"),
    };
    if send.kind == "ping" {
        let _ = me.send(Utf8Bytes::from_static(r#"{"type":"pong"}"#));
        return;
    }
    if send.kind == "group" {
        if let (Some(id), Some(members)) = (send.conversation_id, send.member_ids) {
            relay
                .groups
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(
                    id.to_owned(),
                    members.into_iter().map(str::to_owned).collect(),
                );
        }
        return;
    }
    if let (Some(group), Some(content)) = (send.conversation_id, send.content) {
        return group_send(relay, user, me, group, content, send.client_id);
    }
    let (Some(to), Some(content)) = (send.receiver_id, send.content) else {
        return error(me, "validation_failed");
    };
    let created_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let message = MessageJson {
        id: Uuid::now_v7().to_string(),
        conversation_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{user}{to}").as_bytes())
            .to_string(),
        seq: relay.seq.fetch_add(1, Ordering::Relaxed) + 1,
        sender: user,
        receiver: Some(to),
        content,
        kind: "text",
        client_id: send.client_id,
        created_at,
    };
    let recipient = relay
        .users
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(to)
        .cloned();
    if let Some(recipient) = recipient {
        let frame = encode(&Out::Message { message: &message });
        let _ = recipient.send(Utf8Bytes::from(frame));
    }
    let ack = encode(&Out::Ack {
        client_id: send.client_id,
        duplicate: false,
        message: &message,
    });
    let _ = me.send(Utf8Bytes::from(ack));
}

/// A message into a registered group: one encoding, queued to every member online but
/// the sender.
fn group_send(
    relay: &Relay,
    user: &str,
    me: &Outbox,
    group: &str,
    content: &str,
    client_id: Option<&str>,
) {
    let message = MessageJson {
        id: Uuid::now_v7().to_string(),
        conversation_id: group.to_owned(),
        seq: relay.seq.fetch_add(1, Ordering::Relaxed) + 1,
        sender: user,
        receiver: None,
        content,
        kind: "text",
        client_id,
        created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    };
    let members = relay
        .groups
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(group)
        .cloned()
        .unwrap_or_default();
    let frame = Utf8Bytes::from(encode(&Out::Message { message: &message }));
    let outboxes: Vec<Outbox> = {
        let users = relay
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        members
            .iter()
            .filter(|m| m.as_str() != user)
            .filter_map(|m| users.get(m).cloned())
            .collect()
    };
    for outbox in outboxes {
        let _ = outbox.send(frame.clone());
    }
    let ack = encode(&Out::Ack {
        client_id,
        duplicate: false,
        message: &message,
    });
    let _ = me.send(Utf8Bytes::from(ack));
}

fn error(me: &Outbox, code: &str) {
    let frame = encode(&Out::Error {
        code,
        message: "bad frame",
    });
    let _ = me.send(Utf8Bytes::from(frame));
}

fn encode(out: &Out<'_>) -> String {
    serde_json::to_string(out).unwrap_or_default()
}
