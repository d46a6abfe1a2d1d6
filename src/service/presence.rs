//! Presence: online and offline, and when a user was last seen, for the people they
//! share something with (their contacts and the members of their conversations) and
//! nobody else. A user's first session coming up and last session going away are told
//! to those people as signals, on the sheddable lane; the state at any moment is a
//! REST read. A user may hide their last seen time, never that they are online.
//!
//! Best effort, on purpose: two sessions opening or closing at the same instant may
//! both or neither be counted first or last, and signals are shed under pressure; the
//! REST read is the correction.

use std::collections::BTreeSet;
use std::sync::Arc;

use actors::domain::{Signal, SignalKind, Timestamp, UserId};
use actors::{Messenger, Store};

use super::{Blocks, ServiceError};

/// One person's presence as someone else may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceView {
    /// Whose.
    pub user: UserId,
    /// Whether any session of theirs is connected.
    pub online: bool,
    /// When their last session ended, unless they hide it.
    pub last_seen: Option<Timestamp>,
}

/// The presence service.
pub struct Presence {
    store: Arc<dyn Store>,
    messenger: Messenger,
    blocks: Arc<Blocks>,
}

impl Presence {
    /// The service over this store and actor tree.
    pub fn new(store: Arc<dyn Store>, messenger: Messenger, blocks: Arc<Blocks>) -> Self {
        Self {
            store,
            messenger,
            blocks,
        }
    }

    /// A session of `me` came up: if it is their only one (on any node), they are
    /// online.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn connected(&self, me: UserId) -> Result<(), ServiceError> {
        if self.messenger.live_sessions(me) != 1
            || !self.messenger.online_elsewhere(&[me]).await.is_empty()
        {
            return Ok(());
        }
        let audience = self.audience(me).await?;
        let signal = Signal {
            conversation: None,
            from: me,
            kind: SignalKind::Presence {
                online: true,
                last_seen: None,
            },
        };
        self.messenger.signal(&audience, signal, None);
        Ok(())
    }

    /// A session of `me` ended: if none is left (on any node), they are offline, last
    /// seen now.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn disconnected(&self, me: UserId) -> Result<(), ServiceError> {
        if self.messenger.is_online(me).await {
            return Ok(());
        }
        let now = Timestamp::now();
        self.store.set_last_seen(me, now).await?;
        let hidden = self.store.presence(me).await?.hide_last_seen;
        let audience = self.audience(me).await?;
        let signal = Signal {
            conversation: None,
            from: me,
            kind: SignalKind::Presence {
                online: false,
                last_seen: (!hidden).then_some(now),
            },
        };
        self.messenger.signal(&audience, signal, None);
        Ok(())
    }

    /// The presence of everyone `me` may see it of, in id order.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn visible_to(&self, me: UserId) -> Result<Vec<PresenceView>, ServiceError> {
        let audience = self.audience(me).await?;
        let (here, away): (Vec<UserId>, Vec<UserId>) = audience
            .iter()
            .partition(|u| self.messenger.has_live_session(**u));
        // One question to the other nodes for everyone not online here.
        let online: BTreeSet<UserId> = here
            .into_iter()
            .chain(self.messenger.online_elsewhere(&away).await)
            .collect();
        let mut out = Vec::new();
        for user in audience {
            let record = self.store.presence(user).await?;
            out.push(PresenceView {
                user,
                online: online.contains(&user),
                last_seen: record.last_seen.filter(|_| !record.hide_last_seen),
            });
        }
        Ok(out)
    }

    /// Hides (or shows again) `me`'s last seen time.
    pub async fn set_hide_last_seen(&self, me: UserId, hide: bool) -> Result<(), ServiceError> {
        Ok(self.store.set_hide_last_seen(me, hide).await?)
    }

    /// Who may see `user`'s presence: their contacts and the members of their
    /// conversations, without `user` and without anyone either of them blocks.
    /// Symmetric: `a` is in `b`'s audience exactly when `b` is in `a`'s.
    async fn audience(&self, user: UserId) -> Result<Vec<UserId>, ServiceError> {
        let mut people: BTreeSet<UserId> = self.store.contacts(user).await?.into_iter().collect();
        for id in self.store.user_conversations(user).await? {
            if let Some(c) = self.store.conversation(id).await? {
                people.extend(c.participants);
            }
        }
        people.remove(&user);
        let people: Vec<UserId> = people.into_iter().collect();
        let apart = self.blocks.apart_from(user, &people).await?;
        Ok(people.into_iter().filter(|p| !apart.contains(p)).collect())
    }
}
