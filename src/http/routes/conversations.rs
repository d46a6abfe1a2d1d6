//! Conversations: the caller's list, and one conversation's history.

use std::collections::HashMap;

use actors::domain::{ConversationId, ConversationSummary, Seq, User, UserId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::messages::{PageQuery, page};
use crate::auth::AuthUser;
use crate::http::{ApiError, ApiQuery, AppState};
use crate::wire::{MessageJson, UserJson, rfc3339};

/// The body of `GET /api/conversations`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConversationsResponse<'a> {
    conversations: Vec<ConversationJson<'a>>,
}

/// One conversation in the caller's list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConversationJson<'a> {
    id: String,
    participants: Vec<UserJson>,
    created_at: String,
    last_activity: String,
    /// The seq of its last message; 0 when it has none.
    last_seq: Seq,
    /// Null when it has no message.
    last_message: Option<MessageJson<'a>>,
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "conversation_not_found",
        "No such conversation.",
    )
}

/// `GET /api/conversations`: the caller's conversations, most recent activity first,
/// each with its participants, last message and last seq.
pub(crate) async fn list(
    State(state): State<AppState>,
    me: AuthUser,
) -> Result<Response, ApiError> {
    let store = state.store();
    let mut summaries = Vec::new();
    for id in store.user_conversations(me.user.id).await? {
        if let Some(conversation) = store.conversation(id).await? {
            let last_event = store.last_event(id).await?;
            summaries.push(ConversationSummary {
                conversation,
                last_event,
            });
        }
    }
    summaries.sort_by_key(|s| std::cmp::Reverse(s.last_activity()));
    let mut users: HashMap<UserId, Option<User>> = HashMap::new();
    let mut out = Vec::with_capacity(summaries.len());
    for s in &summaries {
        let mut participants = Vec::new();
        for id in &s.conversation.participants {
            if !users.contains_key(id) {
                users.insert(*id, store.user(*id).await?.map(|r| r.user));
            }
            if let Some(Some(u)) = users.get(id) {
                participants.push(UserJson::from(u));
            }
        }
        out.push(ConversationJson {
            id: s.conversation.id.to_string(),
            participants,
            created_at: rfc3339(s.conversation.created_at),
            last_activity: rfc3339(s.last_activity()),
            last_seq: s.last_event.as_ref().map_or(0, |m| m.seq),
            last_message: s.last_event.as_ref().map(MessageJson::from),
        });
    }
    Ok(Json(ConversationsResponse { conversations: out }).into_response())
}

/// `GET /api/conversations/{id}/messages?before=&after=&limit=`: a page of one
/// conversation's history, oldest first. Anyone but a participant gets 404.
pub(crate) async fn messages(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let id: ConversationId = id.parse().map_err(|_| not_found())?;
    let range = query.range()?;
    match state.store().conversation(id).await? {
        Some(c) if c.has(me.user.id) => page(&state, id, range).await,
        _ => Err(not_found()),
    }
}
