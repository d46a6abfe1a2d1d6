//! Conversations.

use super::{ConversationId, Event, Timestamp, UserId};

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

    /// In a direct conversation, the participant other than `user`.
    pub fn other_than(&self, user: UserId) -> Option<UserId> {
        match self.participants.as_slice() {
            [a, b] if self.id == ConversationId::direct(*a, *b) => {
                Some(if *a == user { *b } else { *a })
            }
            _ => None,
        }
    }
}

/// A conversation with its latest event, for conversation lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// Its newest event, if any.
    pub last_event: Option<Event>,
}

impl ConversationSummary {
    /// When anything last happened in the conversation.
    pub fn last_activity(&self) -> Timestamp {
        self.last_event
            .as_ref()
            .map_or(self.conversation.created_at, |e| e.at)
    }
}
