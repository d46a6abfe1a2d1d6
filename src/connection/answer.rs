//! Answers the connection layer writes itself, for requests it refuses before hyper and
//! the router see them: the same JSON error envelope and security headers as every
//! other answer, and `Connection: close`.

use axum::http::StatusCode;
use bytes::Bytes;

use crate::http::{SECURITY_HEADERS, envelope_json};

/// Why a connection was refused or cut off, with the answer it gets (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Past `--max-http-connections`: 503 `too_many_connections`.
    TooManyConnections,
    /// The request head is not HTTP/1.1: 400 `bad_request`.
    BadRequest,
    /// The HTTP/2 connection preface (h2c, which Parley does not serve): 400 `bad_request`.
    Http2,
    /// The request target is longer than allowed: 414 `uri_too_long`.
    UriTooLong,
    /// The request head is larger, or has more fields, than allowed: 431
    /// `headers_too_large`.
    HeadersTooLarge,
    /// A request's head did not arrive in time: 408 `request_timeout`.
    HeaderTimeout,
    /// No request began in time: closed without an answer (there is no request to
    /// answer).
    Idle,
}

impl Refusal {
    /// The `reason` label of `parley_connections_refused_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::TooManyConnections => "too_many_connections",
            Self::BadRequest | Self::Http2 => "bad_request",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::HeaderTimeout => "header_timeout",
            Self::Idle => "idle_timeout",
        }
    }

    /// The status, error code and message of the answer; `None` for a silent close.
    fn parts(self) -> Option<(StatusCode, &'static str, &'static str)> {
        Some(match self {
            Self::TooManyConnections => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "The server holds as many connections as it allows; try again later.",
            ),
            Self::BadRequest => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request is not valid HTTP/1.1.",
            ),
            Self::Http2 => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "HTTP/2 without TLS is not served here; use HTTP/1.1.",
            ),
            Self::UriTooLong => (
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                "The request target is too long.",
            ),
            Self::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "The request headers are too large.",
            ),
            Self::HeaderTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The request did not arrive in time.",
            ),
            Self::Idle => return None,
        })
    }

    /// The whole HTTP/1.1 answer, head and body; empty for a silent close.
    pub(crate) fn answer(self) -> Bytes {
        let Some((status, code, message)) = self.parts() else {
            return Bytes::new();
        };
        let body = envelope_json(code, message);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        );
        for (name, value) in SECURITY_HEADERS {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        Bytes::from(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_a_complete_response_with_the_envelope() {
        let answer = Refusal::HeadersTooLarge.answer();
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("x-content-type-options: nosniff"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "headers_too_large");
        assert!(Refusal::Idle.answer().is_empty());
    }
}
