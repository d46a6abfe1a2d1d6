//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! attributes and the typed bodies they name, and served at `GET /openapi.json`. A test
//! (`tests/api/openapi.rs`) fails when a route of the router is missing from it.

use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi};

use super::routes::{
    account, admin, auth, blocks, calls, contacts, conversations, groups, health, messages,
    presence, receipts, sessions, web, ws,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Parley",
        description = "A real-time chat backend. Every body is camelCase JSON (protocol v2); every error is the `Error` envelope. The WebSocket protocol behind `GET /ws` is in docs/protocol.md.",
    ),
    paths(
        auth::register,
        auth::login,
        auth::logout,
        auth::me,
        auth::refresh,
        sessions::list,
        sessions::sign_out,
        account::change_password,
        account::delete,
        account::export,
        contacts::add,
        contacts::list,
        messages::send,
        messages::history,
        calls::start,
        calls::answer,
        calls::end,
        conversations::list,
        conversations::messages,
        conversations::edit,
        conversations::delete,
        receipts::mark,
        receipts::list,
        presence::list,
        presence::settings,
        blocks::block,
        blocks::unblock,
        blocks::list,
        groups::create,
        groups::get,
        groups::rename,
        groups::add_members,
        groups::remove_member,
        groups::set_role,
        ws::upgrade,
        health::health,
        admin::metrics,
        admin::actors,
        crate::http::routes::cluster::cluster,
        web::index,
        web::asset,
        openapi,
    ),
    modifiers(&Security, &SuccessField),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "contacts", description = "Contacts, added by email"),
        (name = "messages", description = "Sending, and the 1:1 history"),
        (name = "conversations", description = "The caller's conversations, their history, and groups"),
        (name = "calls", description = "Calls between two users, rung on their live sessions"),
        (name = "blocking", description = "Blocking users, and the users one blocks"),
        (name = "presence", description = "Online, offline and last seen of contacts and co-members"),
        (name = "realtime", description = "The WebSocket upgrade"),
        (name = "operations", description = "Health, metrics, inspection"),
        (name = "web client", description = "The browser client served by the binary"),
    )
)]
pub(crate) struct ApiDoc;

/// The auth schemes: user tokens (from register or login) and the operator's token.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(what.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "bearer",
            bearer(
                "A token from register or login (HS256 JWT), as `Authorization: Bearer <token>`.",
            ),
        );
        components.add_security_scheme(
            "admin",
            bearer("The operator's token (--admin-token), as `Authorization: Bearer <token>`."),
        );
    }
}

/// Every success body of `/api/` carries `success: true` beside its own fields (see
/// `http::success`): its 2xx schemas become `allOf` the body's and `Success`.
struct SuccessField;

impl Modify for SuccessField {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let success = ObjectBuilder::new()
            .property(
                "success",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([true])),
            )
            .required("success")
            .description(Some("`success: true`, beside the body's own fields."))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .schemas
            .insert("Success".to_owned(), RefOr::T(Schema::Object(success)));
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, response) in operation.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if !status.starts_with('2') {
                        continue;
                    }
                    for content in response.content.values_mut() {
                        let Some(body) = content.schema.take() else {
                            continue;
                        };
                        let both = AllOfBuilder::new()
                            .item(body)
                            .item(Ref::from_schema_name("Success"))
                            .build();
                        content.schema = Some(RefOr::T(Schema::AllOf(both)));
                    }
                }
            }
        }
    }
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    // Built once: the text fields' patterns are computed by scanning every character.
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);
    Json(DOC.clone())
}
