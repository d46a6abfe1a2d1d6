//! One module per resource; each handler's doc starts with its method and path.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod blocks;
pub(crate) mod calls;
pub(crate) mod cluster;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod groups;
pub(crate) mod health;
pub(crate) mod messages;
pub(crate) mod presence;
pub(crate) mod receipts;
pub(crate) mod sessions;
pub(crate) mod web;
pub(crate) mod ws;
