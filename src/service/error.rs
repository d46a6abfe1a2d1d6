//! The service layer's one error type. Each error has one wire `code()` and one
//! [`ErrorKind`]; the HTTP layer turns the kind into a status in one place, and the
//! realtime transports write the code into an error frame.

use std::time::Duration;

use actors::{AttachError, SendError, StoreError};

use crate::auth::{HashError, RateLimited};

/// What kind of failure, as far as a client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong; retrying it unchanged will fail again.
    Invalid,
    /// No valid credentials.
    Unauthorized,
    /// The caller may not do this.
    Forbidden,
    /// No such thing (or none the caller may know of).
    NotFound,
    /// It conflicts with what exists.
    Conflict,
    /// Too many attempts; retry later.
    RateLimited,
    /// A temporary failure; retry (with the same client id, for sends).
    Unavailable,
    /// A failure on the server's side.
    Internal,
}

/// What is wrong with the credential a request came with. Each is told to the client:
/// none says anything about the secret, and the ones past the signature check
/// (expired, revoked, account gone) are only reachable with a token this server signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// No `Authorization` header (and, for `/ws`, no `?token=`).
    #[error("A bearer token is required: send Authorization: Bearer <token>.")]
    Missing,
    /// An `Authorization` header of another scheme, or without one.
    #[error("The Authorization header must be \"Bearer <token>\".")]
    NotBearer,
    /// Not a token: malformed, too long, wrongly signed, or not from this server.
    #[error("The token is malformed or was not issued by this server; log in again.")]
    Invalid,
    /// Past its expiry (and the 5 s leeway).
    #[error("The token has expired; log in again.")]
    Expired,
    /// Revoked: its device was signed out (a logout, a password change, the sessions
    /// list), or its login expired.
    #[error("The token was revoked (its device was signed out); log in again.")]
    Revoked,
    /// A refresh token that was already traded: every token of its login is revoked.
    #[error(
        "This refresh token was already used, so every token of its sign-in is revoked; log in again."
    )]
    Reused,
    /// Its account no longer exists.
    #[error("The token's account no longer exists.")]
    AccountGone,
    /// Not the operator's admin token.
    #[error("The admin token is required.")]
    NotAdmin,
}

/// Why a service call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The token is missing, malformed, expired, revoked, or its user is gone: which one,
    /// so the client fixes the right thing (401 `unauthorized` in every case).
    #[error("{0}")]
    Unauthorized(TokenProblem),
    /// Wrong email or password (the same answer for both).
    #[error("Email or password is incorrect.")]
    InvalidCredentials,
    /// The password given to confirm an account change is not the caller's.
    #[error("The password is incorrect.")]
    WrongPassword,
    /// No such session among the caller's signed-in devices.
    #[error("No such session.")]
    SessionNotFound,
    /// The email belongs to another account.
    #[error("An account with this email already exists.")]
    EmailTaken,
    /// No account has that email or id (the old backend's words, which its clients show).
    #[error("User not found")]
    UserNotFound,
    /// A user tried to add themselves.
    #[error("You cannot add yourself as a contact.")]
    CannotAddSelf,
    /// Already contacts.
    #[error("This user is already a contact.")]
    AlreadyContact,
    /// No such conversation, or the caller is not in it.
    #[error("No such conversation.")]
    ConversationNotFound,
    /// The other user cannot be reached (they block the caller; not said).
    #[error("This user cannot be reached.")]
    CannotReach,
    /// The caller opened too many conversations nobody has answered yet.
    #[error("Too many of your conversations are unanswered; wait for a reply.")]
    TooManyUnanswered,
    /// A user tried to block themselves.
    #[error("You cannot block yourself.")]
    CannotBlockSelf,
    /// A receipt names a seq past the conversation's last event.
    #[error("seq is beyond the conversation's last event.")]
    SeqBeyondEnd,
    /// The callee has no live session.
    #[error("Receiver offline")]
    ReceiverOffline,
    /// The caller has no live session any more.
    #[error("Caller offline")]
    CallerOffline,
    /// Only the two parties of a call's room may answer or end it.
    #[error("Only the two parties of a call can answer or end it.")]
    NotInRoom,
    /// Over a rate limit.
    #[error("Too many attempts; try again later.")]
    RateLimited(Duration),
    /// A send failed in the messaging core.
    #[error("{}", send_message(.0))]
    Send(SendError),
    /// A session could not attach.
    #[error("{0}")]
    Attach(AttachError),
    /// The store failed.
    #[error("The store is unavailable; try again.")]
    Store(StoreError),
    /// Password hashing failed.
    #[error("Something went wrong on our side.")]
    Hash(HashError),
    /// Anything else that is the server's fault.
    #[error("Something went wrong on our side.")]
    Internal(String),
}

