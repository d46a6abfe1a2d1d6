//! Accounts: register, login, logout, me.

use actors::domain::{DisplayName, Email, Invalid, Password};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ClientAddr, Validator};
use crate::service::{AuthUser, Issued};
use crate::state::AppState;
use crate::wire::UserJson;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisterBody {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthResponse {
    token: String,
    user: UserJson,
}

fn issued(issued: Issued) -> AuthResponse {
    AuthResponse {
        token: issued.token,
        user: UserJson::from(&issued.user),
    }
}

/// `POST /api/auth/register`: creates an account and returns a token for it.
#[tracing::instrument(skip_all)]
pub(crate) async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    let accounts = state.accounts();
    accounts.check_address(client.rate_key())?;
    let mut v = Validator::default();
    let name = v.field("name", body.name.as_deref(), DisplayName::parse);
    let email = v.field("email", body.email.as_deref(), Email::parse);
    let password = v.field("password", body.password.as_deref(), Password::parse);
    v.finish()?;
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let created = accounts.register(name, email, password).await?;
    Ok((StatusCode::CREATED, Json(issued(created))))
}

/// `POST /api/auth/login`: a token for valid credentials.
#[tracing::instrument(skip_all)]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<AuthResponse>, ApiError> {
    let accounts = state.accounts();
    accounts.check_address(client.rate_key())?;
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
    Ok(Json(issued(
        accounts.login(email, &password, client.0).await?,
    )))
}

/// `POST /api/auth/logout`: revokes the token used, for the rest of its lifetime.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<StatusCode, ApiError> {
    state.accounts().logout(&me).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/auth/me`: the caller's account.
pub(crate) async fn me(me: AuthUser) -> Json<UserJson> {
    Json(UserJson::from(&me.user))
}
