//! The one error type of the HTTP layer and its envelope:
//! `{"error": {"code": "snake_case", "message": "a sentence", "fields": {...}}}`.
//! The client sees a clean code and sentence; the log gets the cause, once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use actors::StoreError;
use actors::domain::Invalid;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::{HashError, RateLimited};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    fields: Option<BTreeMap<&'static str, String>>,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// Any status, code and message.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
            retry_after: None,
        }
    }

    /// 400 `validation_failed`, naming every failing field.
    pub fn validation(fields: BTreeMap<&'static str, String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Some fields are invalid.",
        );
        e.fields = Some(fields);
        e
    }

    /// 400 `malformed_json`.
    pub fn malformed_json(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", detail)
    }

    /// 401 `unauthorized`: the same answer for every kind of bad token.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required.",
        )
    }

    /// 429 `rate_limited`, with `Retry-After`.
    pub fn rate_limited(limit: RateLimited) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many attempts; try again later.",
        );
        e.retry_after = Some(limit.retry_after);
        e
    }

    /// 500 `internal`: logs the cause, tells the client nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<StoreError> for ApiError {
    /// 503 `store_unavailable`, the code a failed send has: a store that is down (a
    /// ScyllaDB cluster out of reach) is worth retrying, and every request that reads
    /// the store, authentication included, then fails this way.
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The store is unavailable; try again shortly.",
        )
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        Self::internal(e)
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a BTreeMap<&'static str, String>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                fields: self.fields.as_ref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: retrying at the stated time must succeed.
            let secs = wait.as_millis().div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Collects per-field validation failures, so one answer names all of them.
#[derive(Default)]
pub struct Validator(BTreeMap<&'static str, String>);

impl Validator {
    /// Parses a required field; records why it failed.
    pub fn field<T>(
        &mut self,
        name: &'static str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let Some(raw) = raw else {
            self.0.insert(name, "is required".into());
            return None;
        };
        match parse(raw) {
            Ok(v) => Some(v),
            Err(Invalid(why)) => {
                self.0.insert(name, why.into());
                None
            }
        }
    }

    /// Records a failure found some other way.
    pub fn fail(&mut self, name: &'static str, why: &str) {
        self.0.insert(name, why.into());
    }

    /// Ok when nothing failed, else the 400 naming every failure.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}
