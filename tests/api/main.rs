//! Integration tests: a real server on a loopback port, a real store in a temp dir,
//! real HTTP and WebSocket clients. One binary, so it links once.

// Test modules share helpers with `pub`; the lint is for library APIs.
#![allow(unreachable_pub)]

mod binary;
mod connections;
mod helpers;

mod accounts;
mod contacts;
mod restart;
mod tokens;

mod history;
mod limits;
mod messaging;
mod operations;
mod process;
mod protocol_errors;
mod supervision;
