//! Conversations: direct (two people, derived id) and groups (named, with roles).
//!
//! A group's membership is changed only by membership events of its own stream. The
//! same function, [`Conversation::apply`], folds such an event into the record in the
//! conversation actor (its in-memory state) and in both stores (in the commit that
//! stores the event), so the record and the stream cannot disagree about what a change
//! means. Whether a change is allowed is [`Conversation::check`], decided by the actor
//! when it sequences the event: two admins removing each other, or a send racing a
//! removal, are decided in seq order, the order every member sees.

use std::collections::BTreeMap;

use super::{ConversationId, Event, EventKind, MembershipChange, Role, Seq, Timestamp, UserId};

/// A conversation and who is in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Its participants (a group's current members), sorted.
    pub participants: Vec<UserId>,
    /// When it was created.
    pub created_at: Timestamp,
    /// For a group: its name, roles and join points. `None` for a direct conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
}

/// What a group has beyond its participants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// Its name (a `DisplayName` when set through the API; stored as text).
    pub name: String,
    /// Every current member, with their role and the first seq they may read.
    pub members: BTreeMap<UserId, Member>,
    /// The seq of the last membership event folded in (0 before the first): applying
    /// an event at or below it again changes nothing, so a retried commit is harmless.
    pub as_of: Seq,
}

/// One member of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// What they may do.
    pub role: Role,
    /// The seq of the event that added them: they read history from there on.
    pub since: Seq,
}

