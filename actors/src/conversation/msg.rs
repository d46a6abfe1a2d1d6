//! The conversation actor's messages.

use ractor::RpcReplyPort;

use crate::api::{SendError, SendRequest, Sent};

/// How a send is answered.
pub(crate) type SendReply = RpcReplyPort<Result<Sent, SendError>>;

/// The conversation actor's messages.
pub(crate) enum ConversationMsg {
    /// A member sends an event (the request's target is this conversation).
    Send {
        // Boxed: a request is far larger than the other messages, and every mailbox
        // slot would pay for it.
        request: Box<SendRequest>,
        reply: SendReply,
    },
    /// Internal: the outcome of the batch in flight is ready.
    Committed,
    /// Internal: timer tick to stop when idle.
    IdleCheck,
}