fn send_message(e: &SendError) -> String {
    match e {
        SendError::Store(_) => {
            "The message could not be stored; retry with the same clientId.".to_owned()
        }
        other => other.to_string(),
    }
}

impl ServiceError {
    /// The machine-readable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Unauthorized(_) => "unauthorized",
            ServiceError::InvalidCredentials => "invalid_credentials",
            ServiceError::WrongPassword => "wrong_password",
            ServiceError::SessionNotFound => "session_not_found",
            ServiceError::EmailTaken => "email_taken",
            ServiceError::UserNotFound => "user_not_found",
            ServiceError::CannotAddSelf => "cannot_add_self",
            ServiceError::AlreadyContact => "already_contact",
            ServiceError::ConversationNotFound => "conversation_not_found",
            ServiceError::SeqBeyondEnd => "seq_out_of_range",
            ServiceError::CannotReach => "cannot_reach",
            ServiceError::TooManyUnanswered => "too_many_unanswered",
            ServiceError::CannotBlockSelf => "cannot_block_self",
            ServiceError::ReceiverOffline => "receiver_offline",
            ServiceError::CallerOffline => "caller_offline",
            ServiceError::NotInRoom => "not_in_room",
            ServiceError::RateLimited(_) => "rate_limited",
            ServiceError::Send(e) => e.code(),
            ServiceError::Attach(e) => e.code(),
            ServiceError::Store(_) => "store_unavailable",
            ServiceError::Hash(_) | ServiceError::Internal(_) => "internal",
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Unauthorized(_) | ServiceError::InvalidCredentials => {
                ErrorKind::Unauthorized
            }
            ServiceError::EmailTaken | ServiceError::AlreadyContact => ErrorKind::Conflict,
            ServiceError::WrongPassword => ErrorKind::Forbidden,
            ServiceError::UserNotFound
            | ServiceError::ConversationNotFound
            | ServiceError::SessionNotFound
            | ServiceError::ReceiverOffline
            | ServiceError::CallerOffline => ErrorKind::NotFound,
            ServiceError::NotInRoom => ErrorKind::Forbidden,
            ServiceError::CannotAddSelf
            | ServiceError::SeqBeyondEnd
            | ServiceError::CannotBlockSelf => ErrorKind::Invalid,
            ServiceError::CannotReach => ErrorKind::Forbidden,
            ServiceError::TooManyUnanswered => ErrorKind::Conflict,
            ServiceError::RateLimited(_) => ErrorKind::RateLimited,
            ServiceError::Send(e) => match e {
                SendError::RecipientNotFound | SendError::NotParticipant => ErrorKind::NotFound,
                SendError::CannotMessageSelf => ErrorKind::Invalid,
                SendError::NotAllowed => ErrorKind::Forbidden,
                SendError::MemberNotFound | SendError::MessageNotFound => ErrorKind::NotFound,
                SendError::AlreadyMember | SendError::GroupFull | SendError::MessageDeleted => {
                    ErrorKind::Conflict
                }
                SendError::Failed
                | SendError::Unavailable
                | SendError::Timeout
                | SendError::ShuttingDown
                | SendError::Store(_) => ErrorKind::Unavailable,
            },
            ServiceError::Attach(e) => match e {
                AttachError::UserNotFound => ErrorKind::Unauthorized,
                AttachError::TooManySessions | AttachError::Unavailable => ErrorKind::Unavailable,
            },
            ServiceError::Store(_) => ErrorKind::Unavailable,
            ServiceError::Hash(_) | ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// With a rate limit: when to try again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ServiceError::RateLimited(wait) => Some(*wait),
            _ => None,
        }
    }

    /// The cause to log, once, where the error is answered; `None` for the expected
    /// refusals that need no log line.
    pub fn cause(&self) -> Option<String> {
        match self {
            ServiceError::Store(e) | ServiceError::Send(SendError::Store(e)) => Some(e.to_string()),
            ServiceError::Hash(e) => Some(e.to_string()),
            ServiceError::Internal(e) => Some(e.clone()),
            _ => None,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e)
    }
}

impl From<SendError> for ServiceError {
    fn from(e: SendError) -> Self {
        ServiceError::Send(e)
    }
}

impl From<AttachError> for ServiceError {
    fn from(e: AttachError) -> Self {
        ServiceError::Attach(e)
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        ServiceError::Hash(e)
    }
}

impl From<RateLimited> for ServiceError {
    fn from(limit: RateLimited) -> Self {
        ServiceError::RateLimited(limit.retry_after)
    }
}
