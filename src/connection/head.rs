//! Checks a request head before hyper parses it, so that what hyper would refuse with
//! an empty answer (400, 414, 431) is refused here with the error envelope instead.
//! The limits are below hyper's own, so a head that passes here also passes there.

use super::answer::Refusal;

/// Longest request head (request line and header fields), in bytes.
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Longest request target (path and query), in bytes.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields in a request (hyper's own limit).
pub(crate) const MAX_HEADERS: usize = 100;

/// What the bytes received so far hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// A complete, acceptable head.
    Complete,
    /// The head has not all arrived yet.
    Partial,
    /// A head to refuse.
    Refused(Refusal),
}

/// The prefix of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Checks the start of a request in `buf` (which may hold more: a body, even another
/// request).
pub(crate) fn check(buf: &[u8]) -> Head {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            if len > MAX_HEAD_BYTES {
                return Head::Refused(Refusal::HeadersTooLarge);
            }
            let target = req.path.unwrap_or_default();
            if target.len() > MAX_URI_BYTES {
                return Head::Refused(Refusal::UriTooLong);
            }
            if axum::http::Uri::try_from(target).is_err() {
                return Head::Refused(Refusal::BadRequest);
            }
            if !framing_is_sound(&req) {
                return Head::Refused(Refusal::BadRequest);
            }
            Head::Complete
        }
        Ok(httparse::Status::Partial) => {
            let line_done = buf.contains(&b'\n');
            if !line_done && buf.len() > MAX_URI_BYTES + 64 {
                Head::Refused(Refusal::UriTooLong)
            } else if buf.len() > MAX_HEAD_BYTES {
                Head::Refused(Refusal::HeadersTooLarge)
            } else {
                Head::Partial
            }
        }
        Err(httparse::Error::TooManyHeaders) => Head::Refused(Refusal::HeadersTooLarge),
        Err(_) if buf.starts_with(H2_PREFACE) => Head::Refused(Refusal::Http2),
        Err(_) => Head::Refused(Refusal::BadRequest),
    }
}

/// Whether the body's framing is one hyper accepts: every `Content-Length` a number, all
/// of them equal, and `Transfer-Encoding` only in HTTP/1.1 (a malformed framing is how
/// requests are smuggled past proxies).
fn framing_is_sound(req: &httparse::Request<'_, '_>) -> bool {
    let mut length: Option<u64> = None;
    for field in req.headers.iter() {
        if field.name.eq_ignore_ascii_case("transfer-encoding") && req.version != Some(1) {
            return false;
        }
        if !field.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let Ok(value) = std::str::from_utf8(field.value) else {
            return false;
        };
        for part in value.split(',').map(str::trim) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            let Ok(n) = part.parse::<u64>() else {
                return false;
            };
            if length.is_some_and(|l| l != n) {
                return false;
            }
            length = Some(n);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_request_is_complete_and_a_cut_one_partial() {
        assert_eq!(
            check(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            Head::Complete
        );
        assert_eq!(
            check(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"),
            Head::Partial
        );
        assert_eq!(check(b"GE"), Head::Partial);
    }

    #[test]
    fn malformed_heads_are_bad_requests() {
        for bad in [
            &b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"[..],
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.7\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(
                check(bad),
                Head::Refused(Refusal::BadRequest),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            check(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Head::Refused(Refusal::Http2)
        );
    }

    #[test]
    fn oversized_heads_are_refused_as_soon_as_they_are() {
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES));
        assert_eq!(
            check(long_target.as_bytes()),
            Head::Refused(Refusal::UriTooLong)
        );
        // Without waiting for the end of the request line.
        let endless = format!("GET /{}", "a".repeat(MAX_URI_BYTES + 100));
        assert_eq!(
            check(endless.as_bytes()),
            Head::Refused(Refusal::UriTooLong)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            check(many.as_bytes()),
            Head::Refused(Refusal::HeadersTooLarge)
        );
        let big = format!("GET / HTTP/1.1\r\nX-A: {}\r\n", "b".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            check(big.as_bytes()),
            Head::Refused(Refusal::HeadersTooLarge)
        );
    }
}
