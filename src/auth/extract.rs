//! The `AuthUser` extractor: a request's bearer token, verified, not revoked, and
//! belonging to an account that still exists.

use actors::domain::User;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::Claims;
use crate::http::{ApiError, AppState};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Who.
    pub user: User,
    /// With which token.
    pub claims: Claims,
}

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Verifies a token completely: signature, algorithm, expiry, revocation, account.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let claims = state
        .tokens()
        .verify(token)
        .map_err(|_| ApiError::unauthorized())?;
    let id = claims.user_id().map_err(|_| ApiError::unauthorized())?;
    // Our tokens carry a UUID; anything else was not issued here.
    if claims.jti.is_empty() || claims.jti.len() > 64 {
        return Err(ApiError::unauthorized());
    }
    if state.store().is_token_revoked(&claims.jti).await? {
        return Err(ApiError::unauthorized());
    }
    let record = state
        .store()
        .user(id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(AuthUser {
        user: record.user,
        claims,
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        authenticate(state, token).await
    }
}
