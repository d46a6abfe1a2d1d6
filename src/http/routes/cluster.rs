//! The operator's view of a cluster: which nodes are alive and how many conversations
//! each sequences. The route exists only on a node of a cluster with an admin token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

use super::admin::require_admin;
use crate::http::{ApiError, ErrorEnvelope};
use crate::state::AppState;

/// The body of `GET /admin/cluster`.
#[derive(Serialize, Debug, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClusterReport {
    /// The node that answered.
    node: String,
    /// Whether it is cut from NATS now (cross-node traffic paused).
    degraded: bool,
    /// Nodes whose heartbeat has not lapsed, by id.
    nodes: Vec<NodeReport>,
}

/// One live node.
#[derive(Serialize, Debug, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeReport {
    /// Its `--node-id`.
    node: String,
    /// Conversations it sequences (holds the lease of), as of its last heartbeat.
    owned: i32,
}

#[utoipa::path(get, path = "/admin/cluster", tag = "operations", security(("admin" = [])),
    responses((status = 200, description = "Live nodes and their conversations (only in a cluster, with --admin-token)", body = ClusterReport), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /admin/cluster`: the live nodes of this node's cluster and how many
/// conversations each sequences. Requires `Authorization: Bearer <admin token>`.
pub(crate) async fn cluster(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ClusterReport>, ApiError> {
    require_admin(&state, &headers)?;
    let unavailable = |why: &str| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            why.to_owned(),
        )
    };
    let cluster = state
        .cluster()
        .ok_or_else(|| unavailable("This node is not in a cluster."))?;
    let nodes = cluster
        .nodes()
        .await
        .map_err(|_| unavailable("The store did not answer."))?;
    Ok(Json(ClusterReport {
        node: cluster.node().to_owned(),
        degraded: cluster.degraded(),
        nodes: nodes
            .into_iter()
            .map(|n| NodeReport {
                node: n.node,
                owned: n.owned,
            })
            .collect(),
    }))
}