/// Why a conversation refuses an event from a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The sender is not a member (or the conversation does not exist for them).
    NotMember,
    /// The sender's role does not allow it, or the conversation has no such thing.
    NotAllowed,
    /// A user to add is a member already.
    AlreadyMember,
    /// A user to remove, or whose role to change, is not a member.
    UnknownMember,
    /// It would take the group over its member cap.
    Full,
    /// The message to edit or delete does not exist (or is no message).
    UnknownMessage,
    /// The message to edit or delete is deleted already.
    Deleted,
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
            group: None,
        }
    }

    /// A new group named `name`, owned by `owner`, with `others` as members; everyone
    /// reads from seq 1, the group's creation event.
    pub fn group(
        id: ConversationId,
        owner: UserId,
        others: &[UserId],
        name: String,
        created_at: Timestamp,
    ) -> Self {
        let mut members = BTreeMap::new();
        for user in others {
            members.insert(
                *user,
                Member {
                    role: Role::Member,
                    since: 1,
                },
            );
        }
        members.insert(
            owner,
            Member {
                role: Role::Owner,
                since: 1,
            },
        );
        let participants = members.keys().copied().collect();
        Self {
            id,
            participants,
            created_at,
            group: Some(Group {
                name,
                members,
                as_of: 0,
            }),
        }
    }

    /// Whether `user` takes part.
    pub fn has(&self, user: UserId) -> bool {
        self.participants.contains(&user)
    }

    /// Whether it is a group.
    pub fn is_group(&self) -> bool {
        self.group.is_some()
    }

    /// `user`'s role in a group (`None` in a direct conversation, or for a non-member).
    pub fn role(&self, user: UserId) -> Option<Role> {
        self.group
            .as_ref()
            .and_then(|g| g.members.get(&user))
            .map(|m| m.role)
    }

    /// The first seq `user` may read: 1, but for a member added to a group later, the
    /// seq of the event that added them.
    pub fn visible_from(&self, user: UserId) -> Seq {
        self.group
            .as_ref()
            .and_then(|g| g.members.get(&user))
            .map_or(1, |m| m.since.max(1))
    }

    /// In a direct conversation, the participant other than `user`.
    pub fn other_than(&self, user: UserId) -> Option<UserId> {
        if self.group.is_some() {
            return None;
        }
        match self.participants.as_slice() {
            [a, b] if self.id == ConversationId::direct(*a, *b) => {
                Some(if *a == user { *b } else { *a })
            }
            _ => None,
        }
    }

    /// Whether `from` may put an event of this kind into the conversation now, in a
    /// group of at most `cap` members. Edits and deletes are checked against their
    /// target elsewhere; here only membership counts for them.
    pub fn check(&self, from: UserId, kind: &EventKind, cap: usize) -> Result<(), Refusal> {
        if !self.has(from) {
            return Err(Refusal::NotMember);
        }
        let change = match kind {
            EventKind::Membership(change) => change,
            _ => return Ok(()),
        };
        let Some(group) = &self.group else {
            return Err(Refusal::NotAllowed);
        };
        let role = self.role(from).ok_or(Refusal::NotMember)?;
        let manages = matches!(role, Role::Owner | Role::Admin);
        match change {
            MembershipChange::Created { .. } if group.as_of == 0 && role == Role::Owner => Ok(()),
            MembershipChange::Created { .. } => Err(Refusal::NotAllowed),
            MembershipChange::Renamed { .. } if manages => Ok(()),
            MembershipChange::Added { users } if manages => {
                if users.is_empty() {
                    return Err(Refusal::NotAllowed);
                }
                if users.iter().any(|u| self.has(*u)) {
                    return Err(Refusal::AlreadyMember);
                }
                if group.members.len() + users.len() > cap {
                    return Err(Refusal::Full);
                }
                Ok(())
            }
            MembershipChange::Removed { users } if manages => {
                if users.is_empty() || users.contains(&from) {
                    // Leaving is its own change.
                    return Err(Refusal::NotAllowed);
                }
                for user in users {
                    match self.role(*user) {
                        None => return Err(Refusal::UnknownMember),
                        Some(Role::Owner) => return Err(Refusal::NotAllowed),
                        Some(_) => {}
                    }
                }
                Ok(())
            }
            MembershipChange::Left => Ok(()),
            MembershipChange::RoleChanged { user, role: to } if role == Role::Owner => {
                if *to == Role::Owner || *user == from {
                    return Err(Refusal::NotAllowed);
                }
                if !self.has(*user) {
                    return Err(Refusal::UnknownMember);
                }
                Ok(())
            }
            _ => Err(Refusal::NotAllowed),
        }
    }

    /// Whether `from` may edit or delete `target` (the message an `Edit` or `Delete`
    /// names, as stored; `None` when there is none). A sender edits their own text
    /// messages; a sender deletes their own messages, and a group's owner and admins
    /// anyone's. Any other kind is allowed here.
    pub fn check_target(
        &self,
        from: UserId,
        kind: &EventKind,
        target: Option<&Event>,
    ) -> Result<(), Refusal> {
        let editing = match kind {
            EventKind::Edit { .. } => true,
            EventKind::Delete { .. } => false,
            _ => return Ok(()),
        };
        let Some(target) = target else {
            return Err(Refusal::UnknownMessage);
        };
        let EventKind::Message(m) = &target.kind else {
            return Err(Refusal::UnknownMessage);
        };
        // Someone added later cannot reach what came before them.
        if target.seq < self.visible_from(from) {
            return Err(Refusal::UnknownMessage);
        }
        if m.deleted {
            return Err(Refusal::Deleted);
        }
        let own = target.sender == from;
        let moderates = matches!(self.role(from), Some(Role::Owner | Role::Admin));
        match (editing, own) {
            (true, true) if m.call.is_none() => Ok(()),
            (false, true) => Ok(()),
            (false, false) if moderates => Ok(()),
            _ => Err(Refusal::NotAllowed),
        }
    }

    /// Folds a membership event into the record; any other event, an event of another
    /// conversation, or one already folded in (seq at or below `as_of`) changes
    /// nothing. Total: a change that does not fit (removing a non-member) is skipped
    /// rather than refused, since the event is already in the stream. Returns whether
    /// the record changed.
    pub fn apply(&mut self, event: &Event) -> bool {
        let EventKind::Membership(change) = &event.kind else {
            return false;
        };
        if event.conversation != self.id {
            return false;
        }
        let Some(group) = &mut self.group else {
            return false;
        };
        if event.seq <= group.as_of {
            return false;
        }
        group.as_of = event.seq;
        match change {
            MembershipChange::Created { .. } => {}
            MembershipChange::Added { users } => {
                for user in users {
                    group.members.entry(*user).or_insert(Member {
                        role: Role::Member,
                        since: event.seq,
                    });
                }
            }
            MembershipChange::Removed { users } => {
                for user in users {
                    if group
                        .members
                        .get(user)
                        .is_some_and(|m| m.role != Role::Owner)
                    {
                        group.members.remove(user);
                    }
                }
            }
            MembershipChange::Left => {
                let was_owner = group
                    .members
                    .remove(&event.sender)
                    .is_some_and(|m| m.role == Role::Owner);
                if was_owner {
                    // A group always has an owner while it has members: the longest-
                    // standing admin, else the longest-standing member (ties by id).
                    let heir = group
                        .members
                        .iter()
                        .min_by_key(|(id, m)| (m.role != Role::Admin, m.since, **id))
                        .map(|(id, _)| *id);
                    if let Some(heir) = heir.and_then(|h| group.members.get_mut(&h)) {
                        heir.role = Role::Owner;
                    }
                }
            }
            MembershipChange::Renamed { name } => group.name.clone_from(name),
            MembershipChange::RoleChanged { user, role } => {
                if *role != Role::Owner
                    && let Some(m) = group.members.get_mut(user)
                    && m.role != Role::Owner
                {
                    m.role = *role;
                }
            }
        }
        self.participants = group.members.keys().copied().collect();
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventId;

    fn membership(
        conv: &Conversation,
        seq: Seq,
        sender: UserId,
        change: MembershipChange,
    ) -> Event {
        Event {
            id: EventId::generate(),
            conversation: conv.id,
            seq,
            sender,
            client_id: None,
            at: Timestamp::from_millis(1),
            kind: EventKind::Membership(change),
        }
    }

    fn team() -> (Conversation, UserId, UserId, UserId) {
        let (ada, bob, cy) = (UserId::generate(), UserId::generate(), UserId::generate());
        let id = ConversationId::from_bytes([9; 16]);
        let g = Conversation::group(id, ada, &[bob], "Team".into(), Timestamp::from_millis(0));
        (g, ada, bob, cy)
    }

    #[test]
    fn a_member_added_later_reads_from_the_event_that_added_them() {
        let (mut g, ada, bob, cy) = team();
        assert!(g.apply(&membership(
            &g,
            4,
            ada,
            MembershipChange::Added { users: vec![cy] }
        )));
        assert_eq!(g.visible_from(cy), 4);
        assert_eq!(g.visible_from(bob), 1);
        assert!(g.has(cy));
        // The same event again (a retried commit) changes nothing.
        assert!(!g.apply(&membership(
            &g,
            4,
            ada,
            MembershipChange::Added { users: vec![cy] }
        )));
    }

    #[test]
    fn two_admins_removing_each_other_are_decided_in_seq_order() {
        let (mut g, ada, bob, cy) = team();
        g.apply(&membership(
            &g,
            2,
            ada,
            MembershipChange::Added { users: vec![cy] },
        ));
        for user in [bob, cy] {
            let change = MembershipChange::RoleChanged {
                user,
                role: Role::Admin,
            };
            let seq = g.group.as_ref().unwrap().as_of + 1;
            g.apply(&membership(&g, seq, ada, change));
        }
        let bob_removes_cy = EventKind::Membership(MembershipChange::Removed { users: vec![cy] });
        let cy_removes_bob = EventKind::Membership(MembershipChange::Removed { users: vec![bob] });
        assert_eq!(g.check(bob, &bob_removes_cy, 10), Ok(()));
        g.apply(&membership(
            &g,
            5,
            bob,
            MembershipChange::Removed { users: vec![cy] },
        ));
        assert_eq!(g.check(cy, &cy_removes_bob, 10), Err(Refusal::NotMember));
    }

    #[test]
    fn members_cannot_manage_and_nobody_removes_the_owner() {
        let (g, ada, bob, cy) = team();
        let add = EventKind::Membership(MembershipChange::Added { users: vec![cy] });
        assert_eq!(g.check(bob, &add, 10), Err(Refusal::NotAllowed));
        assert_eq!(g.check(ada, &add, 2), Err(Refusal::Full));
        assert_eq!(g.check(ada, &add, 3), Ok(()));
        let readd = EventKind::Membership(MembershipChange::Added { users: vec![bob] });
        assert_eq!(g.check(ada, &readd, 10), Err(Refusal::AlreadyMember));
        let remove_owner = EventKind::Membership(MembershipChange::Removed { users: vec![ada] });
        assert_eq!(g.check(bob, &remove_owner, 10), Err(Refusal::NotAllowed));
        let remove_stranger = EventKind::Membership(MembershipChange::Removed { users: vec![cy] });
        assert_eq!(
            g.check(ada, &remove_stranger, 10),
            Err(Refusal::UnknownMember)
        );
    }

    #[test]
    fn an_owner_who_leaves_hands_the_group_on() {
        let (mut g, ada, bob, _) = team();
        g.apply(&membership(&g, 2, ada, MembershipChange::Left));
        assert!(!g.has(ada));
        assert_eq!(g.role(bob), Some(Role::Owner));
    }

    #[test]
    fn direct_conversations_have_no_membership_changes() {
        let (a, b) = (UserId::generate(), UserId::generate());
        let d = Conversation::direct(a, b, Timestamp::from_millis(0));
        let rename = EventKind::Membership(MembershipChange::Renamed { name: "x".into() });
        assert_eq!(d.check(a, &rename, 10), Err(Refusal::NotAllowed));
        assert_eq!(d.other_than(a), Some(b));
    }
}
