//! Groups: create one, see it, rename it, add and remove members, change a role. Every
//! change answers with the membership event it put into the group's stream (the same
//! object live sessions and `sync` get).

use actors::SendError;
use actors::domain::{ConversationId, DisplayName, Event, Invalid, Role, UserId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, ErrorEnvelope, Success, Validator, schemas};
use crate::service::{AuthUser, GroupView, ServiceError};
use crate::state::AppState;
use crate::wire::{MessageJson, UserJson, rfc3339};

/// The body of `POST /api/conversations`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateGroupBody {
    /// The group's name: 1 to 64 visible characters.
    #[schema(schema_with = schemas::display_name, required = true)]
    name: Option<String>,
    /// The other members' user ids (the caller is the owner, and need not be listed).
    #[schema(value_type = Vec<uuid::Uuid>)]
    member_ids: Option<Vec<String>>,
}

/// The body of `PATCH /api/conversations/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RenameBody {
    /// The new name: 1 to 64 visible characters.
    #[schema(schema_with = schemas::display_name, required = true)]
    name: Option<String>,
}

/// The body of `POST /api/conversations/{id}/members`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddMembersBody {
    /// The users to add (at least one).
    #[schema(value_type = Vec<uuid::Uuid>, min_items = 1)]
    user_ids: Option<Vec<String>>,
}

/// The body of `PATCH /api/conversations/{id}/members/{userId}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleBody {
    /// `admin` or `member`.
    #[schema(value_type = String, pattern = "^(admin|member)$")]
    role: Option<String>,
}

/// A member of a group.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberJson {
    #[serde(flatten)]
    user: UserJson,
    /// `owner`, `admin` or `member`.
    role: &'static str,
    /// The first seq this member may read (the event that added them).
    since: u64,
}

/// A group with its members.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Group)]
pub(crate) struct GroupJson {
    id: String,
    name: String,
    created_at: String,
    members: Vec<MemberJson>,
}

/// The answer to `POST /api/conversations` and `GET /api/conversations/{id}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupResponse {
    conversation: GroupJson,
}

/// The answer to a change of a group: the membership event it sequenced.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChangeResponse<'a> {
    message: MessageJson<'a>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

fn group_json(view: &GroupView) -> GroupJson {
    let c = &view.conversation;
    let group = c.group.as_ref();
    GroupJson {
        id: c.id.to_string(),
        name: group.map(|g| g.name.clone()).unwrap_or_default(),
        created_at: rfc3339(c.created_at),
        members: view
            .members
            .iter()
            .filter_map(|u| {
                let m = group?.members.get(&u.id)?;
                Some(MemberJson {
                    user: UserJson::from(u).with_underscore_id(),
                    role: role_name(m.role),
                    since: m.since,
                })
            })
            .collect(),
    }
}

fn change_response(status: StatusCode, event: &Event) -> Response {
    let body = ChangeResponse {
        message: MessageJson::from(event).with_underscore_id(),
    };
    (status, Success(body)).into_response()
}

/// A conversation id from the path; one that does not parse names no conversation.
fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    raw.parse()
        .map_err(|_| ServiceError::ConversationNotFound.into())
}

/// A member's id from the path; one that does not parse names no member.
fn member_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map_err(|_| ServiceError::from(SendError::MemberNotFound).into())
}

/// Parses a list of user ids, naming the field when one does not parse.
fn user_ids(v: &mut Validator, field: &'static str, raw: Option<&[String]>) -> Vec<UserId> {
    let Some(raw) = raw else {
        v.fail(field, "is required");
        return Vec::new();
    };
    let mut ids = Vec::with_capacity(raw.len());
    for s in raw {
        match s.parse::<UserId>() {
            Ok(id) => ids.push(id),
            Err(_) => {
                v.fail(field, "must hold only valid user ids");
                return Vec::new();
            }
        }
    }
    ids
}

