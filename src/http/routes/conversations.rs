//! Conversations: the caller's list, and one conversation's history.

use actors::domain::{ClientId, ConversationId, EventKind, MessageBody, Seq};
use actors::{SendRequest, Target};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::messages::{PageQuery, page_response};
use crate::http::{ApiError, ApiJson, ApiQuery, ErrorEnvelope, Success, Validator, schemas};
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
    /// `direct` or `group`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// A group's name; null for a direct conversation.
    name: Option<&'a str>,
    /// How many members it has.
    member_count: usize,
    /// A direct conversation's two participants; empty for a group, whose members
    /// `GET /api/conversations/{id}` lists.
    participants: Vec<UserJson>,
    created_at: String,
    last_activity: String,
    /// The seq of its last message; 0 when it has none.
    #[schema(value_type = u64)]
    last_seq: Seq,
    /// Messages from others after the caller's read mark, counted up to 100 (100 means
    /// 100 or more).
    unread_count: usize,
    /// The caller's read mark (0: none).
    #[schema(value_type = u64)]
    read_seq: Seq,
    /// Null when it has no message.
    last_message: Option<MessageJson<'a>>,
}

#[utoipa::path(get, path = "/api/conversations", tag = "conversations", security(("bearer" = [])),
    responses((status = 200, description = "The caller's conversations", body = ConversationsResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/conversations`: the caller's conversations (direct and groups), most
/// recent activity first, each with its last event and last seq.
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
                kind: if s.conversation.is_group() {
                    "group"
                } else {
                    "direct"
                },
                name: s.conversation.group.as_ref().map(|g| g.name.as_str()),
                member_count: s.conversation.participants.len(),
                participants: v
                    .members
                    .iter()
                    .map(|u| UserJson::from(u).with_underscore_id())
                    .collect(),
                created_at: rfc3339(s.conversation.created_at),
                last_activity: rfc3339(s.last_activity()),
                last_seq: s.last_event.as_ref().map_or(0, |e| e.seq),
                unread_count: v.unread,
                read_seq: v.read,
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

/// The body of `PATCH /api/conversations/{id}/messages/{seq}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EditBody {
    /// The new text: not only whitespace, at most --max-message-chars (4096) characters.
    #[schema(schema_with = schemas::message_content, required = true)]
    content: Option<String>,
    /// The retry key: a repeat returns the original edit.
    #[schema(schema_with = schemas::client_id)]
    client_id: Option<String>,
}

/// The answer to an edit or a delete: the event it put into the stream.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChangeMessageResponse<'a> {
    message: MessageJson<'a>,
    duplicate: bool,
}

/// The conversation and seq of a message from the path; either failing to parse names
/// no message.
fn message_path(id: &str, seq: &str) -> Result<(ConversationId, Seq), ApiError> {
    let id = id
        .parse::<ConversationId>()
        .map_err(|_| ServiceError::ConversationNotFound)?;
    let seq = seq
        .parse::<Seq>()
        .ok()
        .filter(|&s| s > 0 && s <= i64::MAX as u64)
        .ok_or(ServiceError::Send(actors::SendError::MessageNotFound))?;
    Ok((id, seq))
}

/// Sequences an edit or a delete of the caller's; answers with its event.
async fn change(
    state: &AppState,
    me: &AuthUser,
    id: ConversationId,
    kind: EventKind,
    client_id: Option<ClientId>,
) -> Result<Response, ApiError> {
    let messaging = state.messaging();
    messaging.check_rate(me.user.id)?;
    let request = SendRequest {
        from: me.user.id,
        target: Target::Conversation(id),
        kind,
        client_id,
        origin: None,
    };
    let sent = match messaging.send(request).await {
        Ok(sent) => sent,
        Err(ServiceError::Send(actors::SendError::NotParticipant)) => {
            return Err(ServiceError::ConversationNotFound.into());
        }
        Err(e) => return Err(e.into()),
    };
    let body = ChangeMessageResponse {
        message: MessageJson::from(sent.event.as_ref()).with_underscore_id(),
        duplicate: sent.duplicate,
    };
    Ok(Success(body).into_response())
}

#[utoipa::path(patch, path = "/api/conversations/{id}/messages/{seq}", tag = "conversations", security(("bearer" = [])), request_body = EditBody,
    params(("id" = uuid::Uuid, Path, description = "The conversation's id"), ("seq" = u64, Path, description = "The message's seq", minimum = 1)),
    responses((status = 200, description = "Edited: the `edit` event", body = ChangeMessageResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `PATCH /api/conversations/{id}/messages/{seq}`: replaces the text of one of the
/// caller's own messages. 403 for someone else's message or a call's record, 404
/// `message_not_found`, 409 `message_deleted`.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn edit(
    State(state): State<AppState>,
    me: AuthUser,
    Path((id, seq)): Path<(String, String)>,
    ApiJson(body): ApiJson<EditBody>,
) -> Result<Response, ApiError> {
    let (id, seq) = message_path(&id, &seq)?;
    let max = state.config().max_message_chars;
    let mut v = Validator::default();
    let content = v.field("content", body.content.as_deref(), |s| {
        MessageBody::parse(s, max)
    });
    let client_id = match body.client_id.as_deref() {
        None => None,
        Some(raw) => v.field("clientId", Some(raw), ClientId::parse),
    };
    v.finish()?;
    let Some(content) = content else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let kind = EventKind::Edit {
        target: seq,
        content,
    };
    change(&state, &me, id, kind, client_id).await
}

#[utoipa::path(delete, path = "/api/conversations/{id}/messages/{seq}", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The conversation's id"), ("seq" = u64, Path, description = "The message's seq", minimum = 1)),
    responses((status = 200, description = "Deleted: the `delete` event; the message's text is erased from the store", body = ChangeMessageResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `DELETE /api/conversations/{id}/messages/{seq}`: deletes a message of the caller's
/// (or, in a group the caller owns or administers, anyone's); its text is erased from
/// the store and history shows a tombstone, `deleted: true`. 409 `message_deleted`.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    me: AuthUser,
    Path((id, seq)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, seq) = message_path(&id, &seq)?;
    change(&state, &me, id, EventKind::Delete { target: seq }, None).await
}
