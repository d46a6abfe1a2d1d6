//! The user actor's messages.

use std::sync::Arc;

use ractor::RpcReplyPort;

use crate::api::AttachError;
use crate::domain::SessionId;
use crate::session::SessionSink;

/// The user actor's messages.
pub(crate) enum UserMsg {
    /// A new session of this user.
    Attach {
        sink: Arc<SessionSink>,
        reply: RpcReplyPort<Result<(), AttachError>>,
    },
    /// A session ended.
    Detach { session: SessionId },
    /// Test-only (sent with the `fault-injection` feature): fail, so supervision can be
    /// shown to reset the user's sessions.
    Fail,
    /// Internal: timer tick to stop when idle.
    IdleCheck,
}
