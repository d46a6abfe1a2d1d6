//! Accounts: register, login, logout, me.

use std::net::SocketAddr;

use actors::domain::{DisplayName, Email, Invalid, Password, Timestamp, User, UserId, UserRecord};
use actors::store::InsertUserError;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::http::{ApiError, ApiJson, AppState, Validator};
use crate::wire::UserJson;

#[derive(Deserialize)]
pub(crate) struct RegisterBody {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct AuthResponse {
    token: String,
    user: UserJson,
}

fn email_taken() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "email_taken",
        "An account with this email already exists.",
    )
}

/// `POST /api/auth/register`: creates an account and returns a token for it.
pub(crate) async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    state
        .limits()
        .auth_by_address
        .check(&peer.ip())
        .map_err(ApiError::rate_limited)?;
    let mut v = Validator::default();
    let name = v.field("name", body.name.as_deref(), DisplayName::parse);
    let email = v.field("email", body.email.as_deref(), Email::parse);
    let password = v.field("password", body.password.as_deref(), Password::parse);
    v.finish()?;
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    // Cheap early answer; the conditional insert below is what guarantees uniqueness.
    if state.store().user_by_email(&email).await?.is_some() {
        return Err(email_taken());
    }
    let password_hash = state.hasher().hash(&password).await?;
    let user = User {
        id: UserId::generate(),
        name,
        email,
    };
    let record = UserRecord {
        user,
        password_hash,
        created_at: Timestamp::now(),
    };
    match state.store().insert_user(&record).await {
        Ok(()) => {}
        Err(InsertUserError::EmailTaken) => return Err(email_taken()),
        Err(InsertUserError::Store(e)) => return Err(e.into()),
    }
    let (token, _) = state
        .tokens()
        .issue(record.user.id)
        .map_err(ApiError::internal)?;
    tracing::info!(user_id = %record.user.id, "account created");
    let user = UserJson::from(&record.user);
    Ok((StatusCode::CREATED, Json(AuthResponse { token, user })))
}

/// `POST /api/auth/login`: a token for valid credentials. Unknown email and wrong
/// password get the same answer after the same work.
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<AuthResponse>, ApiError> {
    state
        .limits()
        .auth_by_address
        .check(&peer.ip())
        .map_err(ApiError::rate_limited)?;
    let mut v = Validator::default();
    let email = v.field("email", body.email.as_deref(), Email::parse);
    let password = v.field("password", body.password.as_deref(), |p| {
        if p.is_empty() {
            Err(Invalid("is required"))
        } else {
            Ok(p.to_owned())
        }
    });
    v.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    state
        .limits()
        .login_by_email
        .check(&email.as_str().to_owned())
        .map_err(ApiError::rate_limited)?;
    let record = state.store().user_by_email(&email).await?;
    let hash = record.as_ref().map(|r| r.password_hash.as_str());
    let valid = state.hasher().verify(&password, hash).await?;
    let Some(record) = record.filter(|_| valid) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Email or password is incorrect.",
        ));
    };
    let (token, _) = state
        .tokens()
        .issue(record.user.id)
        .map_err(ApiError::internal)?;
    Ok(Json(AuthResponse {
        token,
        user: UserJson::from(&record.user),
    }))
}

/// `POST /api/auth/logout`: revokes the token used, for the rest of its lifetime.
pub(crate) async fn logout(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<StatusCode, ApiError> {
    state
        .store()
        .revoke_token(&me.claims.jti, me.claims.accepted_until())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/auth/me`: the caller's account.
pub(crate) async fn me(me: AuthUser) -> Json<UserJson> {
    Json(UserJson::from(&me.user))
}
