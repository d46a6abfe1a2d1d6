//! The vocabulary of the messaging facade: what callers hand to the
//! [`Messenger`](crate::messenger::Messenger) and what they get back.

use std::sync::Arc;

use crate::domain::{ClientId, ConversationId, Event, EventKind, Refusal, SessionId, UserId};
use crate::store::StoreError;

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The direct conversation with this user (created on first use).
    User(UserId),
    /// An existing conversation.
    Conversation(ConversationId),
}

/// An event to sequence and commit: a message, or (for the conversations that allow
/// them) an edit, a delete or a membership change.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// The sender.
    pub from: UserId,
    /// Where it goes.
    pub target: Target,
    /// What it is. A message's receiver is filled in by the conversation.
    pub kind: EventKind,
    /// The sender's retry key.
    pub client_id: Option<ClientId>,
    /// The session it came from, which gets an ack rather than a copy.
    pub origin: Option<SessionId>,
}

/// A committed send.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The event as stored.
    pub event: Arc<Event>,
    /// True when this was a retry of a client id already used: nothing new was stored.
    pub duplicate: bool,
}

/// Why a send failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The recipient does not exist.
    #[error("no such recipient")]
    RecipientNotFound,
    /// A user cannot start a conversation with themselves.
    #[error("cannot send a message to yourself")]
    CannotMessageSelf,
    /// The sender is not in that conversation (or it does not exist).
    #[error("not a participant of this conversation")]
    NotParticipant,
    /// The sender may not do this in this conversation.
    #[error("this is not allowed in this conversation")]
    NotAllowed,
    /// A user to add is already a member.
    #[error("already a member of this conversation")]
    AlreadyMember,
    /// A user to remove (or whose role to change) is not a member.
    #[error("no such member in this conversation")]
    MemberNotFound,
    /// The group would exceed its member cap.
    #[error("the group is full")]
    GroupFull,
    /// The message to edit or delete does not exist in this conversation.
    #[error("no such message in this conversation")]
    MessageNotFound,
    /// The message to edit or delete is deleted already.
    #[error("the message is deleted")]
    MessageDeleted,
    /// The conversation's actor failed while handling this send: it may or may not be
    /// committed, so retry with the same client id.
    #[error("the conversation failed while handling this message; retry with the same clientId")]
    Failed,
    /// The conversation's actor keeps failing and was given up on for a while.
    #[error("this conversation is temporarily unavailable")]
    Unavailable,
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The store failed; nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SendError {
    /// The machine-readable code clients see, on every transport.
    pub fn code(&self) -> &'static str {
        match self {
            SendError::RecipientNotFound => "recipient_not_found",
            SendError::CannotMessageSelf => "cannot_message_self",
            SendError::NotParticipant => "not_participant",
            SendError::NotAllowed => "not_allowed",
            SendError::AlreadyMember => "already_member",
            SendError::MemberNotFound => "member_not_found",
            SendError::GroupFull => "group_full",
            SendError::MessageNotFound => "message_not_found",
            SendError::MessageDeleted => "message_deleted",
            SendError::Failed => "conversation_failed",
            SendError::Unavailable => "conversation_unavailable",
            SendError::Timeout => "timeout",
            SendError::ShuttingDown => "shutting_down",
            SendError::Store(_) => "store_unavailable",
        }
    }

    /// The error `code` names (the inverse of [`Self::code`], for errors that crossed a
    /// wire, such as a forwarded send's answer); `message` is a store error's text. An
    /// unknown code is a failure of unknown outcome: retry with the same client id.
    pub fn from_code(code: &str, message: String) -> Self {
        match code {
            "recipient_not_found" => SendError::RecipientNotFound,
            "cannot_message_self" => SendError::CannotMessageSelf,
            "not_participant" => SendError::NotParticipant,
            "not_allowed" => SendError::NotAllowed,
            "already_member" => SendError::AlreadyMember,
            "member_not_found" => SendError::MemberNotFound,
            "group_full" => SendError::GroupFull,
            "message_not_found" => SendError::MessageNotFound,
            "message_deleted" => SendError::MessageDeleted,
            "conversation_unavailable" => SendError::Unavailable,
            "timeout" => SendError::Timeout,
            "shutting_down" => SendError::ShuttingDown,
            "store_unavailable" => SendError::Store(StoreError::msg(message)),
            _ => SendError::Failed,
        }
    }
}

impl From<Refusal> for SendError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotMember => SendError::NotParticipant,
            Refusal::NotAllowed => SendError::NotAllowed,
            Refusal::AlreadyMember => SendError::AlreadyMember,
            Refusal::UnknownMember => SendError::MemberNotFound,
            Refusal::Full => SendError::GroupFull,
            Refusal::UnknownMessage => SendError::MessageNotFound,
            Refusal::Deleted => SendError::MessageDeleted,
        }
    }
}

/// Why a session could not attach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The user already holds the most sessions allowed.
    #[error("too many sessions for this user")]
    TooManySessions,
    /// The user does not exist.
    #[error("no such user")]
    UserNotFound,
    /// The user's actor could not be reached.
    #[error("temporarily unavailable")]
    Unavailable,
}

impl AttachError {
    /// The machine-readable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            AttachError::TooManySessions => "too_many_sessions",
            AttachError::UserNotFound => "unauthorized",
            AttachError::Unavailable => "unavailable",
        }
    }
}

/// Why a session was dropped by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its durable queue overflowed: it must reconnect and sync.
    SlowConsumer,
    /// The credential it was opened with was revoked (logout, a password change, the
    /// account's deletion): it must log in again.
    Revoked,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_names_its_error_again() {
        let all = [
            SendError::RecipientNotFound,
            SendError::CannotMessageSelf,
            SendError::NotParticipant,
            SendError::NotAllowed,
            SendError::AlreadyMember,
            SendError::MemberNotFound,
            SendError::GroupFull,
            SendError::MessageNotFound,
            SendError::MessageDeleted,
            SendError::Failed,
            SendError::Unavailable,
            SendError::Timeout,
            SendError::ShuttingDown,
            SendError::Store(StoreError::msg("disk gone")),
        ];
        for e in all {
            let back = SendError::from_code(e.code(), e.to_string());
            assert_eq!(back.code(), e.code(), "{e:?}");
            assert_eq!(back.to_string(), e.to_string(), "{e:?}");
        }
        assert_eq!(
            SendError::from_code("from_a_newer_node", String::new()).code(),
            "conversation_failed"
        );
    }
}
