//! Conversations: the caller's list, and one conversation's history.

use actors::domain::{ConversationId, Seq};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::messages::{PageQuery, page_response};
use crate::http::{ApiError, ApiQuery, ErrorEnvelope, Success};
use crate::service::{AuthUser, ServiceError};
use crate::state::AppState;
use crate::wire::{MessageJson, UserJson, rfc3339};

/// The body of `GET /api/conversations`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConversationsResponse<'a> {
    conversations: Vec<ConversationJson<'a>>,
}

/// One conversation in the caller's list.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Conversation)]
pub(crate) struct ConversationJson<'a> {
    id: String,
    participants: Vec<UserJson>,
    created_at: String,
    last_activity: String,
    /// The seq of its last message; 0 when it has none.
    #[schema(value_type = u64)]
    last_seq: Seq,
    /// Null when it has no message.
    last_message: Option<MessageJson<'a>>,
}

#[utoipa::path(get, path = "/api/conversations", tag = "conversations", security(("bearer" = [])),
    responses((status = 200, description = "The caller's conversations", body = ConversationsResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/conversations`: the caller's conversations, most recent activity first,
/// each with its participants, last message and last seq.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Response, ApiError> {
    let views = state.conversations().list(me.user.id).await?;
    let conversations = views
        .iter()
        .map(|v| {
            let s = &v.summary;
            ConversationJson {
                id: s.conversation.id.to_string(),
                participants: v
                    .members
                    .iter()
                    .map(|u| UserJson::from(u).with_underscore_id())
                    .collect(),
                created_at: rfc3339(s.conversation.created_at),
                last_activity: rfc3339(s.last_activity()),
                last_seq: s.last_event.as_ref().map_or(0, |e| e.seq),
                last_message: s
                    .last_event
                    .as_ref()
                    .map(|e| MessageJson::from(e).with_underscore_id()),
            }
        })
        .collect();
    Ok(Success(ConversationsResponse { conversations }).into_response())
}

#[utoipa::path(get, path = "/api/conversations/{id}/messages", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The conversation's id"), PageQuery),
    responses((status = 200, description = "A page of history, oldest first", body = super::messages::HistoryPage), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/conversations/{id}/messages?before=&after=&limit=&page=`: a page of one
/// conversation's history, oldest first. Anyone but a participant gets 404.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn messages(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let id: ConversationId = id.parse().map_err(|_| ServiceError::ConversationNotFound)?;
    let paging = query.paging()?;
    let page = state.conversations().page(me.user.id, id, paging).await?;
    Ok(page_response(&page))
}
