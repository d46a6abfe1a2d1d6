//! A conversation's events. The durable stream of a conversation is a sequence of
//! [`Event`]s, each with its seq: messages, edits, deletes and membership changes. What
//! is only of the moment (typing, presence, receipts) is a [`Signal`]: it has no seq, is
//! never part of the stream, and may be dropped under pressure.

use super::{ClientId, ConversationId, EventId, MessageBody, Timestamp, UserId};

/// A position in a conversation's stream: 1, 2, 3… with no gaps.
pub type Seq = u64;

/// One committed entry of a conversation's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique id.
    pub id: EventId,
    /// The conversation it belongs to.
    pub conversation: ConversationId,
    /// Its position in that conversation.
    pub seq: Seq,
    /// Who caused it.
    pub sender: UserId,
    /// The sender's retry key, if one was given.
    pub client_id: Option<ClientId>,
    /// When the server sequenced it.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// The text this event carries (a message's or an edit's), if any.
    pub fn text(&self) -> Option<&MessageBody> {
        match &self.kind {
            EventKind::Message(m) => Some(&m.body),
            EventKind::Edit { content, .. } => Some(content),
            EventKind::Delete { .. } | EventKind::Membership(_) | EventKind::Erased => None,
        }
    }
}

/// What an event records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A message.
    Message(MessageContent),
    /// The sender replaced the text of their message at `target`.
    Edit {
        /// The seq of the edited message.
        target: Seq,
        /// The new text.
        content: MessageBody,
    },
    /// The message at `target` was deleted; its text is erased from the store.
    Delete {
        /// The seq of the deleted message.
        target: Seq,
    },
    /// Someone joined, left or was moved in the conversation.
    Membership(MembershipChange),
    /// A message or an edit whose sender deleted their account: its content is erased
    /// from the store, and only its place in the stream (id, seq, sender, time) is left.
    Erased,
}

impl EventKind {
    /// Whether the event carries content of its sender's that erasing an account must
    /// remove (a message's or an edit's text).
    pub fn has_content(&self) -> bool {
        matches!(self, EventKind::Message(_) | EventKind::Edit { .. })
    }
}

/// A message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent {
    /// What it says.
    pub body: MessageBody,
    /// In a direct conversation, the other participant; set by the conversation, never
    /// by the sender.
    pub receiver: Option<UserId>,
}

impl MessageContent {
    /// A message with this body (its receiver is filled in when it is sequenced).
    pub fn text(body: MessageBody) -> Self {
        Self {
            body,
            receiver: None,
        }
    }
}

/// A change of who is in a conversation, or in which role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MembershipChange {
    /// These users were added.
    Added {
        /// Who.
        users: Vec<UserId>,
    },
    /// These users were removed by the sender.
    Removed {
        /// Who.
        users: Vec<UserId>,
    },
    /// The sender left.
    Left,
    /// The conversation was renamed.
    Renamed {
        /// The new name.
        name: String,
    },
    /// A member's role changed.
    RoleChanged {
        /// Whose.
        user: UserId,
        /// To what.
        role: Role,
    },
}

/// A member's role in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created the group; may do anything in it.
    Owner,
    /// May add and remove members and delete others' messages.
    Admin,
    /// May send, edit and delete their own messages.
    Member,
}

/// Something of the moment: no seq, never stored in a stream, and shed first when a
/// session falls behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The conversation it concerns, if any (presence concerns a user, not one).
    pub conversation: Option<ConversationId>,
    /// Who it is about.
    pub from: UserId,
    /// What it says.
    pub kind: SignalKind,
}

/// What a signal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// The user is (or stopped) typing.
    Typing {
        /// False when they stopped.
        active: bool,
    },
    /// The user's sessions received everything up to `seq`.
    Delivered {
        /// The high-water mark.
        seq: Seq,
    },
    /// The user read everything up to `seq`.
    Read {
        /// The high-water mark.
        seq: Seq,
    },
    /// The user came online or went offline.
    Presence {
        /// Whether any session of theirs is connected.
        online: bool,
        /// When they were last connected, unless they hide it.
        last_seen: Option<Timestamp>,
    },
}
