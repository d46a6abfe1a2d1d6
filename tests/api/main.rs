//! Integration tests: a real server on a loopback port, a real store in a temp dir,
//! real HTTP and WebSocket clients. One binary, so it links once.

// Test modules share helpers with `pub`; the lint is for library APIs.
#![allow(unreachable_pub)]

mod helpers;
#[path = "../common/server.rs"]
mod server;

mod accounts;
mod asyncapi;
mod connections;
mod contacts;
mod restart;
mod tokens;

mod dashboard;
mod example_chat;
mod history;
mod lanes;
mod limits;
mod messaging;
mod openapi;
mod operations;
mod process;
mod protocol_errors;
mod session_end;
mod supervision;
mod web;
