//! Accounts: registering, logging in and out, and authenticating a token. The rules of
//! who may get a token live here, whatever transport asked.
//!
//! - `logins`: every sign-in is a login (a token family): issuing its tokens, rotating
//!   its refresh token with reuse detection, listing and signing out devices.
//! - `lifecycle`: changing the password (which signs the other devices out) and
//!   deleting the account (which erases its messages' content).

use std::net::IpAddr;
use std::sync::Arc;

use actors::domain::{
    DeviceName, DisplayName, Email, Password, Timestamp, User, UserId, UserRecord,
};
use actors::store::InsertUserError;
use actors::{Messenger, Store};

use super::{ServiceError, TokenProblem};
use crate::auth::{
    Claims, KeyedLimiter, LoginGuard, LoginPolicy, PasswordHasher, TokenError, Tokens,
};
use crate::config::Config;

mod lifecycle;
mod logins;

pub use logins::LoginView;

/// The authenticated caller: who, with which token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Who.
    pub user: User,
    /// With which token.
    pub claims: Claims,
}

/// Fresh tokens and the account they are for.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The bearer (access) token.
    pub token: String,
    /// The refresh token: trades for new tokens once, at `POST /api/auth/refresh`.
    pub refresh_token: String,
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
    /// address slows down without refusing the owner elsewhere. Confirming a password
    /// (to change it, or to delete the account) counts here too.
    login: LoginGuard,
    auth_by_address: KeyedLimiter<IpAddr>,
    /// Account requests (sessions, password, deletion) per user.
    account_by_user: KeyedLimiter<UserId>,
    refresh_ttl: std::time::Duration,
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
            account_by_user: KeyedLimiter::per_minute(
                "account_by_user",
                config.account_requests_per_minute,
            ),
            refresh_ttl: config.refresh_ttl,
        }
    }

    /// Counts an attempt to register, log in or refresh from `address` (a client's rate
    /// key).
    pub fn check_address(&self, address: IpAddr) -> Result<(), ServiceError> {
        Ok(self.auth_by_address.check(&address)?)
    }

    /// Counts an account request of `user`.
    pub fn check_account_request(&self, user: UserId) -> Result<(), ServiceError> {
        Ok(self.account_by_user.check(&user)?)
    }

    /// Creates an account and signs it in on `device`.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        name: DisplayName,
        email: Email,
        password: Password,
        device: DeviceName,
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
        self.sign_in(record.user, device).await
    }

    /// Tokens for valid credentials, signed in on `device`. An unknown email and a
    /// wrong password get the same answer after the same work.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: Email,
        password: &str,
        client: IpAddr,
        device: DeviceName,
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
        self.sign_in(record.user, device).await
    }

    /// Signs the caller's device out: revokes the token used for the rest of its
    /// lifetime and its whole login (so its refresh token is dead too), and ends at
    /// once the realtime sessions opened with it.
    #[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
    pub async fn logout(&self, me: &AuthUser) -> Result<(), ServiceError> {
        self.store
            .revoke_token(&me.claims.jti, me.claims.accepted_until())
            .await?;
        if let Some(login) = login_of(&me.claims)? {
            self.store.delete_login(me.user.id, login).await?;
        }
        // After the store, so a session attaching meanwhile either is ended here or
        // finds the token revoked when it re-checks (see `Messaging::open`).
        self.messenger
            .revoke(me.user.id, Some(me.claims.credential()));
        Ok(())
    }

    /// Verifies a token completely: signature, algorithm, expiry, revocation, its login
    /// (still signed in), account.
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
        if let Some(login) = login_of(&claims)? {
            self.check_login(id, login).await?;
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
        self.account_by_user.sweep();
    }

    /// Checks `password` as the caller's own, with the login guard's backoff: a stolen
    /// access token must not become a way to guess the password.
    async fn confirm_password(
        &self,
        me: &AuthUser,
        password: &str,
        client: IpAddr,
    ) -> Result<UserRecord, ServiceError> {
        let attempt = self.login.begin(me.user.email.as_str(), client)?;
        let record = self
            .store
            .user(me.user.id)
            .await?
            .ok_or(ServiceError::Unauthorized(TokenProblem::AccountGone))?;
        if !self
            .hasher
            .verify(password, Some(&record.password_hash))
            .await?
        {
            attempt.failed();
            return Err(ServiceError::WrongPassword);
        }
        attempt.succeeded();
        Ok(record)
    }
}

/// The login a token belongs to, if any; a malformed `sid` is an invalid token.
fn login_of(claims: &Claims) -> Result<Option<actors::domain::LoginId>, ServiceError> {
    claims
        .login_id()
        .map_err(|_| ServiceError::Unauthorized(TokenProblem::Invalid))
}
