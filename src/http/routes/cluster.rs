//! The operator's view of a cluster: which nodes are alive and how many conversations
//! each sequences. The route exists wherever an admin token is set; a single node
//! answers that it is in no cluster (`node: null`, no nodes), so one check works on
//! every deployment.

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
    /// The node that answered (null on a single node, which is in no cluster).
    node: Option<String>,
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
    responses((status = 200, description = "Live nodes and their conversations (none on a single node)", body = ClusterReport), (status = "4XX", description = "Refused", body = ErrorEnvelope), (status = 503, description = "The store did not answer", body = ErrorEnvelope)))]
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
    let Some(cluster) = state.cluster() else {
        return Ok(Json(ClusterReport {
            node: None,
            degraded: false,
            nodes: Vec::new(),
        }));
    };
    let nodes = cluster
        .nodes()
        .await
        .map_err(|_| unavailable("The store did not answer."))?;
    Ok(Json(ClusterReport {
        node: Some(cluster.node().to_owned()),
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
