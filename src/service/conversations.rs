//! Conversations: a caller's list, and pages of one conversation's history. Only
//! members read a conversation; to anyone else it does not exist.

use std::collections::HashMap;
use std::sync::Arc;

use actors::Store;
use actors::domain::{
    Conversation, ConversationId, ConversationSummary, Event, EventKind, Seq, User, UserId,
};
use actors::store::HistoryRange;

use super::ServiceError;

/// A conversation in a caller's list.
#[derive(Debug, Clone)]
pub struct ConversationView {
    /// The conversation and its newest event.
    pub summary: ConversationSummary,
    /// Its members' accounts (those that still exist).
    pub members: Vec<User>,
}

/// Which page of history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// By seq: a range of the stream.
    Cursor(HistoryRange),
    /// By number, as the backend Parley replaces paged: page 1 is the newest `limit`
    /// messages, page 2 the `limit` before them, and so on (each oldest first). Pages
    /// shift when messages arrive; cursors do not.
    Number {
        /// 1 or more.
        page: u64,
        /// Messages per page.
        limit: usize,
    },
}

/// A page of history, oldest first, with the cursors of the pages around it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its messages, each as amended so far (amendments themselves are folded in, not
    /// listed: live sessions and `sync` get them, history shows their result).
    pub events: Vec<Event>,
    /// Pass as `before` for the previous (older) page, when there is one.
    pub next_before: Option<Seq>,
    /// Pass as `after` for the next (newer) page, when there may be one.
    pub next_after: Option<Seq>,
}

/// Events read per store call while counting numbered pages.
const SCAN: usize = 500;

/// The conversations service.
pub struct Conversations {
    store: Arc<dyn Store>,
}

impl Conversations {
    /// The service over this store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The conversations of `me`, most recent activity first.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn list(&self, me: UserId) -> Result<Vec<ConversationView>, ServiceError> {
        let mut summaries = Vec::new();
        for id in self.store.user_conversations(me).await? {
            if let Some(conversation) = self.store.conversation(id).await? {
                let last_event = self.store.last_event(id).await?;
                summaries.push(ConversationSummary {
                    conversation,
                    last_event,
                });
            }
        }
        summaries.sort_by_key(|s| std::cmp::Reverse(s.last_activity()));
        // Each member is read once, however many conversations they share with `me`.
        let mut users: HashMap<UserId, Option<User>> = HashMap::new();
        let mut out = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let mut members = Vec::new();
            for id in &summary.conversation.participants {
                if !users.contains_key(id) {
                    users.insert(*id, self.store.user(*id).await?.map(|r| r.user));
                }
                if let Some(Some(u)) = users.get(id) {
                    members.push(u.clone());
                }
            }
            out.push(ConversationView { summary, members });
        }
        Ok(out)
    }

    /// The conversation `id`, if `me` is a member.
    pub async fn of_member(
        &self,
        me: UserId,
        id: ConversationId,
    ) -> Result<Conversation, ServiceError> {
        match self.store.conversation(id).await? {
            Some(c) if c.has(me) => Ok(c),
            _ => Err(ServiceError::ConversationNotFound),
        }
    }

    /// A page of a conversation `me` is a member of.
    #[tracing::instrument(skip_all, fields(user_id = %me, conversation_id = %id))]
    pub async fn page(
        &self,
        me: UserId,
        id: ConversationId,
        paging: Paging,
    ) -> Result<Page, ServiceError> {
        self.of_member(me, id).await?;
        self.read(id, paging).await
    }

    /// A page of the direct conversation of `me` with `contact`. Its id is derived from
    /// the two users, so only they can name it; an unknown contact has an empty history.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn direct_page(
        &self,
        me: UserId,
        contact: UserId,
        paging: Paging,
    ) -> Result<Page, ServiceError> {
        self.read(ConversationId::direct(me, contact), paging).await
    }

    async fn read(&self, id: ConversationId, paging: Paging) -> Result<Page, ServiceError> {
        match paging {
            Paging::Cursor(range) => self.read_range(id, range).await,
            Paging::Number { page, limit } => self.read_numbered(id, page, limit).await,
        }
    }

    async fn read_range(
        &self,
        id: ConversationId,
        range: HistoryRange,
    ) -> Result<Page, ServiceError> {
        let mut events = self.store.events(id, range).await?;
        let full = events.len() == range.limit;
        let next_before = match events.first() {
            Some(first) if range.from_newest && full && first.seq > 1 => Some(first.seq),
            _ => None,
        };
        let next_after = match events.last() {
            Some(last) if !range.from_newest && full => Some(last.seq),
            _ => None,
        };
        events.retain(is_message);
        Ok(Page {
            conversation: id,
            events,
            next_before,
            next_after,
        })
    }

    /// Skips `(page - 1) * limit` messages from the newest, then takes `limit`: a read
    /// of every message skipped, as skip/limit paging always costs.
    async fn read_numbered(
        &self,
        id: ConversationId,
        page: u64,
        limit: usize,
    ) -> Result<Page, ServiceError> {
        let mut skip = (page.saturating_sub(1)).saturating_mul(limit as u64);
        let mut newest_first = Vec::with_capacity(limit);
        let mut before = None;
        let mut exhausted = false;
        while newest_first.len() < limit && !exhausted {
            let want = skip.saturating_add((limit - newest_first.len()) as u64);
            let chunk = usize::try_from(want).unwrap_or(SCAN).clamp(1, SCAN);
            let range = HistoryRange {
                after: None,
                before,
                limit: chunk,
                from_newest: true,
            };
            let events = self.store.events(id, range).await?;
            exhausted = events.len() < chunk || events.first().is_none_or(|e| e.seq <= 1);
            before = events.first().map(|e| e.seq);
            for e in events.into_iter().rev().filter(is_message) {
                if skip > 0 {
                    skip -= 1;
                } else if newest_first.len() < limit {
                    newest_first.push(e);
                }
            }
        }
        newest_first.reverse();
        let events = newest_first;
        let next_before = events.first().map(|e| e.seq).filter(|&s| s > 1);
        let next_after = events.last().map(|e| e.seq).filter(|_| page > 1);
        Ok(Page {
            conversation: id,
            events,
            next_before,
            next_after,
        })
    }
}

/// Whether an event is listed in history (amendments are folded into their target).
fn is_message(e: &Event) -> bool {
    !matches!(e.kind, EventKind::Amend { .. })
}
