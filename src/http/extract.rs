//! Extractors that turn a request into what handlers need, never rejecting
//! with axum's plain-text answers: a malformed body becomes PARAMERR, an
//! oversized one 413, both in our envelope.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use ipnet::IpNet;
use serde::de::DeserializeOwned;

use super::envelope;
use crate::domain::{Errno, Lang};
use crate::flow::{FlowError, ParamError};
use crate::limits::ClientKey;

/// `Accept-Language` decides: English when `en` is preferred over `zh`.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    let Some(value) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Lang::Zh;
    };
    let mut best: Option<(f32, Lang)> = None;
    for (i, part) in value.split(',').enumerate() {
        let mut bits = part.split(';');
        let tag = bits.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = bits
            .find_map(|b| b.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = if tag == "en" || tag.starts_with("en-") {
            Lang::En
        } else if tag == "zh" || tag.starts_with("zh-") {
            Lang::Zh
        } else {
            continue;
        };
        // Earlier entries win ties, as browsers list them by preference.
        let score = q - (i as f32) * 1e-4;
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, lang));
        }
    }
    best.map_or(Lang::Zh, |(_, l)| l)
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(lang_of(&parts.headers))
    }
}

/// A JSON object body, whatever the `Content-Type` says; empty means `{}`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let lang = lang_of(req.headers());
        let deadline = req.extensions().get::<BodyDeadline>().map(|d| d.0);
        let read = Bytes::from_request(req, state);
        let read = match deadline {
            Some(at) => match tokio::time::timeout_at(at, read).await {
                Ok(r) => r,
                Err(_) => return Err(body_timed_out(lang)),
            },
            None => read.await,
        };
        let bytes = read.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                super::limits::too_large(lang)
            } else {
                envelope::error(lang, &FlowError::Param(ParamError::Body))
            }
        })?;
        parse_object(&bytes)
            .map(JsonBody)
            .ok_or_else(|| envelope::error(lang, &FlowError::Param(ParamError::Body)))
    }
}

/// When the request body must have arrived (`server.body_timeout` after the
/// header), set by [`super::limits::layer`].
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

fn body_timed_out(lang: Lang) -> Response {
    let msg = match lang {
        Lang::Zh => "请求数据超时",
        Lang::En => "The request body did not arrive in time",
    };
    envelope::plain(StatusCode::REQUEST_TIMEOUT, Errno::ParamErr, msg)
}

fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let value: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(bytes).ok()?
    };
    if !value.is_object() {
        return None;
    }
    serde_json::from_value(value).ok()
}

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
/// (`203.0.113.7:5555`, `[2001:db8::1]:443`), as load balancers write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            // `[2001:db8::1]` without a port.
            hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
        })
}

fn canonical(ip: IpAddr) -> IpAddr {
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
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| {
                envelope::plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Errno::ServerErr,
                    "no peer address",
                )
            })?;
        let ip = TrustedProxies::from_ref(state).client_ip(peer, &parts.headers);
        Ok(Client(ClientKey::from_ip(ip)))
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn english_only_when_preferred() {
        assert_eq!(lang_of(&headers(&[])), Lang::Zh);
        assert_eq!(
            lang_of(&headers(&[("accept-language", "en-US,en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            lang_of(&headers(&[("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")])),
            Lang::Zh
        );
        assert_eq!(
            lang_of(&headers(&[("accept-language", "zh;q=0.5,en;q=0.8")])),
            Lang::En
        );
        assert_eq!(lang_of(&headers(&[("accept-language", "fr")])), Lang::Zh);
    }

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

    #[test]
    fn bodies_must_be_json_objects() {
        #[derive(serde::Deserialize)]
        struct B {
            #[allow(dead_code)]
            a: Option<String>,
        }
        assert!(parse_object::<B>(b"").is_some());
        assert!(parse_object::<B>(b"{\"a\":\"x\",\"zzz\":1}").is_some());
        assert!(parse_object::<B>(b"[\"x\"]").is_none());
        assert!(parse_object::<B>(b"{\"a\":1}").is_none());
        assert!(parse_object::<B>(b"{\"a\":").is_none());
        assert!(parse_object::<B>(b"null").is_none());
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[("cookie", "xsession=1; session=abc; csrf_token=\"def\"")]);
        assert_eq!(cookie(&h, "session"), Some("abc"));
        assert_eq!(cookie(&h, "csrf_token"), Some("def"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
