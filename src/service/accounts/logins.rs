//! Logins: each sign-in is a login, the family of every access and refresh token
//! descended from it. A refresh trades the current refresh token for a new pair; a
//! refresh token presented again after it was traded (stolen, or replayed) revokes the
//! whole family, since the server cannot tell the thief from the owner. Signing a login
//! out revokes its family and ends its realtime sessions.

use actors::domain::{DeviceName, Login, LoginId, Timestamp, User, UserId};

use super::{Accounts, AuthUser, Issued, login_of};
use crate::auth::RefreshToken;
use crate::service::{ServiceError, TokenProblem};

/// How stale a login's last-seen time may get before a request records a new one: a
/// store write per request would cost more than the minute is worth.
const LAST_SEEN_RESOLUTION_MS: u64 = 60_000;

/// A signed-in device as its owner sees it.
#[derive(Debug, Clone)]
pub struct LoginView {
    /// The login.
    pub login: Login,
    /// Whether the caller's own token belongs to it.
    pub current: bool,
}

impl Accounts {
    /// Starts a login of `user` on `device` and issues its first tokens.
    pub(super) async fn sign_in(
        &self,
        user: User,
        device: DeviceName,
    ) -> Result<Issued, ServiceError> {
        let now = Timestamp::now();
        let id = LoginId::generate();
        let refresh = RefreshToken::generate(user.id, id);
        let login = Login {
            id,
            user: user.id,
            device,
            created_at: now,
            last_seen_at: now,
            refresh_hash: refresh.hash(),
            expires_at: self.refresh_expiry(now),
        };
        self.store.insert_login(&login).await?;
        self.issue(user, id, &refresh)
    }

    /// Trades a refresh token for a new access token and a new refresh token. A token
    /// of a login that was signed out or expired is refused; one that was already
    /// traded revokes its whole family.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, raw: &str) -> Result<Issued, ServiceError> {
        let presented = RefreshToken::parse(raw)
            .map_err(|_| ServiceError::Unauthorized(TokenProblem::Invalid))?;
        let (user, id) = (presented.user, presented.login);
        let Some(login) = self.store.login(user, id).await? else {
            return Err(ServiceError::Unauthorized(TokenProblem::Revoked));
        };
        let presented_hash = presented.hash();
        if login.refresh_hash != presented_hash {
            return Err(self.reused(user, id).await);
        }
        let account = self
            .store
            .user(user)
            .await?
            .ok_or(ServiceError::Unauthorized(TokenProblem::AccountGone))?;
        let next = RefreshToken::generate(user, id);
        let now = Timestamp::now();
        let rotated = self
            .store
            .rotate_login(
                user,
                id,
                presented_hash,
                next.hash(),
                self.refresh_expiry(now),
                now,
            )
            .await?;
        if !rotated {
            // Another request traded the same token first: the token was used twice.
            return Err(self.reused(user, id).await);
        }
        tracing::info!(user_id = %user, login_id = %id, "tokens refreshed");
        self.issue(account.user, id, &next)
    }

    /// The caller's signed-in devices, oldest first.
    #[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
    pub async fn sessions(&self, me: &AuthUser) -> Result<Vec<LoginView>, ServiceError> {
        let current = login_of(&me.claims)?;
        let mut logins = self.store.user_logins(me.user.id).await?;
        logins.sort_by_key(|l| (l.created_at, l.id));
        Ok(logins
            .into_iter()
            .map(|login| LoginView {
                current: Some(login.id) == current,
                login,
            })
            .collect())
    }

    /// Signs one of the caller's devices out: its tokens are refused from now on and
    /// its realtime sessions end at once. Another user's login is as unknown as one
    /// that never existed.
    #[tracing::instrument(skip_all, fields(user_id = %me.user.id, login_id = %id))]
    pub async fn sign_out(&self, me: &AuthUser, id: LoginId) -> Result<(), ServiceError> {
        if !self.store.delete_login(me.user.id, id).await? {
            return Err(ServiceError::SessionNotFound);
        }
        let ended = self.messenger.revoke(me.user.id, Some(&id.to_string()));
        tracing::info!(sessions_ended = ended, "device signed out");
        Ok(())
    }

    /// Refuses a token whose login was signed out or expired; records now and then that
    /// the login is in use.
    pub(super) async fn check_login(&self, user: UserId, id: LoginId) -> Result<(), ServiceError> {
        let Some(login) = self.store.login(user, id).await? else {
            return Err(ServiceError::Unauthorized(TokenProblem::Revoked));
        };
        let now = Timestamp::now();
        if now.as_millis() >= login.last_seen_at.as_millis() + LAST_SEEN_RESOLUTION_MS {
            // Worth a log line, not a refused request.
            if let Err(e) = self.store.touch_login(user, id, now).await {
                tracing::warn!(error = %e, "recording a login's use failed");
            }
        }
        Ok(())
    }

    /// Revokes the family of a refresh token that was used twice, and says so.
    async fn reused(&self, user: UserId, id: LoginId) -> ServiceError {
        tracing::warn!(user_id = %user, login_id = %id, "refresh token reused: signing its login out");
        if let Err(e) = self.store.delete_login(user, id).await {
            return e.into();
        }
        self.messenger.revoke(user, Some(&id.to_string()));
        ServiceError::Unauthorized(TokenProblem::Reused)
    }

    fn issue(
        &self,
        user: User,
        login: LoginId,
        refresh: &RefreshToken,
    ) -> Result<Issued, ServiceError> {
        let (token, _) = self
            .tokens
            .issue(user.id, Some(login))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Issued {
            token,
            refresh_token: refresh.expose(),
            user,
        })
    }

    fn refresh_expiry(&self, now: Timestamp) -> Timestamp {
        let ttl = u64::try_from(self.refresh_ttl.as_millis()).unwrap_or(u64::MAX);
        Timestamp::from_millis(now.as_millis().saturating_add(ttl))
    }
}
