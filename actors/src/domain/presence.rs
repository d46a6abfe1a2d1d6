//! What is kept of a user's presence: when they were last connected, and whether they
//! let others see it. Whether they are online now is not stored: it is whether they
//! have a live session.

use super::Timestamp;

/// A user's stored presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PresenceRecord {
    /// When their last session ended (none yet: never, or not since this was kept).
    pub last_seen: Option<Timestamp>,
    /// They hide `last_seen` from others (online and offline are still shown).
    pub hide_last_seen: bool,
}
