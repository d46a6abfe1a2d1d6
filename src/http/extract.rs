//! Extractors that answer in the error envelope: JSON bodies, query strings, and the
//! authenticated caller.

use axum::Json;
use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::extract::rejection::{JsonDataError, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::service::{AuthUser, ServiceError, TokenProblem};
use crate::state::AppState;

/// A JSON request body (`Content-Type: application/json`, at most the body limit).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(e) if crate::connection::is_body_timeout(&e) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The request body did not arrive in time.",
            )
            .closing()),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send JSON with Content-Type: application/json.",
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(wrong_type(&e)
                .unwrap_or_else(|| ApiError::malformed_json("The body must be a JSON object."))),
            Err(JsonRejection::JsonSyntaxError(_)) => {
                Err(ApiError::malformed_json("The body is not valid JSON."))
            }
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            )),
            Err(e) => Err(ApiError::malformed_json(e.body_text())),
        }
    }
}

/// A field of the wrong JSON type (a number for the password) as `validation_failed`
/// naming the field, like every other invalid field. None when the body as a whole has
/// the wrong shape (an array, a string).
fn wrong_type(e: &JsonDataError) -> Option<ApiError> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(e) = cause.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let path = e.path().to_string();
            if path.is_empty() || path == "." {
                return None;
            }
            // serde says "invalid type: integer `5`, expected a string at line 1 column 9".
            let detail = e.inner().to_string();
            let why = detail
                .split_once(", expected ")
                .map(|(_, expected)| {
                    let expected = expected.split(" at line ").next().unwrap_or(expected);
                    format!("must be {expected}")
                })
                .unwrap_or_else(|| "has the wrong type".to_owned());
            let mut fields = BTreeMap::new();
            fields.insert(Cow::Owned(path), why);
            return Some(ApiError::validation(fields));
        }
        source = cause.source();
    }
    None
}

/// Query-string parameters.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                e.body_text(),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                e.body_text(),
            )),
        }
    }
}

/// Why a request has no bearer token: none at all, or an `Authorization` header that
/// is not `Bearer <token>`.
pub fn missing_token(headers: &axum::http::HeaderMap) -> TokenProblem {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        TokenProblem::NotBearer
    } else {
        TokenProblem::Missing
    }
}

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The caller, from a bearer token checked completely by the accounts service.
impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ServiceError::Unauthorized(missing_token(&parts.headers)))?;
        Ok(state.accounts().authenticate(token).await?)
    }
}
