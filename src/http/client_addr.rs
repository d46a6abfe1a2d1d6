//! Which address a request comes from, for per-address limits and the request log.
//!
//! The TCP peer, unless the peer is one of the configured trusted proxies
//! (`--trusted-proxy`): then it is the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy. Each proxy appends the address it saw to the right, so that
//! entry is the last one a proxy of ours vouches for; anything left of it was written by
//! the client and is ignored. From any other peer the header is ignored entirely: trusting
//! it would let every client choose its own address, and its own rate-limit budget.
//! `Forwarded` is not read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use super::ApiError;

/// The address of the client a request came from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of a request from `peer` with `headers`, given the trusted
    /// proxies.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Self {
        let trusts = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        let mut client = peer.to_canonical();
        if !trusts(&client) {
            return Self(client);
        }
        // Right to left, over every header line; the first entry no proxy of ours wrote
        // is the client. An entry that is not an address ends the walk: nothing left of
        // it can be vouched for, so the last trusted hop stands for the client.
        for line in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(line) = line.to_str() else {
                return Self(client);
            };
            for entry in line.rsplit(',').map(str::trim).filter(|e| !e.is_empty()) {
                let Some(ip) = parse_entry(entry) else {
                    return Self(client);
                };
                client = ip.to_canonical();
                if !trusts(&client) {
                    return Self(client);
                }
            }
        }
        Self(client)
    }

    /// The key of per-address rate limits: IPv6 clients by their /64.
    pub fn rate_key(self) -> IpAddr {
        crate::auth::rate_key(self.0)
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`[v6]:port` or
/// `v4:port`, which some proxies write).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

/// Middleware: resolves the client address once per request (from the connection's
/// peer, which the server puts in the request) and stores it for [`ClientAddr`]'s
/// extractor and the request log.
pub(crate) async fn resolve(
    State(trusted): State<Arc<[IpNet]>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client = ClientAddr::resolve(peer.ip(), req.headers(), &trusted);
        req.extensions_mut().insert(client);
    }
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .ok_or_else(|| ApiError::internal("a request without a client address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_trusted_proxy;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().unwrap());
        }
        h
    }

    fn trusted() -> Vec<IpNet> {
        ["10.0.0.0/8", "192.0.2.1"]
            .iter()
            .map(|s| parse_trusted_proxy(s).unwrap())
            .collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = xff(&["198.51.100.7"]);
        assert_eq!(
            ClientAddr::resolve(ip("203.0.113.9"), &h, &trusted()).0,
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_is_the_client() {
        // The client forged the first entry; the proxies appended the rest.
        let h = xff(&["1.1.1.1, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(
            ClientAddr::resolve(ip("192.0.2.1"), &h, &trusted()).0,
            ip("198.51.100.7")
        );
        let h = xff(&["198.51.100.7:5555, 10.9.9.9"]);
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &h, &trusted()).0,
            ip("198.51.100.7")
        );
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &h, &trusted()).0,
            ip("2001:db8::1")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let h = xff(&["198.51.100.7, unknown, 10.2.2.2"]);
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &h, &trusted()).0,
            ip("10.2.2.2")
        );
        // No header at all: the proxy itself.
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &HeaderMap::new(), &trusted()).0,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let h = xff(&["198.51.100.7"]);
        assert_eq!(
            ClientAddr::resolve(ip("::ffff:10.0.0.1"), &h, &trusted()).0,
            ip("198.51.100.7")
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        assert_eq!(
            parse_trusted_proxy("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_trusted_proxy("::1").unwrap().to_string(), "::1/128");
        assert!(parse_trusted_proxy("proxy.internal").is_err());
    }
}
