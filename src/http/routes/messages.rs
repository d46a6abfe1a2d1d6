//! Messages over REST, through the same actors as the WebSocket path: sending (to a
//! user or into a conversation) and the 1:1 history.

use actors::domain::{ClientId, ConversationId, Invalid, MessageBody, Seq, UserId};
use actors::store::HistoryRange;
use actors::{SendError, SendRequest, Target};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::http::{ApiError, ApiJson, ApiQuery, AppState, Validator};
use crate::wire::{MessageJson, V1_SEND_FIELDS, present, v1_field_refusal};

/// The body of `POST /api/messages/send`: the same fields as a WebSocket `send` frame.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendBody {
    receiver_id: Option<String>,
    conversation_id: Option<String>,
    content: Option<String>,
    client_id: Option<String>,
    // v1 names, read only to refuse them (see `wire::V1_SEND_FIELDS`).
    #[serde(rename = "to", default, deserialize_with = "present")]
    v1_to: bool,
    #[serde(rename = "conversation", default, deserialize_with = "present")]
    v1_conversation: bool,
    #[serde(rename = "body", default, deserialize_with = "present")]
    v1_body: bool,
    #[serde(rename = "client_id", default, deserialize_with = "present")]
    v1_client_id: bool,
}

/// The answer to `POST /api/messages/send`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageResponse<'a> {
    message: MessageJson<'a>,
    duplicate: bool,
}

/// A page of one conversation's history.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryPage<'a> {
    conversation_id: String,
    messages: Vec<MessageJson<'a>>,
    /// The `before` of the previous (older) page; null when there is none.
    next_before: Option<Seq>,
    /// The `after` of the next (newer) page; null when there is none.
    next_after: Option<Seq>,
}

/// How a failed send reads over HTTP (the WebSocket layer uses the same codes).
pub(crate) fn send_error(e: SendError) -> ApiError {
    let (status, code) = send_error_code(&e);
    match e {
        SendError::Store(cause) => ApiError::internal(cause),
        other => ApiError::new(status, code, send_error_message(&other)),
    }
}

/// The sentence a failed send is answered with, over HTTP and WebSocket: the error's
/// own, in the wire's words (the retry key is `clientId` there).
pub(crate) fn send_error_message(e: &SendError) -> String {
    match e {
        SendError::Failed => {
            "The conversation failed while handling this message; retry with the same clientId."
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// Status and code of a send error.
pub(crate) fn send_error_code(e: &SendError) -> (StatusCode, &'static str) {
    match e {
        SendError::RecipientNotFound => (StatusCode::NOT_FOUND, "recipient_not_found"),
        SendError::CannotMessageSelf => (StatusCode::BAD_REQUEST, "cannot_message_self"),
        SendError::NotParticipant => (StatusCode::NOT_FOUND, "not_participant"),
        SendError::Failed => (StatusCode::SERVICE_UNAVAILABLE, "conversation_failed"),
        SendError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "conversation_unavailable"),
        SendError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        SendError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        SendError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// `POST /api/messages/send`: sends `content` to `receiverId` (their 1:1 conversation,
/// created on first use) or into `conversationId` (a conversation of the caller's);
/// exactly one of the two. 201 once durable, 200 with `duplicate: true` for a retry of
/// a `clientId` already used in that conversation.
pub(crate) async fn send(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Response, ApiError> {
    let max = state.config().max_message_chars;
    let mut v = Validator::default();
    let target = match (body.receiver_id.as_deref(), body.conversation_id.as_deref()) {
        (Some(id), None) => v.field("receiverId", Some(id), |s| {
            s.parse::<UserId>()
                .map(Target::User)
                .map_err(|_| Invalid("is not a valid id"))
        }),
        (None, Some(id)) => v.field("conversationId", Some(id), |s| {
            s.parse::<ConversationId>()
                .map(Target::Conversation)
                .map_err(|_| Invalid("is not a valid id"))
        }),
        // A v1 target (`to`, `conversation`) is refused below, naming its v2 field.
        (None, None) if body.v1_to || body.v1_conversation => None,
        (None, None) => {
            v.fail("receiverId", "is required unless conversationId is given");
            v.fail("conversationId", "is required unless receiverId is given");
            None
        }
        (Some(_), Some(_)) => {
            v.fail("receiverId", "must not be given with conversationId");
            v.fail("conversationId", "must not be given with receiverId");
            None
        }
    };
    let content = v.field("content", body.content.as_deref(), |s| {
        MessageBody::parse(s, max)
    });
    let client_id = match body.client_id.as_deref() {
        None => None,
        Some(raw) => v.field("clientId", Some(raw), ClientId::parse),
    };
    let v1 = [
        body.v1_to,
        body.v1_conversation,
        body.v1_body,
        body.v1_client_id,
    ];
    for (&(v1_name, v2_name), _) in V1_SEND_FIELDS.iter().zip(v1).filter(|(_, given)| *given) {
        v.fail(v2_name, &v1_field_refusal(v1_name, v2_name));
    }
    v.finish()?;
    let (Some(target), Some(content)) = (target, content) else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    state
        .limits()
        .sends
        .check(&me.user.id)
        .map_err(ApiError::rate_limited)?;
    let request = SendRequest {
        from: me.user.id,
        target,
        body: content,
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
        message: MessageJson::from(sent.message.as_ref()),
        duplicate: sent.duplicate,
    };
    Ok((status, Json(body)).into_response())
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
) -> Result<Response, ApiError> {
    let messages = state.store().messages(conversation, range).await?;
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
    let body = HistoryPage {
        conversation_id: conversation.to_string(),
        messages: messages.iter().map(MessageJson::from).collect(),
        next_before,
        next_after,
    };
    Ok(Json(body).into_response())
}

/// `GET /api/messages/{contactId}?before=&limit=`: the 1:1 history with a user,
/// oldest first; `nextBefore` is the cursor for the previous page.
pub(crate) async fn history(
    State(state): State<AppState>,
    me: AuthUser,
    Path(contact): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
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
    page(&state, ConversationId::direct(me.user.id, contact), range).await
}
