//! The service layer: the only place business rules live. REST handlers and the
//! realtime transports parse their input into domain types, call a service, and turn
//! its answer (or its [`ServiceError`]) into their wire format; they decide nothing.
//!
//! - [`accounts`]: register, log in and out, authenticate a token, refresh tokens,
//!   signed-in devices, password change, account deletion.
//! - [`blocks`]: who blocks whom, checked wherever one user reaches another.
//! - [`calls`]: ring, answer and end a call; its record in the conversation.
//! - [`export`]: a user's data, a page at a time.
//! - [`contacts`]: add by email, list.
//! - [`conversations`]: a caller's list, pages of history for members.
//! - [`groups`]: create a group, rename it, add and remove members, roles.
//! - [`messaging`]: send (rate-limited), attach and detach sessions, replay reads.
//! - [`presence`]: online, offline and last seen, for contacts and co-members.
//! - [`receipts`]: delivered and read marks, told to the other members as signals.
//! - [`typing`]: typing signals, rate-limited per session.
//! - [`unanswered`]: direct conversations opened and not answered, per opener.

pub mod accounts;
pub mod blocks;
pub mod calls;
pub mod contacts;
pub mod conversations;
mod error;
pub mod export;
pub mod groups;
pub mod messaging;
pub mod presence;
pub mod receipts;
pub mod typing;
pub mod unanswered;

pub use accounts::{Accounts, AuthUser, Issued, LoginView};
pub use blocks::Blocks;
pub use calls::Calls;
pub use contacts::Contacts;
pub use conversations::{ConversationView, Conversations, Page, Paging};
pub use error::{ErrorKind, ServiceError, TokenProblem};
pub use export::{EXPORT_PAGE, Export, ExportCursor, ExportHead, ExportPage};
pub use groups::{GroupView, Groups};
pub use messaging::Messaging;
pub use presence::{Presence, PresenceView};
pub use receipts::Receipts;
pub use typing::{TYPING_TTL, Typing};
