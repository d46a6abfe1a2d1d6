//! Accounts: register, login, logout, me.

use actors::domain::{DisplayName, Email, Invalid, Password};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ClientAddr, ErrorEnvelope, Success, Validator};
use crate::service::{AuthUser, Issued};
use crate::state::AppState;
use crate::wire::UserJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisterBody {
    #[schema(value_type = String, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    name: Option<String>,
    #[schema(value_type = String, max_length = 254, pattern = r"^[\x21-\x3f\x41-\x7e]{1,64}@[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?(?:\.[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)+$")]
    email: Option<String>,
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    password: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginBody {
    #[schema(value_type = String, max_length = 254, pattern = r"^[\x21-\x3f\x41-\x7e]{1,64}@[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?(?:\.[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)+$")]
    email: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthResponse {
    message: &'static str,
    token: String,
    user: UserJson,
}

fn issued(message: &'static str, issued: Issued) -> Success<AuthResponse> {
    Success(AuthResponse {
        message,
        token: issued.token,
        user: UserJson::from(&issued.user).with_underscore_id(),
    })
}

/// The body of `POST /api/auth/logout`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoggedOut {
    message: &'static str,
}

/// `POST /api/auth/register`: creates an account and returns a token for it.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, description = "Created", body = AuthResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Success<AuthResponse>), ApiError> {
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
    Ok((
        StatusCode::CREATED,
        issued("User registered successfully", created),
    ))
}

/// `POST /api/auth/login`: a token for valid credentials.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Logged in", body = AuthResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Success<AuthResponse>, ApiError> {
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
    Ok(issued(
        "Login successful",
        accounts.login(email, &password, client.0).await?,
    ))
}

/// `POST /api/auth/logout`: revokes the token used, for the rest of its lifetime.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Revoked", body = LoggedOut), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Success<LoggedOut>, ApiError> {
    state.accounts().logout(&me).await?;
    Ok(Success(LoggedOut {
        message: "Logged out",
    }))
}

/// `GET /api/auth/me`: the caller's account.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserJson), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
pub(crate) async fn me(me: AuthUser) -> Success<UserJson> {
    Success(UserJson::from(&me.user).with_underscore_id())
}
