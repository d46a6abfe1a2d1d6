//! Test-only fault injection. With the `fault-injection` feature, a message whose body
//! starts with a marker makes the actor handling it panic, or its commit fail, so tests
//! can prove that supervision restarts it and that other conversations do not notice.
//! Without the feature (every release build) these functions are empty and compile away.

use crate::domain::Event;

/// Body prefix that makes a conversation actor panic.
pub const PANIC_CONVERSATION: &str = "\u{1}fault:panic-conversation";
/// Body prefix that makes the user actors that would deliver it to a session panic.
pub const PANIC_USER: &str = "\u{1}fault:panic-user";
/// Body prefix that makes the commit of the batch holding it fail, as a full or failing
/// disk would (the store itself is not touched, so it "recovers" at once).
pub const STORE_ERROR: &str = "\u{1}fault:store-error";

#[cfg(feature = "fault-injection")]
pub(crate) fn check_commit(events: &[std::sync::Arc<Event>]) -> Result<(), crate::StoreError> {
    if events.iter().any(|e| marked(e, STORE_ERROR)) {
        return Err(crate::StoreError::msg("injected write failure"));
    }
    Ok(())
}

#[cfg(feature = "fault-injection")]
fn marked(event: &Event, marker: &str) -> bool {
    event.text().is_some_and(|t| t.as_str().starts_with(marker))
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check_commit(_events: &[std::sync::Arc<Event>]) -> Result<(), crate::StoreError> {
    Ok(())
}

#[cfg(feature = "fault-injection")]
pub(crate) fn check_conversation(kind: &crate::domain::EventKind) {
    if let crate::domain::EventKind::Message(m) = kind
        && m.body.as_str().starts_with(PANIC_CONVERSATION)
    {
        panic!("injected fault in conversation actor");
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check_conversation(_kind: &crate::domain::EventKind) {}

#[cfg(feature = "fault-injection")]
pub(crate) fn user_should_fail(event: &Event) -> bool {
    marked(event, PANIC_USER)
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn user_should_fail(_event: &Event) -> bool {
    false
}
