//! Liveness, and the answers for unknown routes and methods.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::http::ApiError;
use crate::state::AppState;

/// The body of `GET /healthz`: `{"status": "ok"}`, or `"degraded"` on a node of a
/// cluster cut from NATS (it serves its own sessions; cross-node traffic waits).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    status: &'static str,
}

/// `GET /healthz`: the process is up and serving (`degraded`: a cluster node without
/// NATS).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up", body = Health)))]
pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    let degraded = state.cluster().is_some_and(|c| c.degraded());
    Json(Health {
        status: if degraded { "degraded" } else { "ok" },
    })
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
