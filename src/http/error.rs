//! The one error type of the HTTP layer and its envelope:
//! `{"success": false, "message": "a sentence", "error": {"code": "snake_case",
//! "message": "a sentence", "fields": {...}, "retryAfterMs": 1000}}` (`fields` with
//! `validation_failed`, keyed by the request's field names; `retryAfterMs` with
//! `rate_limited`, beside the `Retry-After` header). The top-level `success` and
//! `message` are those the backend Parley replaces answered; `error` is Parley's.
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

use crate::service::{ErrorKind, ServiceError};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    fields: Option<BTreeMap<Cow<'static, str>, String>>,
    retry_after: Option<Duration>,
    close: bool,
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
            close: false,
        }
    }

    /// The same answer, saying `Connection: close`: the connection cannot serve another
    /// request (a request body left unread, say).
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// 400 `validation_failed`, naming every failing field.
    pub fn validation(fields: BTreeMap<Cow<'static, str>, String>) -> Self {
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

/// The one place a service error becomes an HTTP answer.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        if let Some(cause) = e.cause() {
            tracing::error!(error = %cause, code = e.code(), "request failed");
        }
        let status = match e.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut api = Self::new(status, e.code(), e.to_string());
        api.retry_after = e.retry_after();
        api
    }
}

impl From<StoreError> for ApiError {
    /// 503 `store_unavailable`, the code a failed send has: a store that is down (a
    /// ScyllaDB cluster out of reach) is worth retrying, and every request that reads
    /// the store, authentication included, then fails this way.
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Error)]
pub(crate) struct ErrorEnvelope<'a> {
    /// Always `false`; with `message`, the shape the old backend's clients read.
    success: bool,
    message: &'a str,
    error: Body<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ErrorBody)]
struct Body<'a> {
    /// Machine-readable, snake_case.
    code: &'a str,
    /// A sentence for a person.
    message: &'a str,
    /// With `validation_failed`: why each field failed, by its name in the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    fields: Option<&'a BTreeMap<Cow<'static, str>, String>>,
    /// With `rate_limited`: when to try again, in milliseconds (the `Retry-After`
    /// header has whole seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

/// The envelope `{"error": {"code": ..., "message": ...}}` as JSON bytes, for answers
/// written outside the router (see `crate::connection`).
pub fn envelope_json(code: &str, message: &str) -> Vec<u8> {
    let envelope = ErrorEnvelope {
        success: false,
        message,
        error: Body {
            code,
            message,
            fields: None,
            retry_after_ms: None,
        },
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            success: false,
            message: &self.message,
            error: Body {
                code: self.code,
                message: &self.message,
                fields: self.fields.as_ref(),
                retry_after_ms: self.retry_after.map(retry_after_ms),
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
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A wait in whole milliseconds, at least 1 (a client must wait for something).
fn retry_after_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Collects per-field validation failures, so one answer names all of them.
#[derive(Default)]
pub struct Validator(BTreeMap<Cow<'static, str>, String>);

impl Validator {
    /// Parses a required field; records why it failed.
    pub fn field<T>(
        &mut self,
        name: &'static str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let Some(raw) = raw else {
            self.0.insert(name.into(), "is required".into());
            return None;
        };
        match parse(raw) {
            Ok(v) => Some(v),
            Err(Invalid(why)) => {
                self.0.insert(name.into(), why.into());
                None
            }
        }
    }

    /// A required field that is only checked to be non-empty, kept as given (a
    /// password to compare, a token the service judges).
    pub fn present(&mut self, name: &'static str, raw: Option<&str>) -> Option<String> {
        self.field(name, raw, |s| {
            if s.is_empty() {
                Err(Invalid("is required"))
            } else {
                Ok(s.to_owned())
            }
        })
    }

    /// Records a failure found some other way.
    pub fn fail(&mut self, name: &'static str, why: &str) {
        self.0.insert(name.into(), why.into());
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