#[utoipa::path(post, path = "/api/conversations", tag = "conversations", security(("bearer" = [])), request_body = CreateGroupBody,
    responses((status = 201, description = "Created; its first event, `created`, is sequenced", body = GroupResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `POST /api/conversations`: creates a group named `name` with `memberIds`; the caller
/// is its owner. 404 `member_not_found` when a member does not exist, 409 `group_full`
/// over `--max-group-members`.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<CreateGroupBody>,
) -> Result<Response, ApiError> {
    let mut v = Validator::default();
    let name = v.field("name", body.name.as_deref(), DisplayName::parse);
    let members = user_ids(&mut v, "memberIds", body.member_ids.as_deref());
    v.finish()?;
    let Some(name) = name else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let view = state.groups().create(me.user.id, name, &members).await?;
    let body = GroupResponse {
        conversation: group_json(&view),
    };
    Ok((StatusCode::CREATED, Success(body)).into_response())
}

#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The group's id")),
    responses((status = 200, description = "The group with its members", body = GroupResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `GET /api/conversations/{id}`: a group with its members and their roles; 404 for
/// anyone but a member.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn get(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Success<GroupResponse>, ApiError> {
    let id = conversation_id(&id)?;
    let view = state.groups().get(me.user.id, id).await?;
    Ok(Success(GroupResponse {
        conversation: group_json(&view),
    }))
}

#[utoipa::path(patch, path = "/api/conversations/{id}", tag = "conversations", security(("bearer" = [])), request_body = RenameBody,
    params(("id" = uuid::Uuid, Path, description = "The group's id")),
    responses((status = 200, description = "Renamed: the `renamed` event", body = ChangeResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `PATCH /api/conversations/{id}`: renames a group (owner or admin; 403 otherwise).
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn rename(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<Response, ApiError> {
    let id = conversation_id(&id)?;
    let mut v = Validator::default();
    let name = v.field("name", body.name.as_deref(), DisplayName::parse);
    v.finish()?;
    let Some(name) = name else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let event = state.groups().rename(me.user.id, id, name).await?;
    Ok(change_response(StatusCode::OK, &event))
}

#[utoipa::path(post, path = "/api/conversations/{id}/members", tag = "conversations", security(("bearer" = [])), request_body = AddMembersBody,
    params(("id" = uuid::Uuid, Path, description = "The group's id")),
    responses((status = 201, description = "Added: the `added` event", body = ChangeResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `POST /api/conversations/{id}/members`: adds `userIds` (owner or admin). They read
/// the group's history from this event on. 409 `already_member`, 409 `group_full`.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn add_members(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddMembersBody>,
) -> Result<Response, ApiError> {
    let id = conversation_id(&id)?;
    let mut v = Validator::default();
    let users = user_ids(&mut v, "userIds", body.user_ids.as_deref());
    if body.user_ids.as_ref().is_some_and(Vec::is_empty) {
        v.fail("userIds", "must name at least one user");
    }
    v.finish()?;
    let event = state.groups().add(me.user.id, id, &users).await?;
    Ok(change_response(StatusCode::CREATED, &event))
}

#[utoipa::path(delete, path = "/api/conversations/{id}/members/{user_id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The group's id"), ("user_id" = uuid::Uuid, Path, description = "The member to remove; the caller's own id to leave")),
    responses((status = 200, description = "Removed (or left): the event", body = ChangeResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `DELETE /api/conversations/{id}/members/{userId}`: removes a member (owner or admin;
/// nobody removes the owner), or leaves when `userId` is the caller's own id.
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    me: AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = conversation_id(&id)?;
    let user = member_id(&user)?;
    let event = state.groups().remove(me.user.id, id, user).await?;
    Ok(change_response(StatusCode::OK, &event))
}

#[utoipa::path(patch, path = "/api/conversations/{id}/members/{user_id}", tag = "conversations", security(("bearer" = [])), request_body = RoleBody,
    params(("id" = uuid::Uuid, Path, description = "The group's id"), ("user_id" = uuid::Uuid, Path, description = "The member")),
    responses((status = 200, description = "Changed: the `role_changed` event", body = ChangeResponse), (status = "4XX", description = "Refused", body = ErrorEnvelope)))]
/// `PATCH /api/conversations/{id}/members/{userId}`: makes a member an admin, or an
/// admin a member again (owner only).
#[tracing::instrument(skip_all, fields(user_id = %me.user.id))]
pub(crate) async fn set_role(
    State(state): State<AppState>,
    me: AuthUser,
    Path((id, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Response, ApiError> {
    let id = conversation_id(&id)?;
    let user = member_id(&user)?;
    let mut v = Validator::default();
    let role = v.field("role", body.role.as_deref(), |s| match s {
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        _ => Err(Invalid("must be admin or member")),
    });
    v.finish()?;
    let Some(role) = role else {
        return Err(ApiError::internal("validator passed a missing field"));
    };
    let event = state.groups().set_role(me.user.id, id, user, role).await?;
    Ok(change_response(StatusCode::OK, &event))
}
