//! Who the client is: the socket peer, or — when the peer is one of
//! `server.trusted_proxies` — the right-most `X-Forwarded-For` hop that is
//! not itself trusted (SPEC §5). Hops may carry ports, as some balancers
//! write them. The [`Client`] extractor hands handlers the key a client is
//! limited under; [`Origin`], what a new session records of it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ipnet::IpNet;

use super::envelope;
use crate::domain::Errno;
use crate::flow::SessionOrigin;
use crate::limits::ClientKey;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The socket peer, or — when the peer is a trusted proxy — the right-most
    /// `X-Forwarded-For` hop that is not itself trusted.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            // A hop we cannot read ends the walk: skipping it would let the
            // entries to its left, which the client wrote, decide.
            let Some(ip) = parse_hop(hop) else { break };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` hop: an address, with or without a port
/// (`203.0.113.7:5555`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            // `[2001:db8::1]` without a port.
            hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
        })
}

/// IPv4-mapped IPv6 addresses are the IPv4 address they map.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client a request is limited as.
pub struct Client(pub ClientKey);

impl<S> FromRequestParts<S> for Client
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts, state).ok_or_else(no_peer)?;
        Ok(Client(ClientKey::from_ip(ip)))
    }
}

/// Where a session starts from: the client's network, masked as logged,
/// and its `User-Agent`.
pub struct Origin(pub SessionOrigin);

impl<S> FromRequestParts<S> for Origin
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts, state).ok_or_else(no_peer)?;
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Ok(Origin(SessionOrigin {
            network: super::trace::masked_network(ip),
            user_agent,
        }))
    }
}

/// The client's address; `None` when the server gave no peer address.
fn client_ip<S>(parts: &Parts, state: &S) -> Option<IpAddr>
where
    TrustedProxies: FromRef<S>,
{
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(TrustedProxies::from_ref(state).client_ip(peer, &parts.headers))
}

fn no_peer() -> Response {
    envelope::plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        Errno::ServerErr,
        "no peer address",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as headers;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let tp = TrustedProxies(std::sync::Arc::new(vec![
            "10.0.0.0/8".parse().expect("cidr"),
        ]));
        let h = headers(&[("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.0.0.2")]);
        let untrusted: IpAddr = "192.0.2.1".parse().expect("ip");
        assert_eq!(tp.client_ip(untrusted, &h), untrusted);
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        // Right-most untrusted hop: the left entries could be forged by the client.
        assert_eq!(
            tp.client_ip(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(tp.client_ip(proxy, &headers(&[])), proxy);
        // Hops with ports are read as their address.
        let ported = headers(&[("x-forwarded-for", "198.51.100.7, 203.0.113.9:51234")]);
        assert_eq!(
            tp.client_ip(proxy, &ported),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
        let v6 = headers(&[("x-forwarded-for", "[2001:db8::7]:443")]);
        assert_eq!(
            tp.client_ip(proxy, &v6),
            "2001:db8::7".parse::<IpAddr>().expect("ip")
        );
        // An unreadable hop stops the walk at the last trusted address.
        let odd = headers(&[("x-forwarded-for", "198.51.100.7, unknown")]);
        assert_eq!(tp.client_ip(proxy, &odd), proxy);
    }
}
