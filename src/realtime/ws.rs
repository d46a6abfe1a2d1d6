//! The WebSocket transport: JSON text frames over a socket, driving the session core.
//! It parses text frames into commands, writes the core's frames as text, sends the
//! heartbeat pings, maps socket failures to close codes, and completes the closing
//! handshake. Everything else is the core's.

use std::time::Duration;

use actors::SessionLink;
use actors::domain::SessionId;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message as WsMessage, Utf8Bytes};

use super::core::{self, Ending, Inbound, InboundStream, Outbound, Stop};
use super::protocol::{self, OutFrame, close};
use crate::service::AuthUser;
use crate::state::AppState;

/// An upgraded connection speaking WebSocket.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Bytes the WebSocket layer reads per system call. tungstenite's default (128 KiB) is
/// zero-filled before every read and stays resident for every idle connection: it cost
/// ~140 KiB of RSS per connection and ~10% of the server's CPU under chat load. Chat
/// frames are small; a larger frame grows the buffer to its own size and no further.
pub(crate) const READ_BUFFER: usize = 2 * 1024;
/// Bytes of outgoing frames buffered before they are written to the socket (the core
/// also flushes after every batch of work, so this only caps a batch's buffer).
pub(crate) const WRITE_BUFFER: usize = 16 * 1024;

/// How long a closing session may take to write its close frame: a client that is not
/// reading would otherwise hold the connection forever.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// How long a session waits for the client's Close after sending its own.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

struct WsIn {
    stream: SplitStream<Socket>,
    max_body_chars: usize,
}

impl InboundStream for WsIn {
    type Reply = ();

    async fn next(&mut self) -> Inbound<()> {
        // The only await: cancel-safe, as the core requires.
        match self.stream.next().await {
            None => Inbound::End(Ending::gone("client_gone")),
            Some(Err(e)) => Inbound::End(read_error(e)),
            Some(Ok(WsMessage::Text(text))) => {
                Inbound::Command(protocol::parse(text.as_str(), self.max_body_chars), ())
            }
            Some(Ok(WsMessage::Binary(_))) => Inbound::End(Ending::close(
                close::UNSUPPORTED_DATA,
                "binary frames are not supported",
            )),
            Some(Ok(WsMessage::Close(_))) => Inbound::End(Ending::client_closed()),
            // Pings are answered by the WebSocket layer; pongs only prove life.
            Some(Ok(_)) => Inbound::Alive,
        }
    }
}

struct WsOut {
    sink: SplitSink<Socket, WsMessage>,
    dirty: bool,
}

impl Outbound for WsOut {
    type Reply = ();

    async fn answer(&mut self, (): (), frame: &OutFrame<'_>) -> Result<(), Stop> {
        self.write(frame).await
    }

    async fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), Stop> {
        self.dirty = true;
        self.sink
            .feed(WsMessage::Text(Utf8Bytes::from(frame.encode())))
            .await
            .map_err(|_| Stop::Transport)
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        self.sink.flush().await.map_err(|_| Stop::Transport)
    }

    async fn ping(&mut self) -> Result<(), Stop> {
        self.dirty = true;
        self.sink
            .feed(WsMessage::Ping(Default::default()))
            .await
            .map_err(|_| Stop::Transport)
    }
}

/// Runs a WebSocket session to its end.
pub(crate) async fn run(
    state: AppState,
    me: AuthUser,
    id: SessionId,
    link: SessionLink,
    socket: Socket,
) {
    let (sink, stream) = socket.split();
    let mut inbound = WsIn {
        stream,
        max_body_chars: state.config().max_message_chars,
    };
    let mut out = WsOut { sink, dirty: false };
    let heartbeat = Some(state.config().heartbeat_interval);
    let ending = core::serve(&state, &me, id, link, &mut inbound, &mut out, heartbeat).await;
    if let (Some(code), true) = (ending.code, ending.send_close) {
        let frame = CloseFrame {
            code: code.into(),
            reason: Utf8Bytes::from(ending.reason),
        };
        let sent =
            tokio::time::timeout(CLOSE_GRACE, out.sink.send(WsMessage::Close(Some(frame)))).await;
        if matches!(sent, Ok(Ok(()))) {
            // Complete the closing handshake: read (and drop) what the client still sends
            // until its Close arrives. Dropping the socket with unread data would make the
            // kernel reset the connection, and the client could lose the close frame.
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                while let Some(Ok(msg)) = inbound.stream.next().await {
                    if matches!(msg, WsMessage::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    } else {
        // Pushes out the close reply the WebSocket layer queued for a client's close.
        let _ = tokio::time::timeout(CLOSE_GRACE, out.sink.flush()).await;
    }
    core::finish(&state, &me, id, ending);
}

fn read_error(e: tungstenite::Error) -> Ending {
    match e {
        tungstenite::Error::Capacity(_) => Ending::close(close::TOO_BIG, "frame too large"),
        // tungstenite checks text frames as they are assembled; the socket is still
        // usable, so the client is told why (RFC 6455 §8.1) instead of being cut off.
        tungstenite::Error::Utf8(_) => {
            Ending::close(close::INVALID_PAYLOAD, "text frame is not UTF-8")
        }
        // A peer that vanished without a closing handshake is simply gone.
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => Ending::gone("client_gone"),
        tungstenite::Error::Protocol(_) => Ending::close(close::PROTOCOL_ERROR, "protocol error"),
        _ => Ending::gone("transport_error"),
    }
}
