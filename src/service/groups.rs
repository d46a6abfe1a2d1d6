//! Groups: creating one, renaming it, adding and removing members, roles. Every change
//! after creation is a membership event sent through the conversation's actor, which
//! decides it against the group as every earlier event left it (the rules are
//! `Conversation::check`); this service checks what only it can (that the users named
//! exist) and turns "not a member" into "no such conversation", so nobody learns that
//! a group they are not in exists.

use std::collections::BTreeSet;
use std::sync::Arc;

use actors::domain::{
    Conversation, ConversationId, DisplayName, Event, EventKind, MembershipChange, Role, Timestamp,
    User, UserId,
};
use actors::{SendError, SendRequest, Store, Target};

use super::{Blocks, Messaging, ServiceError};

/// A group with its members' accounts.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// The group (its record, with roles and join points).
    pub conversation: Conversation,
    /// The accounts of its members that still exist, in id order.
    pub members: Vec<User>,
}

/// The groups service.
pub struct Groups {
    store: Arc<dyn Store>,
    messaging: Arc<Messaging>,
    blocks: Arc<Blocks>,
    max_members: usize,
}

impl Groups {
    /// The service over this store and messaging, with groups of at most `max_members`.
    pub fn new(
        store: Arc<dyn Store>,
        messaging: Arc<Messaging>,
        blocks: Arc<Blocks>,
        max_members: usize,
    ) -> Self {
        Self {
            store,
            messaging,
            blocks,
            max_members,
        }
    }

    /// Creates a group named `name` owned by `me`, with `members` (`me` need not be
    /// among them); its first event, `created`, is sequenced before this returns.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn create(
        &self,
        me: UserId,
        name: DisplayName,
        members: &[UserId],
    ) -> Result<GroupView, ServiceError> {
        let others: Vec<UserId> = members
            .iter()
            .copied()
            .filter(|u| *u != me)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if others.len() + 1 > self.max_members {
            return Err(SendError::GroupFull.into());
        }
        self.check_exist(me, &others).await?;
        self.messaging.check_rate(me)?;
        let name = name.as_str().to_owned();
        let mut group = Conversation::group(
            ConversationId::generate(),
            me,
            &others,
            name.clone(),
            Timestamp::now(),
        );
        self.store.insert_conversation(&group).await?;
        let created = self
            .change(me, group.id, MembershipChange::Created { name })
            .await?;
        group.apply(&created);
        self.view(group).await
    }

    /// The group `id` with its members, if `me` is one of them.
    pub async fn get(&self, me: UserId, id: ConversationId) -> Result<GroupView, ServiceError> {
        match self.store.conversation(id).await? {
            Some(c) if c.is_group() && c.has(me) => self.view(c).await,
            _ => Err(ServiceError::ConversationNotFound),
        }
    }

    /// Renames the group (owner or admin).
    pub async fn rename(
        &self,
        me: UserId,
        id: ConversationId,
        name: DisplayName,
    ) -> Result<Event, ServiceError> {
        let name = name.as_str().to_owned();
        self.change(me, id, MembershipChange::Renamed { name })
            .await
    }

    /// Adds `users` (owner or admin); every one must exist and none be a member.
    pub async fn add(
        &self,
        me: UserId,
        id: ConversationId,
        users: &[UserId],
    ) -> Result<Event, ServiceError> {
        let users: Vec<UserId> = users
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.check_exist(me, &users).await?;
        self.change(me, id, MembershipChange::Added { users }).await
    }

    /// Removes `user` (owner or admin), or leaves when `user` is `me`.
    pub async fn remove(
        &self,
        me: UserId,
        id: ConversationId,
        user: UserId,
    ) -> Result<Event, ServiceError> {
        let change = if user == me {
            MembershipChange::Left
        } else {
            MembershipChange::Removed { users: vec![user] }
        };
        self.change(me, id, change).await
    }

    /// Makes `user` an admin or a member again (owner only).
    pub async fn set_role(
        &self,
        me: UserId,
        id: ConversationId,
        user: UserId,
        role: Role,
    ) -> Result<Event, ServiceError> {
        self.change(me, id, MembershipChange::RoleChanged { user, role })
            .await
    }

    /// Sequences a membership change; returns its event once it is durable.
    async fn change(
        &self,
        me: UserId,
        id: ConversationId,
        change: MembershipChange,
    ) -> Result<Event, ServiceError> {
        self.messaging.check_rate(me)?;
        let request = SendRequest {
            from: me,
            target: Target::Conversation(id),
            kind: EventKind::Membership(change),
            client_id: None,
            origin: None,
        };
        match self.messaging.send(request).await {
            Ok(sent) => Ok(sent.event.as_ref().clone()),
            // A non-member learns nothing about the group, not even that it exists.
            Err(ServiceError::Send(SendError::NotParticipant)) => {
                Err(ServiceError::ConversationNotFound)
            }
            Err(e) => Err(e),
        }
    }

    /// Every one of `users` exists and does not block `me` (who, to `me`, is no one).
    async fn check_exist(&self, me: UserId, users: &[UserId]) -> Result<(), ServiceError> {
        for user in users {
            if self.store.user(*user).await?.is_none() || self.blocks.blocks(*user, me).await? {
                return Err(SendError::MemberNotFound.into());
            }
        }
        Ok(())
    }

    async fn view(&self, conversation: Conversation) -> Result<GroupView, ServiceError> {
        let mut members = Vec::with_capacity(conversation.participants.len());
        for id in &conversation.participants {
            if let Some(record) = self.store.user(*id).await? {
                members.push(record.user);
            }
        }
        Ok(GroupView {
            conversation,
            members,
        })
    }
}
