//! CSRF rules of SPEC §2 and the `csrf_token` cookie.
//!
//! A state-changing request is refused (403) when the browser marks it as
//! cross-site, when its `Origin` names another host or scheme, or when it
//! carries a token header that differs from its `csrf_token` cookie. The
//! request's host is `Host`, or the `:authority` of an HTTP/2 request; its
//! scheme is the `X-Forwarded-Proto` of a trusted proxy, else `https` when
//! `server.secure_cookies` says the site is served over HTTPS, else `http`.
//! An `http` Origin posting to an `https` site is refused (a downgrade); an
//! `https` Origin is accepted for its host (TLS ended by a proxy phoneauth
//! was not told about). Clients that send
//! none of these (curl, apps) pass, unless `csrf.require_token` is set.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::client_address::TrustedProxies;
use super::extract::cookie;
use super::{envelope, messages};
use crate::domain::Errno;
use crate::secret;

pub const CSRF_COOKIE: &str = "csrf_token";

#[derive(Debug, Clone)]
pub struct CsrfPolicy {
    pub require_token: bool,
    /// `server.secure_cookies`: the site is served over HTTPS.
    pub https: bool,
    pub trusted: TrustedProxies,
}

pub async fn layer(State(policy): State<CsrfPolicy>, req: Request, next: Next) -> Response {
    let has_cookie = cookie(req.headers(), CSRF_COOKIE).is_some_and(is_token_shaped);
    let refused = if is_state_changing(req.method()) {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let target = Target::of(req.headers(), req.uri(), peer, &policy);
        check(req.headers(), &target, policy.require_token).err()
    } else {
        None
    };
    let mut resp = match refused {
        Some(why) => {
            tracing::info!(reason = why, "CSRF check refused a request");
            envelope::transport(StatusCode::FORBIDDEN, Errno::ReqErr, messages::CROSS_SITE)
        }
        None => next.run(req).await,
    };
    if !has_cookie {
        let value = format!(
            "{CSRF_COOKIE}={}; Path=/; SameSite=Lax",
            secret::random_hex(16)
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn is_state_changing(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn is_token_shaped(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where the request was sent: the origin a same-site page would have.
struct Target<'a> {
    scheme: &'a str,
    host: Option<&'a str>,
}

impl<'a> Target<'a> {
    fn of(
        headers: &'a HeaderMap,
        uri: &'a Uri,
        peer: Option<std::net::IpAddr>,
        policy: &CsrfPolicy,
    ) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()));
        let forwarded = peer
            .filter(|p| policy.trusted.trusts(*p))
            .and_then(|_| headers.get("x-forwarded-proto"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim);
        let scheme = match forwarded {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            _ if policy.https => "https",
            _ => "http",
        };
        Self { scheme, host }
    }
}

fn check(
    headers: &HeaderMap,
    target: &Target<'_>,
    require_token: bool,
) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if site != "same-origin" && site != "none" {
            return Err("sec-fetch-site");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(scheme, rest)| (scheme, rest.trim_end_matches('/')));
        match (origin, target.host) {
            // The same host, and no downgrade: a page served over plain HTTP
            // must not post to the HTTPS site. (An HTTPS page posting to what
            // looks like plain HTTP is a TLS proxy we were not told about.)
            (Some((scheme, o)), Some(h))
                if o.eq_ignore_ascii_case(h)
                    && (scheme.eq_ignore_ascii_case("https")
                        || (scheme.eq_ignore_ascii_case("http") && target.scheme == "http")) => {}
            _ => return Err("origin"),
        }
    }
    let token = headers
        .get("x-csrftoken")
        .or_else(|| headers.get("x-csrf-token"))
        .map(|v| v.as_bytes());
    match (token, cookie(headers, CSRF_COOKIE)) {
        (Some(t), Some(c)) if bool::from(t.ct_eq(c.as_bytes())) => Ok(()),
        (Some(_), _) => Err("token mismatch"),
        (None, _) if require_token => Err("token required"),
        (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as h;

    const OPEN: bool = false;

    /// The check for a request sent to `/` over a direct connection.
    fn check(headers: &HeaderMap, require_token: bool) -> Result<(), &'static str> {
        let uri = Uri::from_static("/");
        let policy = CsrfPolicy {
            require_token,
            https: false,
            trusted: TrustedProxies::default(),
        };
        super::check(
            headers,
            &Target::of(headers, &uri, None, &policy),
            require_token,
        )
    }

    #[test]
    fn http2_requests_are_checked_against_their_authority() {
        let uri: Uri = "http://a.test:8000/api/v1.0/users".parse().expect("uri");
        let policy = CsrfPolicy {
            require_token: false,
            https: false,
            trusted: TrustedProxies::default(),
        };
        let same = h(&[("origin", "http://a.test:8000")]);
        assert!(super::check(&same, &Target::of(&same, &uri, None, &policy), false).is_ok());
        let other = h(&[("origin", "http://evil.test")]);
        assert!(super::check(&other, &Target::of(&other, &uri, None, &policy), false).is_err());
    }

    #[test]
    fn the_origin_scheme_must_not_downgrade() {
        let host = ("host", "a.test");
        assert!(check(&h(&[("origin", "https://a.test"), host]), OPEN).is_ok());
        assert!(check(&h(&[("origin", "http://a.test"), host]), OPEN).is_ok());
        assert!(check(&h(&[("origin", "ftp://a.test"), host]), OPEN).is_err());
        // Behind a trusted TLS proxy the forwarded scheme decides.
        let uri = Uri::from_static("/");
        let policy = CsrfPolicy {
            require_token: false,
            https: false,
            trusted: TrustedProxies(std::sync::Arc::new(vec![
                "10.0.0.0/8".parse().expect("cidr"),
            ])),
        };
        let proxied = h(&[
            ("origin", "https://a.test"),
            host,
            ("x-forwarded-proto", "https"),
        ]);
        let proxy = Some("10.0.0.1".parse().expect("ip"));
        let t = Target::of(&proxied, &uri, proxy, &policy);
        assert!(super::check(&proxied, &t, false).is_ok());
        // An HTTP page posting to the HTTPS site is a downgrade.
        let downgrade = h(&[
            ("origin", "http://a.test"),
            host,
            ("x-forwarded-proto", "https"),
        ]);
        let t = Target::of(&downgrade, &uri, proxy, &policy);
        assert!(super::check(&downgrade, &t, false).is_err());
        // A client cannot claim the scheme itself: only a trusted proxy can.
        let stranger = Some("192.0.2.1".parse().expect("ip"));
        let t = Target::of(&downgrade, &uri, stranger, &policy);
        assert!(super::check(&downgrade, &t, false).is_ok());
        // With secure cookies the site is HTTPS.
        let secure = CsrfPolicy {
            https: true,
            ..policy
        };
        let plain = h(&[("origin", "http://a.test"), host]);
        assert!(super::check(&plain, &Target::of(&plain, &uri, None, &secure), false).is_err());
    }

    #[test]
    fn plain_clients_pass_and_cross_site_browsers_do_not() {
        assert!(check(&h(&[]), OPEN).is_ok());
        assert!(check(&h(&[("sec-fetch-site", "same-origin")]), OPEN).is_ok());
        assert!(check(&h(&[("sec-fetch-site", "cross-site")]), OPEN).is_err());
        assert!(check(&h(&[("sec-fetch-site", "same-site")]), OPEN).is_err());
        assert!(
            check(
                &h(&[("origin", "http://a.test:8000"), ("host", "a.test:8000")]),
                OPEN
            )
            .is_ok()
        );
        assert!(
            check(
                &h(&[("origin", "http://evil.test"), ("host", "a.test:8000")]),
                OPEN
            )
            .is_err()
        );
        assert!(check(&h(&[("origin", "null"), ("host", "a.test")]), OPEN).is_err());
    }

    #[test]
    fn a_token_header_must_equal_the_cookie() {
        let c = "cookie";
        let tok = "0123456789abcdef0123456789abcdef";
        assert!(
            check(
                &h(&[("x-csrftoken", tok), (c, &format!("csrf_token={tok}"))]),
                OPEN
            )
            .is_ok()
        );
        assert!(
            check(
                &h(&[("x-csrf-token", tok), (c, &format!("csrf_token={tok}"))]),
                OPEN
            )
            .is_ok()
        );
        assert!(
            check(
                &h(&[("x-csrftoken", "x"), (c, &format!("csrf_token={tok}"))]),
                OPEN
            )
            .is_err()
        );
        assert!(check(&h(&[("x-csrftoken", tok)]), OPEN).is_err());
        let strict = true;
        assert!(check(&h(&[]), strict).is_err());
    }
}
