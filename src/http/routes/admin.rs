//! Operator routes: Prometheus metrics, and live inspection of the actor tree behind
//! the admin token. Neither belongs on the public side of a reverse proxy.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::http::{ApiError, ApiQuery, ErrorEnvelope, bearer_token};
use crate::service::{ServiceError, TokenProblem};
use crate::state::AppState;

/// Prometheus' text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: every metric in Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text =
        crate::metrics::render(state.messenger(), state.sessions().len()).ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics_unavailable",
                "Metrics are not recorded by this process.",
            )
        })?;
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT));
    Ok(response)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActorsQuery {
    /// How many of the busiest actors to list (20 by default; at most 1000, more is
    /// taken as 1000).
    #[param(value_type = Option<u32>)]
    limit: Option<usize>,
}

/// Most actors listed by `/admin/actors` (and its default).
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 20;

/// The body of `GET /admin/actors` (camelCase, like every JSON body).
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActorsReport {
    /// This node's id, in a cluster (`--node-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
    /// Live actors by kind.
    pub(crate) counts: Counts,
    /// Actors being started (loading, or waiting out a restart back-off).
    pub(crate) starting: usize,
    /// Actors stopping.
    pub(crate) stopping: usize,
    /// Ids given up on after repeated failures, still cooling down.
    pub(crate) given_up: usize,
    /// Messages waiting for the next group commit.
    pub(crate) persistence_queue: usize,
    /// Open sessions.
    pub(crate) sessions: usize,
    /// The longest session outbound queue.
    pub(crate) largest_session_queue: usize,
    /// The busiest actors first.
    pub(crate) busiest: Vec<ActorReport>,
}

/// Live actors by kind.
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Counts {
    /// User actors.
    pub(crate) user: usize,
    /// Conversation actors.
    pub(crate) conversation: usize,
}

/// One actor in `/admin/actors`.
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActorReport {
    /// `user` or `conversation`.
    pub(crate) kind: String,
    /// Its user or conversation id.
    pub(crate) id: String,
    /// A conversation's sends accepted and not yet answered; a user's longest session
    /// queue.
    pub(crate) queue_depth: usize,
    /// A user's live sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sessions: Option<usize>,
    /// Messages this incarnation has handled.
    pub(crate) handled: u64,
    /// Milliseconds since this incarnation started.
    pub(crate) age_ms: u64,
    /// Milliseconds since its last activity.
    pub(crate) idle_ms: u64,
    /// Failures (each followed by a restart) within the restart window.
    pub(crate) restarts: usize,
}

impl From<actors::ActorTree> for ActorsReport {
    fn from(tree: actors::ActorTree) -> Self {
        Self {
            node: None,
            counts: Counts {
                user: tree.users,
                conversation: tree.conversations,
            },
            starting: tree.starting,
            stopping: tree.stopping,
            given_up: tree.given_up,
            persistence_queue: tree.persistence_queue,
            sessions: tree.sessions,
            largest_session_queue: tree.largest_session_queue,
            busiest: tree
                .busiest
                .into_iter()
                .map(|a| ActorReport {
                    kind: a.kind.as_str().to_owned(),
                    id: a.id,
                    queue_depth: a.queue_depth,
                    sessions: a.sessions,
                    handled: a.handled,
                    age_ms: a.age.as_millis() as u64,
                    idle_ms: a.idle.as_millis() as u64,
                    restarts: a.restarts,
                })
                .collect(),
        }
    }
}

#[utoipa::path(get, path = "/admin/actors", tag = "operations", security(("admin" = [])), params(ActorsQuery),
    responses((status = 200, description = "Actor counts and the busiest actors (only with --admin-token)", body = ActorsReport), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /admin/actors?limit=`: counts by kind and the busiest actors (20 by default, at
/// most 1000). Requires `Authorization: Bearer <admin token>`; the route exists only
/// when an admin token is configured.
pub(crate) async fn actors(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ActorsQuery>,
) -> Result<Json<ActorsReport>, ApiError> {
    require_admin(&state, &headers)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let tree = state.messenger().inspect(limit).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The actor registry did not answer in time.",
        )
    })?;
    let mut report = ActorsReport::from(tree);
    report.node = state.cluster().map(|c| c.node().to_owned());
    Ok(Json(report))
}

/// The request carries the admin token: compared in constant time (for tokens of the
/// configured length; the length itself is not secret).
pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config().admin_token.as_ref() else {
        return Err(ServiceError::Unauthorized(TokenProblem::NotAdmin).into());
    };
    let given = bearer_token(headers).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.0.as_bytes())) {
        Ok(())
    } else {
        Err(ServiceError::Unauthorized(TokenProblem::NotAdmin).into())
    }
}
