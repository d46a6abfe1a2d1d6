//! The service layer: the only place business rules live. REST handlers and the
//! realtime transports parse their input into domain types, call a service, and turn
//! its answer (or its [`ServiceError`]) into their wire format; they decide nothing.
//!
//! - [`accounts`]: register, log in and out, authenticate a token, refresh tokens,
//!   signed-in devices, password change, account deletion.
//! - [`calls`]: ring, answer and end a call; its record in the conversation.
//! - [`export`]: a user's data, a page at a time.
//! - [`contacts`]: add by email, list.
//! - [`conversations`]: a caller's list, pages of history for members.
//! - [`messaging`]: send (rate-limited), attach and detach sessions, replay reads.

pub mod accounts;
pub mod calls;
pub mod contacts;
pub mod conversations;
mod error;
pub mod export;
pub mod messaging;

pub use accounts::{Accounts, AuthUser, Issued, LoginView};
pub use calls::Calls;
pub use contacts::Contacts;
pub use conversations::{ConversationView, Conversations, Page, Paging};
pub use error::{ErrorKind, ServiceError, TokenProblem};
pub use export::{EXPORT_PAGE, Export, ExportCursor, ExportHead, ExportPage};
pub use messaging::Messaging;
