//! JSON Web Tokens: HS256 only (the algorithm is pinned, so `none` or an RSA public key
//! passed off as an HMAC secret is refused), with `sub`, `iat`, `exp` and `jti`, expiry
//! required, and revocation by `jti`; tokens issued with a login also carry its id as
//! `sid`, so signing the login out revokes every token of it at once. Tokens issued
//! before logins existed have no `sid` and are still accepted until they expire.

use std::time::Duration;

use actors::domain::{LoginId, Timestamp, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Tokens longer than this are refused unread.
const MAX_TOKEN_BYTES: usize = 4096;

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// Unique token id, the handle for revocation.
    pub jti: String,
    /// The login (token family) the token belongs to, if it was issued with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Claims {
    /// The user the token belongs to.
    pub fn user_id(&self) -> Result<UserId, TokenError> {
        self.sub.parse().map_err(|_| TokenError::Invalid)
    }

    /// The login the token belongs to; `None` for a token issued without one. A `sid`
    /// that is not an id was not issued here.
    pub fn login_id(&self) -> Result<Option<LoginId>, TokenError> {
        self.sid
            .as_deref()
            .map(|s| s.parse().map_err(|_| TokenError::Invalid))
            .transpose()
    }

    /// What a realtime session opened with this token is known by, so revoking it ends
    /// exactly the right sessions: the login's id, or the token's own for a token
    /// without one.
    pub fn credential(&self) -> &str {
        self.sid.as_deref().unwrap_or(&self.jti)
    }

    /// When the token expires.
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_millis(self.exp.saturating_mul(1000))
    }

    /// The last moment [`Tokens::verify`] accepts the token: its expiry plus the clock
    /// leeway. A revocation must be remembered until then.
    pub fn accepted_until(&self) -> Timestamp {
        Timestamp::from_millis(self.exp.saturating_add(LEEWAY_SECS).saturating_mul(1000))
    }
}

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// Why a token was refused. Callers answer every case with the same 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Malformed, wrongly signed, wrong algorithm, not yet valid or oversized.
    #[error("invalid token")]
    Invalid,
    /// Correctly signed, but past its expiry and the leeway. Told apart only after the
    /// signature is checked, so it reveals nothing to a forger.
    #[error("expired token")]
    Expired,
    /// Signing failed.
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// Issues and verifies tokens with one secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A fresh token for `user`, of `login` when given.
    pub fn issue(
        &self,
        user: UserId,
        login: Option<LoginId>,
    ) -> Result<(String, Claims), TokenError> {
        let iat = Timestamp::now().as_millis() / 1000;
        let claims = Claims {
            sub: user.to_string(),
            iat,
            exp: iat + self.ttl.as_secs().max(1),
            jti: uuid::Uuid::new_v4().to_string(),
            sid: login.map(|l| l.to_string()),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok((token, claims))
    }

    /// The claims of a valid token (revocation is checked by the caller, against the
    /// store).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                // jsonwebtoken checks the signature before the claims.
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let now = Timestamp::now().as_millis() / 1000;
        // A token "issued" in the future was not issued by this server's clock.
        if data.claims.iat > now + self.validation.leeway {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}
