//! Accounts: register, login, refresh, logout, me.

use actors::domain::{DeviceName, DisplayName, Email, Password};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ClientAddr, ErrorEnvelope, Success, Validator, schemas};
use crate::service::{AuthUser, Issued};
use crate::state::AppState;
use crate::wire::UserJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisterBody {
    #[schema(schema_with = schemas::display_name, required = true)]
    name: Option<String>,
    #[schema(value_type = String, max_length = 254, pattern = r"^[\x21-\x3f\x41-\x7e]{1,64}@[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?(?:\.[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)+$")]
    email: Option<String>,
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    password: Option<String>,
    /// What to call this device in the list of sessions (the User-Agent without it).
    #[schema(schema_with = schemas::device_name)]
    device: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginBody {
    #[schema(value_type = String, max_length = 254, pattern = r"^[\x21-\x3f\x41-\x7e]{1,64}@[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?(?:\.[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)+$")]
    email: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    password: Option<String>,
    /// What to call this device in the list of sessions (the User-Agent without it).
    #[schema(schema_with = schemas::device_name)]
    device: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshBody {
    /// The refresh token of the last login or refresh answer.
    #[schema(value_type = String, min_length = 1)]
    refresh_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthResponse {
    message: &'static str,
    /// The bearer token for every other route (lifetime `--token-ttl`).
    token: String,
    /// Trades for a new `token` and a new `refreshToken`, once, at
    /// `POST /api/auth/refresh` (lifetime `--refresh-ttl`). Using it twice signs the
    /// device out.
    refresh_token: String,
    user: UserJson,
}

fn issued(message: &'static str, issued: Issued) -> Success<AuthResponse> {
    Success(AuthResponse {
        message,
        token: issued.token,
        refresh_token: issued.refresh_token,
        user: UserJson::from(&issued.user).with_underscore_id(),
    })
}

/// The body of `POST /api/auth/logout`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoggedOut {
    message: &'static str,
}

/// The device a sign-in is on: the name the client gave, else its User-Agent.
fn device(v: &mut Validator, given: Option<&str>, headers: &HeaderMap) -> Option<DeviceName> {
    match given {
        Some(_) => v.field("device", given, DeviceName::parse),
        None => Some(DeviceName::from_user_agent(
            headers
                .get(header::USER_AGENT)
                .and_then(|ua| ua.to_str().ok()),
        )),
    }
}

/// `POST /api/auth/register`: creates an account and returns tokens for it.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, description = "Created", body = AuthResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Success<AuthResponse>), ApiError> {
    let accounts = state.accounts();
    accounts.check_address(client.rate_key())?;
    let mut v = Validator::default();
    let name = v.field("name", body.name.as_deref(), DisplayName::parse);
    let email = v.field("email", body.email.as_deref(), Email::parse);
    let password = v.field("password", body.password.as_deref(), Password::parse);
    let device = device(&mut v, body.device.as_deref(), &headers);
    v.finish()?;
    let (Some(name), Some(email), Some(password), Some(device)) = (name, email, password, device)
    else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let created = accounts.register(name, email, password, device).await?;
    Ok((
        StatusCode::CREATED,
        issued("User registered successfully", created),
    ))
}

/// `POST /api/auth/login`: tokens for valid credentials, and a new signed-in device.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Logged in", body = AuthResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Success<AuthResponse>, ApiError> {
    let accounts = state.accounts();
    accounts.check_address(client.rate_key())?;
    let mut v = Validator::default();
    let email = v.field("email", body.email.as_deref(), Email::parse);
    let password = v.present("password", body.password.as_deref());
    let device = device(&mut v, body.device.as_deref(), &headers);
    v.finish()?;
    let (Some(email), Some(password), Some(device)) = (email, password, device) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    Ok(issued(
        "Login successful",
        accounts.login(email, &password, client.0, device).await?,
    ))
}

/// `POST /api/auth/refresh`: trades a refresh token for a new access token and a new
/// refresh token. A refresh token works once: presented again, it signs its device out
/// (every token descended from that login) and is answered 401.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "New tokens", body = AuthResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Success<AuthResponse>, ApiError> {
    let accounts = state.accounts();
    accounts.check_address(client.rate_key())?;
    let mut v = Validator::default();
    // Only presence is checked here: a token's form is the service's to judge, and a
    // bad one is a 401 like any other wrong credential.
    let token = v.present("refreshToken", body.refresh_token.as_deref());
    v.finish()?;
    let Some(token) = token else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    Ok(issued("Token refreshed", accounts.refresh(&token).await?))
}

/// `POST /api/auth/logout`: signs the caller's device out: the token used and every
/// token of its login (its refresh token too) are revoked.
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
