//! Receipts over REST: raise the caller's mark in a conversation, read every member's.

use actors::domain::{ConversationId, Invalid, Mark, Receipt, Seq, UserId};
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ErrorEnvelope, Success, Validator};
use crate::service::{AuthUser, ServiceError};
use crate::state::AppState;

/// The body of `POST /api/conversations/{id}/receipts`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReceiptBody {
    /// `read` or `delivered`.
    #[schema(value_type = String, pattern = "^(read|delivered)$")]
    mark: Option<String>,
    /// Up to this seq (at most the conversation's last).
    #[schema(value_type = u64, minimum = 1, maximum = 9_223_372_036_854_775_807_u64)]
    seq: Option<Seq>,
}

/// One member's marks.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReceiptJson {
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// Received up to this seq (0: nothing yet).
    delivered: u64,
    /// Read up to this seq (0: nothing yet).
    read: u64,
}

/// The caller's marks after a receipt.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MarkResponse {
    conversation_id: String,
    delivered: u64,
    read: u64,
}

/// Every member's marks.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReceiptsResponse {
    conversation_id: String,
    receipts: Vec<ReceiptJson>,
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    raw.parse()
        .map_err(|_| ServiceError::ConversationNotFound.into())
}

#[utoipa::path(post, path = "/api/conversations/{id}/receipts", tag = "conversations", security(("bearer" = [])), request_body = ReceiptBody,
    params(("id" = uuid::Uuid, Path, description = "The conversation's id")),
    responses((status = 200, description = "The caller's marks now (unchanged for a stale receipt)", body = MarkResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `POST /api/conversations/{id}/receipts`: raises the caller's `read` or `delivered`
/// mark to `seq`; the other members are told by a signal. A mark at or below the one
/// stored is ignored. 400 `seq_out_of_range` past the last event.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn mark(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReceiptBody>,
) -> Result<Success<MarkResponse>, ApiError> {
    let id = conversation_id(&id)?;
    let mut v = Validator::default();
    let mark = v.field("mark", body.mark.as_deref(), |s| match s {
        "read" => Ok(Mark::Read),
        "delivered" => Ok(Mark::Delivered),
        _ => Err(Invalid("must be read or delivered")),
    });
    match body.seq {
        None => v.fail("seq", "is required"),
        Some(0) => v.fail("seq", "must be 1 or more"),
        Some(s) if s > i64::MAX as u64 => v.fail("seq", "must be at most 9223372036854775807"),
        Some(_) => {}
    }
    v.finish()?;
    let (Some(mark), Some(seq)) = (mark, body.seq) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let Receipt { delivered, read } = state
        .receipts()
        .mark(me.user.id, id, mark, seq, None)
        .await?;
    Ok(Success(MarkResponse {
        conversation_id: id.to_string(),
        delivered,
        read,
    }))
}

#[utoipa::path(get, path = "/api/conversations/{id}/receipts", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The conversation's id")),
    responses((status = 200, description = "Every member's marks (members without any are absent)", body = ReceiptsResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/conversations/{id}/receipts`: every member's delivered and read marks, the
/// initial state the `read` and `delivered` signals then update.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Success<ReceiptsResponse>, ApiError> {
    let id = conversation_id(&id)?;
    let receipts = state.receipts().of(me.user.id, id).await?;
    Ok(Success(ReceiptsResponse {
        conversation_id: id.to_string(),
        receipts: receipts
            .into_iter()
            .map(|(user_id, r)| ReceiptJson {
                user_id,
                delivered: r.delivered,
                read: r.read,
            })
            .collect(),
    }))
}
