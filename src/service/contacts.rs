//! Contacts: adding one by email (both become each other's), and listing them.

use std::sync::Arc;

use actors::Store;
use actors::domain::{Email, Timestamp, User, UserId};

use super::ServiceError;

/// The contacts service.
pub struct Contacts {
    store: Arc<dyn Store>,
}

impl Contacts {
    /// The service over this store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Makes `me` and the owner of `email` contacts of each other; returns the contact.
    #[tracing::instrument(skip_all, fields(user_id = %me))]
    pub async fn add(&self, me: UserId, email: &Email) -> Result<User, ServiceError> {
        let other = self
            .store
            .user_by_email(email)
            .await?
            .ok_or(ServiceError::UserNotFound)?
            .user;
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
