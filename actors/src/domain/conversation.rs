//! Conversations.

use super::{ConversationId, Message, Timestamp, UserId};

/// A conversation and who is in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Its participants, sorted.
    pub participants: Vec<UserId>,
    /// When it was created.
    pub created_at: Timestamp,
}

impl Conversation {
    /// The direct conversation between two users.
    pub fn direct(a: UserId, b: UserId, created_at: Timestamp) -> Self {
        let mut participants = vec![a, b];
        participants.sort();
        Self {
            id: ConversationId::direct(a, b),
            participants,
            created_at,
        }
    }

    /// Whether `user` takes part.
    pub fn has(&self, user: UserId) -> bool {
        self.participants.contains(&user)
    }
}

/// A conversation with its latest message, for conversation lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// Its newest message, if any.
    pub last_message: Option<Message>,
}

impl ConversationSummary {
    /// When anything last happened in the conversation.
    pub fn last_activity(&self) -> Timestamp {
        self.last_message
            .as_ref()
            .map_or(self.conversation.created_at, |m| m.sent_at)
    }
}
