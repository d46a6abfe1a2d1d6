//! Accounts: registering, logging in and out, and authenticating a token. The rules of
//! who may get a token live here, whatever transport asked.

use std::net::IpAddr;
use std::sync::Arc;

use actors::domain::{DisplayName, Email, Password, Timestamp, User, UserId, UserRecord};
use actors::store::InsertUserError;
use actors::{Messenger, Store};

use super::{ServiceError, TokenProblem};
use crate::auth::{
    Claims, KeyedLimiter, LoginGuard, LoginPolicy, PasswordHasher, TokenError, Tokens,
};
use crate::config::Config;

/// The authenticated caller: who, with which token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Who.
    pub user: User,
    /// With which token.
    pub claims: Claims,
}

/// A fresh token and the account it is for.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The bearer token.
    pub token: String,
    /// Its account.
    pub user: User,
}

/// The accounts service.
pub struct Accounts {
    store: Arc<dyn Store>,
    messenger: Messenger,
    tokens: Tokens,
    hasher: PasswordHasher,
    /// Login attempts per email and client address, with backoff: guessing from one
    /// address slows down without refusing the owner elsewhere.
    login: LoginGuard,
    auth_by_address: KeyedLimiter<IpAddr>,
}

impl Accounts {
    /// The service over this store, with the limits `config` asks for.
    pub fn new(
        store: Arc<dyn Store>,
        messenger: Messenger,
        tokens: Tokens,
        hasher: PasswordHasher,
        config: &Config,
    ) -> Self {
        Self {
            store,
            messenger,
            tokens,
            hasher,
            login: LoginGuard::new(LoginPolicy::new(
                config.login_failures_per_address,
                config.login_per_email_per_minute,
            )),
            auth_by_address: KeyedLimiter::per_minute(
                "auth_by_address",
                config.auth_per_address_per_minute,
            ),
        }
    }

    /// Counts an attempt to register or log in from `address` (a client's rate key).
    pub fn check_address(&self, address: IpAddr) -> Result<(), ServiceError> {
        Ok(self.auth_by_address.check(&address)?)
    }

    /// Creates an account and issues it a token.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        name: DisplayName,
        email: Email,
        password: Password,
    ) -> Result<Issued, ServiceError> {
        // Cheap early answer; the conditional insert below is what guarantees uniqueness.
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(ServiceError::EmailTaken);
        }
        let password_hash = self.hasher.hash(&password).await?;
        let record = UserRecord {
            user: User {
                id: UserId::generate(),
                name,
                email,
            },
            password_hash,
            created_at: Timestamp::now(),
        };
        match self.store.insert_user(&record).await {
            Ok(()) => {}
            Err(InsertUserError::EmailTaken) => return Err(ServiceError::EmailTaken),
            Err(InsertUserError::Store(e)) => return Err(e.into()),
        }
        tracing::info!(user_id = %record.user.id, "account created");
        self.issue(record.user)
    }

    /// A token for valid credentials. An unknown email and a wrong password get the same
    /// answer after the same work.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: Email,
        password: &str,
        client: IpAddr,
    ) -> Result<Issued, ServiceError> {
        let attempt = self.login.begin(email.as_str(), client)?;
        let record = self.store.user_by_email(&email).await?;
        let hash = record.as_ref().map(|r| r.password_hash.as_str());
        let valid = self.hasher.verify(password, hash).await?;
        let Some(record) = record.filter(|_| valid) else {
            attempt.failed();
            return Err(ServiceError::InvalidCredentials);
        };
        attempt.succeeded();
        self.issue(record.user)
    }

    /// Revokes the token the caller used, for the rest of its lifetime, and ends at once
    /// the realtime sessions opened with it.
    #[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
    pub async fn logout(&self, me: &AuthUser) -> Result<(), ServiceError> {
        self.store
            .revoke_token(&me.claims.jti, me.claims.accepted_until())
            .await?;
        // After the store, so a session attaching meanwhile either is ended here or
        // finds the token revoked when it re-checks (see `Messaging::open`).
        self.messenger.revoke(me.user.id, Some(&me.claims.jti));
        Ok(())
    }

    /// Verifies a token completely: signature, algorithm, expiry, revocation, account.
    pub async fn authenticate(&self, token: &str) -> Result<AuthUser, ServiceError> {
        let claims = self.tokens.verify(token).map_err(|e| {
            ServiceError::Unauthorized(match e {
                TokenError::Expired => TokenProblem::Expired,
                _ => TokenProblem::Invalid,
            })
        })?;
        let invalid = ServiceError::Unauthorized(TokenProblem::Invalid);
        let id = claims.user_id().map_err(|_| invalid.clone())?;
        // Our tokens carry a UUID; anything else was not issued here.
        if claims.jti.is_empty() || claims.jti.len() > 64 {
            return Err(invalid);
        }
        if self.store.is_token_revoked(&claims.jti).await? {
            return Err(ServiceError::Unauthorized(TokenProblem::Revoked));
        }
        let record = self
            .store
            .user(id)
            .await?
            .ok_or(ServiceError::Unauthorized(TokenProblem::AccountGone))?;
        Ok(AuthUser {
            user: record.user,
            claims,
        })
    }

    /// Deletes revocations (and other records) that have expired by `now`; returns how
    /// many. A scan of all of them: run it now and then, not per request.
    pub async fn collect_expired(&self, now: Timestamp) -> Result<usize, ServiceError> {
        Ok(self.store.collect_expired(now).await?)
    }

    /// Forgets idle rate-limit keys.
    pub fn sweep(&self) {
        self.login.sweep();
        self.auth_by_address.sweep();
    }

    fn issue(&self, user: User) -> Result<Issued, ServiceError> {
        let (token, _) = self
            .tokens
            .issue(user.id)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Issued { token, user })
    }
}
