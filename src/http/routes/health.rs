//! Liveness, and the answers for unknown routes and methods.

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::ApiError;

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Any unknown route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such route.",
    )
}

/// A known route with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not accept that method.",
    )
}
