//! One span per request, carrying a request id (taken from `x-request-id`
//! when it looks sane, else generated, and echoed back) and the route
//! template, and the client's network (IPv4 /24, IPv6 /48: enough to trace an
//! attack, not enough to name a person). Raw paths and query strings are
//! never logged: they hold mobile numbers and captcha answers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, field};

use super::client_address::TrustedProxies;
use crate::secret;

const HEADER: &str = "x-request-id";

pub async fn layer(
    State(trusted): State<TrustedProxies>,
    mut req: Request,
    next: Next,
) -> Response {
    let client_net = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| masked_network(trusted.client_ip(c.0.ip(), req.headers())))
        .unwrap_or_else(|| "-".to_owned());
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map_or_else(|| secret::random_hex(8), str::to_owned);
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(HEADER, v);
    }
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, route = field::Empty, client_net = %client_net);
    let started = Instant::now();
    let ctx = crate::audit::RequestContext {
        request_id: id.clone(),
        client_net: client_net.clone(),
    };
    let mut resp = crate::audit::in_request(ctx, next.run(req).instrument(span.clone())).await;
    let status = resp.status().as_u16();
    // Unmatched requests share one label, so probing random paths cannot
    // grow the metric's label set.
    let route = resp
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0.as_str())
        .to_owned();
    crate::meter::http_request(&route, method.as_str(), status, started.elapsed());
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_us = started.elapsed().as_micros() as u64,
            "request done"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}

/// The client's network as logged: `203.0.113.0/24`, `2001:db8:1::/48`.
pub fn masked_network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{}/24", Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => masked_network(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{}/48", Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
            }
        },
    }
}

/// The matched route, handed from the inner layer back to the outer one.
#[derive(Clone)]
struct RouteTemplate(String);

/// Runs after routing, so the route template is known.
pub async fn record_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    if let Some(r) = &route {
        tracing::Span::current().record("route", r.as_str());
    }
    let mut resp = next.run(req).await;
    if let Some(r) = route {
        resp.extensions_mut().insert(RouteTemplate(r));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_masked_to_24_and_48_bits() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(masked_network(ip("203.0.113.77")), "203.0.113.0/24");
        assert_eq!(masked_network(ip("2001:db8:1:2::5")), "2001:db8:1::/48");
        assert_eq!(masked_network(ip("::ffff:198.51.100.9")), "198.51.100.0/24");
    }
}
