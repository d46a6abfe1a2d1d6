//! The web client: a few static files embedded in the binary and served at `/`, each
//! with the content security policy the page needs (the API keeps its strict one). No
//! bundler and no build step: plain HTML, CSS and ES modules from `web/`.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::{ApiError, ErrorEnvelope};

/// What the page needs and nothing else: its own scripts, styles and icon, and fetch and
/// WebSocket to its own origin (`'self'` covers `ws:`/`wss:` on the same host). No inline
/// script or style, no eval, no frames, forms post nowhere.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `/`, its media type, its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the web client. A new module is added here and nowhere else.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        media_type: "text/html; charset=utf-8",
        body: include_str!("../../../web/index.html"),
    },
    Asset {
        name: "app.css",
        media_type: "text/css; charset=utf-8",
        body: include_str!("../../../web/app.css"),
    },
    Asset {
        name: "app.js",
        media_type: JS,
        body: include_str!("../../../web/app.js"),
    },
    Asset {
        name: "api.js",
        media_type: JS,
        body: include_str!("../../../web/api.js"),
    },
    Asset {
        name: "connection.js",
        media_type: JS,
        body: include_str!("../../../web/connection.js"),
    },
    Asset {
        name: "store.js",
        media_type: JS,
        body: include_str!("../../../web/store.js"),
    },
    Asset {
        name: "icon.svg",
        media_type: "image/svg+xml",
        body: include_str!("../../../web/icon.svg"),
    },
];

/// `GET /`: the web client's page.
#[utoipa::path(get, path = "/", tag = "web client", responses((status = 200, description = "The page", body = String, content_type = "text/html")))]
pub(crate) async fn index() -> Response {
    serve("index.html")
}

/// `GET /web/{file}`: one of the web client's scripts, styles or images.
#[utoipa::path(get, path = "/web/{file}", tag = "web client", params(("file" = String, Path, description = "A file name such as app.js", example = "app.js")),
    responses((status = 200, description = "The file", content((String = "text/javascript"), (String = "text/css"), (String = "image/svg+xml"), (String = "text/html"))),
        (status = 404, description = "No such file", body = ErrorEnvelope)))]
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is no such file.")
            .into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.media_type));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    // Embedded in the binary: a new build is a new version, so ask the browser to check.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
