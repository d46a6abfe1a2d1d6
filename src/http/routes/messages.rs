//! 1:1 messages over REST, through the same actors as the WebSocket path.

use actors::domain::{ClientId, ConversationId, EventKind, MessageBody, MessageContent, UserId};
use actors::store::HistoryRange;
use actors::{SendError, SendRequest, Target};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::http::{ApiError, ApiJson, ApiQuery, AppState, Validator};
use crate::wire::MessageJson;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendBody {
    receiver_id: Option<String>,
    content: Option<String>,
    client_id: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct MessageResponse<'a> {
    message: MessageJson<'a>,
    duplicate: bool,
}

/// How a failed send reads over HTTP (the WebSocket layer uses the same codes).
pub(crate) fn send_error(e: SendError) -> ApiError {
    let (status, code) = send_error_code(&e);
    match e {
        SendError::Store(cause) => {
            tracing::error!(error = %cause, "send failed in the store");
            ApiError::new(
                status,
                code,
                "The message could not be stored; retry with the same clientId.",
            )
        }
        other => ApiError::new(status, code, other.to_string()),
    }
}

/// Status and code of a send error.
pub(crate) fn send_error_code(e: &SendError) -> (StatusCode, &'static str) {
    let status = match e {
        SendError::RecipientNotFound | SendError::NotParticipant => StatusCode::NOT_FOUND,
        SendError::CannotMessageSelf => StatusCode::BAD_REQUEST,
        SendError::NotAllowed => StatusCode::FORBIDDEN,
        SendError::Failed
        | SendError::Unavailable
        | SendError::Timeout
        | SendError::ShuttingDown
        | SendError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, e.code())
}

/// `POST /api/messages/send`: sends `content` to `receiverId`; 201 once durable, 200
/// with `duplicate: true` for a retry of a `clientId` already used.
pub(crate) async fn send(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let max = state.config().max_message_chars;
    let mut v = Validator::default();
    let to = v.field("receiverId", body.receiver_id.as_deref(), |s| {
        s.parse::<UserId>()
            .map_err(|_| actors::domain::Invalid("is not a valid id"))
    });
    let content = v.field("content", body.content.as_deref(), |s| {
        MessageBody::parse(s, max)
    });
    let client_id = match body.client_id.as_deref() {
        None => None,
        Some(raw) => v.field("clientId", Some(raw), ClientId::parse),
    };
    v.finish()?;
    let (Some(to), Some(content)) = (to, content) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    state
        .limits()
        .sends
        .check(&me.user.id)
        .map_err(ApiError::rate_limited)?;
    let request = SendRequest {
        from: me.user.id,
        target: Target::User(to),
        kind: EventKind::Message(MessageContent::text(content)),
        client_id,
        origin: None,
    };
    let sent = state.messenger().send(request).await.map_err(send_error)?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = MessageResponse {
        message: MessageJson::from(sent.event.as_ref()),
        duplicate: sent.duplicate,
    };
    Ok((
        status,
        Json(serde_json::to_value(body).map_err(ApiError::internal)?),
    ))
}

/// Paging parameters shared by the history routes.
#[derive(Deserialize)]
pub(crate) struct PageQuery {
    pub(crate) before: Option<u64>,
    pub(crate) after: Option<u64>,
    pub(crate) limit: Option<usize>,
}

impl PageQuery {
    /// The range asked for: `after` reads forward from a seq, otherwise the newest
    /// messages before `before` (or the newest of all).
    pub(crate) fn range(&self) -> Result<HistoryRange, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            let mut v = Validator::default();
            v.fail("limit", "must be between 1 and 100");
            v.finish()?;
        }
        Ok(HistoryRange {
            after: self.after,
            before: self.before,
            limit,
            from_newest: self.after.is_none(),
        })
    }
}

/// A page of history with the cursors for the pages around it.
pub(crate) async fn page(
    state: &AppState,
    conversation: ConversationId,
    range: HistoryRange,
) -> Result<serde_json::Value, ApiError> {
    let messages = state.store().events(conversation, range).await?;
    let full = messages.len() == range.limit;
    let first = messages.first().map(|m| m.seq);
    let last = messages.last().map(|m| m.seq);
    let next_before = if range.from_newest && full {
        first.filter(|&s| s > 1)
    } else {
        None
    };
    let next_after = if !range.from_newest && full {
        last
    } else {
        None
    };
    let json: Vec<MessageJson> = messages.iter().map(MessageJson::from).collect();
    Ok(serde_json::json!({
        "conversation": conversation.to_string(),
        "messages": json,
        "next_before": next_before,
        "next_after": next_after,
    }))
}

/// `GET /api/messages/{contact_id}?before=&limit=`: the 1:1 history with a user,
/// oldest first; `next_before` is the cursor for the previous page.
pub(crate) async fn history(
    State(state): State<AppState>,
    me: AuthUser,
    Path(contact): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Ok(contact) = contact.parse::<UserId>() else {
        let mut v = Validator::default();
        v.fail("contactId", "is not a valid id");
        return Err(v
            .finish()
            .err()
            .unwrap_or_else(|| ApiError::internal("unreachable")));
    };
    let range = query.range()?;
    // The id is derived from the two users, so only they can name this conversation; an
    // unknown contact simply has an empty history.
    Ok(Json(
        page(&state, ConversationId::direct(me.user.id, contact), range).await?,
    ))
}
