//! Contacts: adding one by email (both become each other's), and listing them.

use std::sync::Arc;

use actors::Store;
use actors::domain::{Email, Timestamp, User, UserId};

use super::{Blocks, ServiceError};
use crate::auth::KeyedLimiter;

/// The contacts service.
pub struct Contacts {
    store: Arc<dyn Store>,
    blocks: Arc<Blocks>,
    /// Adds per user: each looks an email up, so without a limit the route tells which
    /// emails have accounts as fast as one can ask.
    adds: KeyedLimiter<UserId>,
}

impl Contacts {
    /// The service over this store, allowing `adds_per_minute` adds per user.
    pub fn new(store: Arc<dyn Store>, blocks: Arc<Blocks>, adds_per_minute: u32) -> Self {
        Self {
            store,
            blocks,
            adds: KeyedLimiter::per_minute("contact_adds", adds_per_minute),
        }
    }

    /// Forgets idle rate-limit keys.
    pub fn sweep(&self) {
        self.adds.sweep();
    }

    /// Makes `me` and the owner of `email` contacts of each other; returns the contact.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn add(&self, me: UserId, email: &Email) -> Result<User, ServiceError> {
        self.adds.check(&me)?;
        let other = self
            .store
            .user_by_email(email)
            .await?
            .ok_or(ServiceError::UserNotFound)?
            .user;
        // Someone who blocks `me` is, to `me`, no one with that email.
        if self.blocks.blocks(other.id, me).await? {
            return Err(ServiceError::UserNotFound);
        }
        if other.id == me {
            return Err(ServiceError::CannotAddSelf);
        }
        if !self
            .store
            .add_contacts(me, other.id, Timestamp::now())
            .await?
        {
            return Err(ServiceError::AlreadyContact);
        }
        Ok(other)
    }

    /// The contacts of `me`, sorted by name (then email).
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn list(&self, me: UserId) -> Result<Vec<User>, ServiceError> {
        let ids = self.store.contacts(me).await?;
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.store.user(id).await? {
                users.push(record.user);
            }
        }
        users.sort_by_cached_key(|u| (u.name.as_str().to_lowercase(), u.email.as_str().to_owned()));
        Ok(users)
    }
}
