//! Export: a user's data, for them to take away. It is read a page at a time so that no
//! request holds a whole account's history in memory: the first page holds the account,
//! its contacts, its conversations and its signed-in devices, and every page holds up to
//! [`EXPORT_PAGE`] events of the user's conversations (what they sent and received), in
//! conversation order, then seq order, with the cursor of the next page.

use std::sync::Arc;

use actors::Store;
use actors::domain::{
    Conversation, ConversationId, Event, Invalid, LoginId, Seq, Timestamp, User, UserId,
};
use actors::store::HistoryRange;

use super::{LoginView, ServiceError};
use crate::auth::KeyedLimiter;
use crate::config::Config;

/// Events in one page of an export, at most.
pub const EXPORT_PAGE: usize = 500;

/// Where the next page of an export starts: after `seq` in `conversation`. Its text
/// form is `<conversation id>:<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportCursor {
    conversation: ConversationId,
    after: Seq,
}

impl ExportCursor {
    /// Reads a cursor a client passed back.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = Invalid("must be the nextCursor of a previous page");
        let (conversation, after) = raw.split_once(':').ok_or(bad.clone())?;
        Ok(Self {
            conversation: conversation.parse().map_err(|_| bad.clone())?,
            after: after.parse().map_err(|_| bad)?,
        })
    }
}

impl std::fmt::Display for ExportCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.conversation, self.after)
    }
}

/// What the first page adds: everything but the events.
#[derive(Debug, Clone)]
pub struct ExportHead {
    /// The account.
    pub user: User,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its contacts (those that still exist).
    pub contacts: Vec<User>,
    /// Its conversations.
    pub conversations: Vec<Conversation>,
    /// Its signed-in devices.
    pub sessions: Vec<LoginView>,
}

/// One page of an export.
#[derive(Debug, Clone)]
pub struct ExportPage {
    /// On the first page only.
    pub head: Option<ExportHead>,
    /// Events of the user's conversations.
    pub events: Vec<Event>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<ExportCursor>,
}

/// The export service.
pub struct Export {
    store: Arc<dyn Store>,
    pages_by_user: KeyedLimiter<UserId>,
}

impl Export {
    /// The service over this store, with the limit `config` asks for.
    pub fn new(store: Arc<dyn Store>, config: &Config) -> Self {
        Self {
            store,
            pages_by_user: KeyedLimiter::per_minute("export_pages", config.export_pages_per_minute),
        }
    }

    /// A page of `me`'s export: the first without a cursor. `current` is the login the
    /// caller's token belongs to, marked in the list of devices.
    #[tracing::instrument(skip_all, fields(user_id = %me.id))]
    pub async fn page(
        &self,
        me: &User,
        current: Option<LoginId>,
        cursor: Option<ExportCursor>,
    ) -> Result<ExportPage, ServiceError> {
        self.pages_by_user.check(&me.id)?;
        // Sorted, so a cursor's conversation has one place in the walk.
        let mut conversations = self.store.user_conversations(me.id).await?;
        conversations.sort();
        let (mut index, mut after) = match cursor {
            None => (0, None),
            Some(c) => match conversations.binary_search(&c.conversation) {
                Ok(i) => (i, Some(c.after)),
                // Not one of the caller's: to them it does not exist.
                Err(_) => return Err(ServiceError::ConversationNotFound),
            },
        };
        let head = match cursor {
            None => Some(self.head(me, current, &conversations).await?),
            Some(_) => None,
        };
        let mut events = Vec::new();
        while let Some(&conversation) = conversations.get(index) {
            let want = EXPORT_PAGE - events.len();
            let range = HistoryRange {
                after,
                before: None,
                limit: want,
                from_newest: false,
            };
            let read = self.store.events(conversation, range).await?;
            let full = read.len() == want;
            let last = read.last().map(|e| e.seq);
            events.extend(read);
            if full {
                let after = last.unwrap_or_default();
                return Ok(ExportPage {
                    head,
                    events,
                    next: Some(ExportCursor {
                        conversation,
                        after,
                    }),
                });
            }
            index += 1;
            after = None;
        }
        Ok(ExportPage {
            head,
            events,
            next: None,
        })
    }

    /// Sweeps idle rate-limit keys.
    pub fn sweep(&self) {
        self.pages_by_user.sweep();
    }

    async fn head(
        &self,
        me: &User,
        current: Option<LoginId>,
        conversation_ids: &[ConversationId],
    ) -> Result<ExportHead, ServiceError> {
        let record = self
            .store
            .user(me.id)
            .await?
            .ok_or(ServiceError::Unauthorized(super::TokenProblem::AccountGone))?;
        let mut contacts = Vec::new();
        for id in self.store.contacts(me.id).await? {
            if let Some(contact) = self.store.user(id).await? {
                contacts.push(contact.user);
            }
        }
        let mut conversations = Vec::new();
        for &id in conversation_ids {
            if let Some(c) = self.store.conversation(id).await? {
                conversations.push(c);
            }
        }
        let mut logins = self.store.user_logins(me.id).await?;
        logins.sort_by_key(|l| (l.created_at, l.id));
        let sessions = logins
            .into_iter()
            .map(|login| LoginView {
                current: Some(login.id) == current,
                login,
            })
            .collect();
        Ok(ExportHead {
            user: record.user,
            created_at: record.created_at,
            contacts,
            conversations,
            sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_nothing_else_parses() {
        let cursor = ExportCursor {
            conversation: ConversationId::direct(UserId::generate(), UserId::generate()),
            after: 42,
        };
        assert_eq!(ExportCursor::parse(&cursor.to_string()).unwrap(), cursor);
        for bad in [
            "",
            "x:1",
            "42",
            &format!("{}:", cursor.conversation),
            &format!("{}:-1", cursor.conversation),
        ] {
            assert!(ExportCursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
