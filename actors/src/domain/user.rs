//! Accounts.

use super::{DisplayName, Email, Timestamp, UserId};

/// What anyone may see of an account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// The account's id.
    pub id: UserId,
    /// Its display name.
    pub name: DisplayName,
    /// Its normalised email.
    pub email: Email,
}

/// An account as stored: the public part plus the password hash.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserRecord {
    /// The public part.
    pub user: User,
    /// The argon2id hash in PHC string form.
    pub password_hash: String,
    /// When the account was created.
    pub created_at: Timestamp,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("user", &self.user)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}
