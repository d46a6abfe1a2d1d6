//! Domain types that validate when parsed. Past the HTTP and WebSocket edge, code takes
//! these types, never raw strings, so an invalid email or an empty message cannot reach
//! an actor or the store.

mod call;
mod conversation;
mod email;
mod event;
mod ids;
mod login;
mod message;
mod name;
mod password;
mod presence;
mod receipt;
mod text;
mod time;
mod user;

pub use call::{CallType, RoomId};
pub use conversation::{Conversation, ConversationSummary, Group, Member, Refusal};
pub use email::Email;
pub use event::{
    CallInfo, CallSignal, ContentType, Event, EventKind, MembershipChange, MessageContent, Role,
    Seq, Signal, SignalKind,
};
pub use ids::{ConversationId, EventId, IdError, LoginId, SessionId, UserId};
pub use login::{DeviceName, Login, RefreshHash};
pub use message::{ClientId, MessageBody};
pub use name::DisplayName;
pub use password::Password;
pub use presence::PresenceRecord;
pub use receipt::{Mark, Receipt};
pub use time::Timestamp;
pub use user::{User, UserRecord};

/// Why a value was refused by a parser; the text is meant for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);
