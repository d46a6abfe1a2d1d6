//! Conversations: a caller's list, and pages of one conversation's history. Only
//! members read a conversation; to anyone else it does not exist.

use std::collections::HashMap;
use std::sync::Arc;

use actors::Store;
use actors::domain::{Conversation, ConversationId, ConversationSummary, Event, Seq, User, UserId};
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

/// A page of history, oldest first, with the cursors of the pages around it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The conversation.
    pub conversation: ConversationId,
    /// The events.
    pub events: Vec<Event>,
    /// Pass as `before` for the previous (older) page, when there is one.
    pub next_before: Option<Seq>,
    /// Pass as `after` for the next (newer) page, when there may be one.
    pub next_after: Option<Seq>,
}

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
        range: HistoryRange,
    ) -> Result<Page, ServiceError> {
        self.of_member(me, id).await?;
        self.read(id, range).await
    }

    /// A page of the direct conversation of `me` with `contact`. Its id is derived from
    /// the two users, so only they can name it; an unknown contact has an empty history.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn direct_page(
        &self,
        me: UserId,
        contact: UserId,
        range: HistoryRange,
    ) -> Result<Page, ServiceError> {
        self.read(ConversationId::direct(me, contact), range).await
    }

    async fn read(&self, id: ConversationId, range: HistoryRange) -> Result<Page, ServiceError> {
        let events = self.store.events(id, range).await?;
        let full = events.len() == range.limit;
        let next_before = match events.first() {
            Some(first) if range.from_newest && full && first.seq > 1 => Some(first.seq),
            _ => None,
        };
        let next_after = match events.last() {
            Some(last) if !range.from_newest && full => Some(last.seq),
            _ => None,
        };
        Ok(Page {
            conversation: id,
            events,
            next_before,
            next_after,
        })
    }
}
