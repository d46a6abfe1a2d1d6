//! WebSocket clients of the three systems: connecting (with the handshake each needs),
//! encoding a send, and classifying what comes back without a full JSON parse.
//!
//! - Parley: `GET /ws` with `Authorization: Bearer <token>`, then a `ready` frame.
//! - Relay: `GET /ws?user=<id>`, then a `ready` frame; same frames as Parley.
//! - Socket.IO (the Node peer, and Parley's `/socket.io/`): Engine.IO v4 over WebSocket
//!   (`/socket.io/?EIO=4&transport=websocket`): open packet `0{..}`, namespace connect
//!   `40{"token":..}` answered by `40{"sid":..}`, `register` with an ack (`420[..]`
//!   answered by `430[{"success":true}]`), events `42["name",{..}]`, acks `43<id>[..]`,
//!   and the server's ping `2` answered by `3`. The peer takes the user id as its token;
//!   Parley checks a real one.
//!
//! Every message body starts with the scheduled send time (nanoseconds since the run's
//! start, 20 digits) and is padded to the same length for every system, so both the
//! ack and the delivery carry the time to measure from.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::target::{System, User};

/// A client connection.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Client buffers: small, so that 15,000 client connections fit in the generator.
pub(crate) fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
}

/// Opens a connection as `user` and completes the system's handshake.
pub(crate) async fn connect(
    system: System,
    addr: SocketAddr,
    user: &User,
    source: Option<Ipv4Addr>,
) -> Result<Ws, String> {
    tokio::time::timeout(
        Duration::from_secs(60),
        connect_inner(system, addr, user, source),
    )
    .await
    .map_err(|_| "connect_timeout".to_owned())?
}

async fn connect_inner(
    system: System,
    addr: SocketAddr,
    user: &User,
    source: Option<Ipv4Addr>,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = source {
        socket
            .bind((ip, 0).into())
            .map_err(|e| format!("bind: {e}"))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("tcp_connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let url = match system {
        System::Parley
        | System::ParleyScylla
        | System::ParleyClusterSame
        | System::ParleyClusterSplit => format!("ws://{addr}/ws"),
        System::Relay => format!("ws://{addr}/ws?user={}", user.id),
        System::Socketio | System::ParleySocketio => {
            format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
        }
    };
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if matches!(
        system,
        System::Parley
            | System::ParleyScylla
            | System::ParleyClusterSame
            | System::ParleyClusterSplit
    ) {
        let value = format!("Bearer {}", user.token)
            .parse()
            .map_err(|_| "bad token".to_owned())?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(client_config()))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    match system {
        System::Parley
        | System::ParleyScylla
        | System::ParleyClusterSame
        | System::ParleyClusterSplit
        | System::Relay => {
            let first = next_text(&mut ws).await?;
            if !first.starts_with(r#"{"type":"ready""#) {
                return Err(format!("unexpected first frame: {first:.80}"));
            }
        }
        System::Socketio | System::ParleySocketio => {
            let open = next_text(&mut ws).await?;
            if !open.starts_with("0{") {
                return Err(format!("unexpected open packet: {open:.80}"));
            }
            send_text(&mut ws, format!(r#"40{{"token":"{}"}}"#, user.token)).await?;
            let connected = next_text(&mut ws).await?;
            if !connected.starts_with("40") {
                return Err(format!("namespace connect refused: {connected:.80}"));
            }
            send_text(&mut ws, format!(r#"420["register","{}"]"#, user.id)).await?;
            let registered = next_text(&mut ws).await?;
            if !registered.starts_with("430[") || !registered.contains(r#""success":true"#) {
                return Err(format!("register refused: {registered:.80}"));
            }
        }
    }
    Ok(ws)
}

async fn send_text(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("write: {e}"))
}

/// The next text frame (Engine.IO pings answered on the way).
pub(crate) async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if t.as_str() == "2" {
                    send_text(ws, "3".to_owned()).await?;
                    continue;
                }
                return Ok(t.as_str().to_owned());
            }
            Some(Ok(Message::Close(c))) => return Err(format!("closed: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("connection ended".to_owned()),
        }
    }
}

/// A body of `len` bytes starting with the scheduled time `ts_ns`.
pub(crate) fn body(ts_ns: u64, len: usize) -> String {
    let mut b = format!("{ts_ns:020} ");
    while b.len() < len {
        b.push('x');
    }
    b
}

/// The frame that sends `body` to `to`. `ack_id` numbers Socket.IO acks.
pub(crate) fn send_frame(
    system: System,
    to: &str,
    body: &str,
    client_id: &str,
    ack_id: u64,
) -> String {
    match system {
        System::Parley
        | System::ParleyScylla
        | System::ParleyClusterSame
        | System::ParleyClusterSplit
        | System::Relay => {
            format!(
                r#"{{"type":"send","receiverId":"{to}","content":"{body}","clientId":"{client_id}"}}"#
            )
        }
        System::Socketio | System::ParleySocketio => format!(
            r#"42{ack_id}["sendMessage",{{"receiverId":"{to}","content":"{body}","clientId":"{client_id}"}}]"#
        ),
    }
}

/// What a server frame is, for the generator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// The sender's acknowledgement, with the body's scheduled time.
    Ack(Option<u64>),
    /// A message for this user, with the body's scheduled time.
    Delivery(Option<u64>),
    /// An error frame (its code).
    Error(&'a str),
    /// The end of a sync replay; `more` is true when it was capped.
    Synced {
        /// Whether to sync again.
        more: bool,
    },
    /// An Engine.IO ping, to answer with `3`.
    Ping,
    /// Anything else.
    Other,
}

fn between<'a>(text: &'a str, start: &str, end: char) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

fn stamp(text: &str, field: &str) -> Option<u64> {
    let from = text.find(field)? + field.len();
    text.get(from..from + 20)?.parse().ok()
}

/// Classifies a text frame from `system`.
pub(crate) fn classify(system: System, text: &str) -> Incoming<'_> {
    match system {
        System::Parley
        | System::ParleyScylla
        | System::ParleyClusterSame
        | System::ParleyClusterSplit
        | System::Relay => {
            if text.starts_with(r#"{"type":"message""#) {
                Incoming::Delivery(stamp(text, r#""content":""#))
            } else if text.starts_with(r#"{"type":"ack""#) {
                Incoming::Ack(stamp(text, r#""content":""#))
            } else if text.starts_with(r#"{"type":"synced""#) {
                Incoming::Synced {
                    more: text.contains(r#""more":true"#),
                }
            } else if text.starts_with(r#"{"type":"error""#) {
                Incoming::Error(between(text, r#""code":""#, '"').unwrap_or("error"))
            } else {
                Incoming::Other
            }
        }
        System::Socketio | System::ParleySocketio => {
            if text == "2" {
                Incoming::Ping
            } else if text.starts_with(r#"42["receiveMessage""#) {
                Incoming::Delivery(stamp(text, r#""content":""#))
            } else if text.starts_with("43") {
                if text.contains(r#""success":true"#) {
                    Incoming::Ack(stamp(text, r#""content":""#))
                } else {
                    Incoming::Error("sendMessage_error")
                }
            } else if text.starts_with("41") || text.starts_with("44") {
                Incoming::Error("socketio_disconnect")
            } else {
                Incoming::Other
            }
        }
    }
}
