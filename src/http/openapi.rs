//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! attributes and the typed bodies they name, and served at `GET /openapi.json`. A test
//! (`tests/api/openapi.rs`) fails when a route of the router is missing from it.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes::{
    account, admin, auth, contacts, conversations, health, messages, sessions, web, ws,
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
        conversations::list,
        conversations::messages,
        ws::upgrade,
        health::health,
        admin::metrics,
        admin::actors,
        web::index,
        web::asset,
        openapi,
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "contacts", description = "Contacts, added by email"),
        (name = "messages", description = "Sending, and the 1:1 history"),
        (name = "conversations", description = "The caller's conversations and their history"),
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

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
