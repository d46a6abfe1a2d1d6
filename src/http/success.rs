//! The success envelope: every success body of the client API is its own fields plus
//! `success: true`, as the backend Parley replaces answered (errors carry
//! `success: false`, see `error`).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A success body: `{"success": true, ...the fields of T}`.
pub struct Success<T>(pub T);

#[derive(Serialize)]
struct Envelope<'a, T> {
    success: bool,
    #[serde(flatten)]
    body: &'a T,
}

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        Json(Envelope {
            success: true,
            body: &self.0,
        })
        .into_response()
    }
}
