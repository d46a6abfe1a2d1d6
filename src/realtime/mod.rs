//! Realtime sessions: one transport-neutral core and the transports that drive it.
//!
//! - [`protocol`]: client commands parsed into domain types, server frames, close codes
//!   (no I/O).
//! - `written`: the seq ranges a session has written per conversation.
//! - `core`: the session itself: sends in flight, deliveries, sync and replay through
//!   the messaging service, heartbeats, endings.
//! - `ws`: the WebSocket transport.
//! - `socketio`: the Socket.IO transport (socketioxide), for the clients of the backend
//!   Parley replaces and any socket.io-client v4.

pub(crate) mod core;
pub mod protocol;
pub(crate) mod socketio;
mod written;
pub(crate) mod ws;
