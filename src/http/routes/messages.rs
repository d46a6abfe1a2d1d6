//! Messages over REST, through the same actors as the WebSocket path: sending (to a
//! user or into a conversation) and the 1:1 history.

use actors::domain::{
    ClientId, ConversationId, EventKind, Invalid, MessageBody, MessageContent, Seq, UserId,
};
use actors::store::HistoryRange;
use actors::{SendRequest, Target};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ApiQuery, ErrorEnvelope, Success, Validator, schemas};
use crate::service::{AuthUser, Page, Paging};
use crate::state::AppState;
use crate::wire::{ClientFrame, MessageJson, V1_SEND_FIELDS, v1_field_refusal};

/// The answer to `POST /api/messages/send`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageResponse<'a> {
    message: MessageJson<'a>,
    duplicate: bool,
}

/// A page of one conversation's history.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryPage<'a> {
    conversation_id: String,
    messages: Vec<MessageJson<'a>>,
    /// The `before` of the previous (older) page; null when there is none.
    #[schema(value_type = Option<u64>)]
    next_before: Option<Seq>,
    /// The `after` of the next (newer) page; null when there is none.
    #[schema(value_type = Option<u64>)]
    next_after: Option<Seq>,
}

#[utoipa::path(post, path = "/api/messages/send", tag = "messages", security(("bearer" = [])), request_body = SendBody,
    responses((status = 201, description = "Stored and durable", body = MessageResponse), (status = 200, description = "A retry of a known clientId", body = MessageResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `POST /api/messages/send`: sends `content` to `receiverId` (their 1:1 conversation,
/// created on first use) or into `conversationId` (a conversation of the caller's);
/// exactly one of the two. 201 once durable, 200 with `duplicate: true` for a retry of
/// a `clientId` already used in that conversation.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn send(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<ClientFrame>,
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
    let messaging = state.messaging();
    messaging.check_rate(me.user.id)?;
    let request = SendRequest {
        from: me.user.id,
        target,
        kind: EventKind::Message(MessageContent::text(content)),
        client_id,
        origin: None,
    };
    let sent = messaging.send(request).await?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = MessageResponse {
        message: MessageJson::from(sent.event.as_ref()).with_underscore_id(),
        duplicate: sent.duplicate,
    };
    Ok((status, Success(body)).into_response())
}

/// The body of `POST /api/messages/send` as the document gives it: the fields of a
/// `send` frame, with exactly one of `receiverId` and `conversationId`. The handler reads
/// a [`ClientFrame`] (which also names refused v1 fields); these types only describe it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "describes the request in the OpenAPI document only"
)]
pub(crate) enum SendBody {
    /// To a user: their 1:1 conversation, created on first use.
    ToUser(SendToUser),
    /// Into a conversation the caller is in.
    InConversation(SendInConversation),
}

/// A send to a user.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the request in the OpenAPI document only"
)]
pub(crate) struct SendToUser {
    /// The other user's id.
    receiver_id: uuid::Uuid,
    /// The text: not only whitespace, at most --max-message-chars (4096) characters.
    #[schema(schema_with = schemas::message_content, required = true)]
    content: String,
    /// The retry key: a repeat returns the original message.
    #[schema(schema_with = schemas::client_id)]
    client_id: Option<String>,
}

/// A send into a conversation.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the request in the OpenAPI document only"
)]
pub(crate) struct SendInConversation {
    /// The conversation's id.
    conversation_id: uuid::Uuid,
    /// The text: not only whitespace, at most --max-message-chars (4096) characters.
    #[schema(schema_with = schemas::message_content, required = true)]
    content: String,
    /// The retry key: a repeat returns the original message.
    #[schema(schema_with = schemas::client_id)]
    client_id: Option<String>,
}

/// The largest `before` or `after`: `i64::MAX`, the end of OpenAPI's `int64`.
const MAX_SEQ_PARAM: u64 = i64::MAX as u64;

/// Paging parameters shared by the history routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// The newest messages before this seq (the newest of all without it).
    #[param(maximum = 9_223_372_036_854_775_807_u64)]
    pub(crate) before: Option<u64>,
    /// The oldest messages after this seq.
    #[param(maximum = 9_223_372_036_854_775_807_u64)]
    pub(crate) after: Option<u64>,
    /// How many, 1 to 100 (50 by default).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<usize>,
    /// Numbered paging, as the backend Parley replaces did (page 1 is the newest); not
    /// with `before` or `after`.
    #[param(minimum = 1, maximum = 9_223_372_036_854_775_807_u64)]
    pub(crate) page: Option<u64>,
}

impl PageQuery {
    /// The page asked for: `page` counts pages back from the newest; otherwise `after`
    /// reads forward from a seq, and `before` (or nothing) reads the newest messages
    /// before it.
    pub(crate) fn paging(&self) -> Result<Paging, ApiError> {
        let limit = self.limit.unwrap_or(50);
        let mut v = Validator::default();
        if !(1..=100).contains(&limit) {
            v.fail("limit", "must be between 1 and 100");
        }
        // Seqs never come near it, and it is where the OpenAPI document's int64 ends.
        let too_big = "must be at most 9223372036854775807";
        if self.before.is_some_and(|s| s > MAX_SEQ_PARAM) {
            v.fail("before", too_big);
        }
        if self.after.is_some_and(|s| s > MAX_SEQ_PARAM) {
            v.fail("after", too_big);
        }
        match self.page {
            Some(0) => v.fail("page", "must be 1 or more"),
            Some(page) if page > MAX_SEQ_PARAM => v.fail("page", too_big),
            Some(_) if self.before.is_some() || self.after.is_some() => {
                v.fail("page", "must not be given with before or after");
            }
            _ => {}
        }
        v.finish()?;
        Ok(match self.page {
            Some(page) => Paging::Number { page, limit },
            None => Paging::Cursor(HistoryRange {
                after: self.after,
                before: self.before,
                limit,
                from_newest: self.after.is_none(),
            }),
        })
    }
}

/// A page of history as clients see it.
pub(crate) fn page_response(page: &Page) -> Response {
    let body = HistoryPage {
        conversation_id: page.conversation.to_string(),
        messages: page
            .events
            .iter()
            .map(|e| MessageJson::from(e).with_underscore_id())
            .collect(),
        next_before: page.next_before,
        next_after: page.next_after,
    };
    Success(body).into_response()
}

#[utoipa::path(get, path = "/api/messages/{contact_id}", tag = "messages", security(("bearer" = [])),
    params(("contact_id" = uuid::Uuid, Path, description = "The other user's id"), PageQuery),
    responses((status = 200, description = "A page of history, oldest first", body = HistoryPage), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/messages/{contactId}?before=&after=&limit=&page=`: the 1:1 history with a
/// user, oldest first; `nextBefore` is the cursor for the previous page, `page` counts
/// pages from the newest.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
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
    let paging = query.paging()?;
    let page = state
        .conversations()
        .direct_page(me.user.id, contact, paging)
        .await?;
    Ok(page_response(&page))
}
