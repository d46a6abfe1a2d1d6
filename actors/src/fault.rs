//! Test-only fault injection. With the `fault-injection` feature, a message whose body
//! starts with a marker makes the actor handling it panic, or its commit fail, so tests can prove that
//! supervision restarts it and that other conversations do not notice. Without the
//! feature (every release build) these functions are empty and compile away.

use crate::domain::MessageBody;

/// Body prefix that makes a conversation actor panic.
pub const PANIC_CONVERSATION: &str = "\u{1}fault:panic-conversation";
/// Body prefix that makes a user actor panic on delivery.
pub const PANIC_USER: &str = "\u{1}fault:panic-user";
/// Body prefix that makes the commit of the batch holding it fail, as a full or failing
/// disk would (the store itself is not touched, so it "recovers" at once).
pub const STORE_ERROR: &str = "\u{1}fault:store-error";

#[cfg(feature = "fault-injection")]
pub(crate) fn check_commit(messages: &[crate::domain::Message]) -> Result<(), crate::StoreError> {
    if messages
        .iter()
        .any(|m| m.body.as_str().starts_with(STORE_ERROR))
    {
        return Err(crate::StoreError::new("injected write failure"));
    }
    Ok(())
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check_commit(_messages: &[crate::domain::Message]) -> Result<(), crate::StoreError> {
    Ok(())
}

#[cfg(feature = "fault-injection")]
pub(crate) fn check_conversation(body: &MessageBody) {
    if body.as_str().starts_with(PANIC_CONVERSATION) {
        panic!("injected fault in conversation actor");
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check_conversation(_body: &MessageBody) {}

#[cfg(feature = "fault-injection")]
pub(crate) fn check_user(body: &MessageBody) {
    if body.as_str().starts_with(PANIC_USER) {
        panic!("injected fault in user actor");
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check_user(_body: &MessageBody) {}
