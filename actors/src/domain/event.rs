//! A conversation's events. The durable stream of a conversation is a sequence of
//! [`Event`]s, each with its seq: messages, amendments, edits, deletes and membership
//! changes. What is only of the moment (typing, presence, receipts, a call ringing) is a
//! [`Signal`]: it has no seq, is never part of the stream, and may be dropped under
//! pressure.

use std::sync::Arc;

use super::{CallType, ClientId, ConversationId, EventId, MessageBody, RoomId, Timestamp, UserId};

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
            EventKind::Message(m) | EventKind::Amend { content: m, .. } => Some(&m.body),
            EventKind::Edit { content, .. } => Some(content),
            EventKind::Delete { .. } | EventKind::Membership(_) | EventKind::Erased => None,
        }
    }

    /// This message as an amendment with `content` leaves it: the amendment's body, type
    /// and call, under the message's own id, sender, client id, time and receiver. Any
    /// other kind of event is returned as it is (only messages are amended). Every store
    /// applies amendments with this, so they agree on what an amended message is.
    pub fn amended(&self, content: &MessageContent) -> Self {
        let mut out = self.clone();
        if let EventKind::Message(m) = &mut out.kind
            && !m.deleted
        {
            m.body = content.body.clone();
            m.content_type = content.content_type;
            m.call = content.call;
        }
        out
    }

    /// This message as `modifier` (an amendment, an edit or a delete of it) leaves it:
    /// amended; edited (the new text, `edited_at` the edit's time); or deleted (its text
    /// erased, marked deleted; a tombstone keeps its id, sender and time, so the stream
    /// keeps its shape). A deleted message stays deleted whatever comes after. Every
    /// store applies modifiers with this, in seq order, in the commit that stores them.
    pub fn modified_by(&self, modifier: &Event) -> Self {
        match &modifier.kind {
            EventKind::Amend { content, .. } => self.amended(content),
            EventKind::Edit { content, .. } => {
                let mut out = self.clone();
                if let EventKind::Message(m) = &mut out.kind
                    && !m.deleted
                {
                    m.body = content.clone();
                    m.edited_at = Some(modifier.at);
                    if !m.edits.contains(&modifier.seq) {
                        m.edits.push(modifier.seq);
                    }
                }
                out
            }
            EventKind::Delete { .. } => {
                let mut out = self.clone();
                if let EventKind::Message(m) = &mut out.kind {
                    m.erase();
                }
                out
            }
            // An erased event (its sender's account is gone) is never brought back.
            EventKind::Message(_) | EventKind::Membership(_) | EventKind::Erased => self.clone(),
        }
    }
}

impl Event {
    /// An edit with its text erased, for when the message it edited is deleted; any
    /// other event is returned as it is.
    pub fn erased_edit(&self) -> Self {
        let mut out = self.clone();
        if let EventKind::Edit { content, .. } = &mut out.kind {
            *content = MessageBody::from_stored(String::new());
        }
        out
    }
}

impl EventKind {
    /// The seq of the message an amendment, edit or delete changes.
    pub fn target(&self) -> Option<Seq> {
        match self {
            EventKind::Amend { target, .. }
            | EventKind::Edit { target, .. }
            | EventKind::Delete { target } => Some(*target),
            EventKind::Message(_) | EventKind::Membership(_) | EventKind::Erased => None,
        }
    }
}

/// What an event records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A message.
    Message(MessageContent),
    /// The message at `target` now has this content (ending a call sets its end). The
    /// store applies it to the target as it appends it, so history reads the message as
    /// amended; the amendment stays in the stream at its own seq, so live sessions and
    /// `sync` learn of it in order.
    Amend {
        /// The seq of the amended message.
        target: Seq,
        /// Its whole new content.
        content: MessageContent,
    },
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
    /// remove (a message's, an amendment's or an edit's text and call).
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            EventKind::Message(_) | EventKind::Amend { .. } | EventKind::Edit { .. }
        )
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
    /// Text, or the kind of call it records.
    pub content_type: ContentType,
    /// For a call: when it started and ended.
    pub call: Option<CallInfo>,
    /// When its sender last edited it.
    pub edited_at: Option<Timestamp>,
    /// The seqs of the edits that changed it: a delete erases their text too, so no
    /// version of a deleted message is left in the store.
    pub edits: Vec<Seq>,
    /// Deleted: its text is erased (a tombstone). Deleting a user's account can leave
    /// the same tombstone.
    pub deleted: bool,
}

impl MessageContent {
    /// A text message with this body (its receiver is filled in when it is sequenced).
    pub fn text(body: MessageBody) -> Self {
        Self {
            body,
            receiver: None,
            content_type: ContentType::Text,
            call: None,
            edited_at: None,
            edits: Vec::new(),
            deleted: false,
        }
    }

    /// The record of a call that started at `started_at` and has not ended.
    pub fn call(body: MessageBody, call_type: CallType, started_at: Timestamp) -> Self {
        Self {
            body,
            receiver: None,
            content_type: call_type.into(),
            call: Some(CallInfo {
                started_at,
                ended_at: None,
            }),
            edited_at: None,
            edits: Vec::new(),
            deleted: false,
        }
    }

    /// Erases what it says and marks it deleted; what remains is who sent it, when and
    /// of what type, so history keeps its shape.
    pub fn erase(&mut self) {
        self.body = MessageBody::from_stored(String::new());
        self.deleted = true;
    }
}

/// What a message is: text, or the record of a video or audio call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentType {
    /// A text message.
    #[default]
    Text,
    /// A video call.
    Video,
    /// An audio call.
    Audio,
}

impl From<CallType> for ContentType {
    fn from(t: CallType) -> Self {
        match t {
            CallType::Video => ContentType::Video,
            CallType::Audio => ContentType::Audio,
        }
    }
}

/// When a call recorded as a message started and ended. Its room is the message's two
/// participants; its type is the message's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallInfo {
    /// When it was started.
    pub started_at: Timestamp,
    /// When it ended, once it has.
    pub ended_at: Option<Timestamp>,
}

impl CallInfo {
    /// How long it lasted, in whole seconds, once it has ended.
    pub fn duration_secs(&self) -> Option<u64> {
        self.ended_at
            .map(|end| end.as_millis().saturating_sub(self.started_at.as_millis()) / 1000)
    }
}

/// A change of who is in a conversation, or in which role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MembershipChange {
    /// The sender created the group with this name (its first event).
    Created {
        /// The group's name.
        name: String,
    },
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A call between the signal's sender and its recipient rings, is answered or ends.
    Call(CallSignal),
}

/// What happened to a call, for the other party's sessions. The signalling data is the
/// clients' own (WebRTC offers and answers): opaque here, carried as the edge encoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallSignal {
    /// The sender calls.
    Incoming {
        /// The call's room.
        room: RoomId,
        /// Video or audio.
        call_type: CallType,
        /// The caller's signalling data.
        data: Arc<str>,
    },
    /// The sender answered.
    Accepted {
        /// The call's room.
        room: RoomId,
        /// The answerer's signalling data.
        data: Arc<str>,
    },
    /// The sender hung up.
    Ended {
        /// The call's room.
        room: RoomId,
    },
}
