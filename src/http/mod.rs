//! The HTTP layer: the router, the error envelope, extractors and middleware. Handlers
//! are thin: they parse input into domain types, call a service, and shape its answer;
//! they decide nothing and never touch a store. The router also mounts the realtime
//! transports: the `/ws` upgrade and the Socket.IO layer.

mod client_addr;
mod error;
mod extract;
mod middleware;
mod openapi;
pub(crate) mod routes;
mod schemas;
mod success;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post};

pub use client_addr::ClientAddr;
pub(crate) use error::ErrorEnvelope;
pub use error::{ApiError, Validator, envelope_json};
pub use extract::{ApiJson, ApiQuery, bearer_token, missing_token};
pub use middleware::SECURITY_HEADERS;
pub use success::Success;

use crate::state::AppState;

/// Largest REST request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The application's routes and layers.
pub fn router(state: AppState) -> Result<Router, String> {
    use routes::{
        account, admin, auth, blocks, calls, cluster, contacts, conversations, groups, health,
        messages, presence, receipts, sessions, web, ws,
    };
    // Installed before the first request, so that no count is lost.
    crate::metrics::handle();
    let mut router = Router::new()
        .route("/", get(web::index))
        .route("/web/{file}", get(web::asset))
        .route("/healthz", get(health::health))
        .route("/openapi.json", get(openapi::openapi))
        .route("/metrics", get(admin::metrics))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/auth/sessions", get(sessions::list))
        .route("/api/auth/sessions/{id}", delete(sessions::sign_out))
        .route("/api/auth/password", post(account::change_password))
        .route("/api/auth/account", delete(account::delete))
        .route("/api/auth/export", get(account::export))
        .route("/api/contact/add-contact", post(contacts::add))
        .route("/api/contact/contacts", get(contacts::list))
        .route("/api/messages/send", post(messages::send))
        .route("/api/messages/{contact_id}", get(messages::history))
        .route("/api/call/start", post(calls::start))
        .route("/api/call/answer", post(calls::answer))
        .route("/api/call/end", post(calls::end))
        .route(
            "/api/conversations",
            get(conversations::list).post(groups::create),
        )
        .route(
            "/api/conversations/{id}",
            get(groups::get).patch(groups::rename),
        )
        .route("/api/conversations/{id}/members", post(groups::add_members))
        .route(
            "/api/conversations/{id}/members/{user_id}",
            delete(groups::remove_member).patch(groups::set_role),
        )
        .route(
            "/api/conversations/{id}/messages",
            get(conversations::messages),
        )
        .route(
            "/api/conversations/{id}/receipts",
            get(receipts::list).post(receipts::mark),
        )
        .route(
            "/api/conversations/{id}/messages/{seq}",
            patch(conversations::edit).delete(conversations::delete),
        )
        .route("/api/users/blocked", get(blocks::list))
        .route(
            "/api/users/{id}/block",
            post(blocks::block).delete(blocks::unblock),
        )
        .route(
            "/api/presence",
            get(presence::list).patch(presence::settings),
        )
        .route("/ws", get(ws::upgrade));
    // Without an admin token, the operator route does not exist at all (404).
    if state.config().admin_token.is_some() {
        router = router
            .route("/admin/actors", get(admin::actors))
            .route("/admin/cluster", get(cluster::cluster));
    }
    router = router
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(axum::middleware::from_fn(middleware::log_request))
        // Socket.IO at `/socket.io/`, outside the request log and HTTP metrics (a polling
        // client makes a request every few seconds; its sessions have their own) and
        // inside the security headers and CORS.
        .layer(crate::realtime::socketio::layer(&state))
        // Outside the log, so that the log has the client's address.
        .layer(axum::middleware::from_fn_with_state(
            Arc::from(state.config().trusted_proxies.as_slice()),
            client_addr::resolve,
        ));
    for layer in middleware::security_headers() {
        router = router.layer(layer);
    }
    if let Some(cors) = middleware::cors(&state.config().cors_origins)? {
        router = router.layer(cors);
    }
    Ok(router.with_state(state))
}
