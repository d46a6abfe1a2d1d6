//! Cross-cutting layers: one log line per request, security headers, CORS.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use super::ClientAddr;

/// Logs method, route template, client address, status and latency. The route
/// template, not the path, so that ids never land in the log, and no query string, which
/// may carry a token.
pub(crate) async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        target: "parley::http",
        method = %method,
        route,
        client = client.map(tracing::field::display),
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// The equivalent of helmet's defaults, for an API that serves no pages: every answer
/// carries them, the router's and the connection layer's own (`crate::connection`).
pub const SECURITY_HEADERS: [(&str, &str); 7] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (
        "strict-transport-security",
        "max-age=15552000; includeSubDomains",
    ),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-dns-prefetch-control", "off"),
];

/// [`SECURITY_HEADERS`] as layers that add each one unless the handler set it.
pub(crate) fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 7] {
    SECURITY_HEADERS.map(|(name, value)| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    })
}

/// CORS for the configured origins only, with credentials (as the backend Parley
/// replaces allowed: Socket.IO's polling requests send cookies when a browser client
/// asks `withCredentials`); `None` when there are none.
pub(crate) fn cors(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let parsed = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| format!("invalid CORS origin {o:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(parsed))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .allow_credentials(true)
            .max_age(Duration::from_secs(600)),
    ))
}
