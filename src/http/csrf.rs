//! CSRF rules of SPEC §2 and the `csrf_token` cookie.
//!
//! A state-changing request is refused (403) when the browser marks it as
//! cross-site, when its `Origin` names another host, or when it carries a
//! token header that differs from its `csrf_token` cookie. Clients that send
//! none of these (curl, apps) pass, unless `csrf.require_token` is set.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::envelope;
use super::extract::{cookie, lang_of};
use crate::domain::{Errno, Lang};
use crate::secret;

pub const CSRF_COOKIE: &str = "csrf_token";

#[derive(Debug, Clone, Copy)]
pub struct CsrfPolicy {
    pub require_token: bool,
}

pub async fn layer(State(policy): State<CsrfPolicy>, req: Request, next: Next) -> Response {
    let has_cookie = cookie(req.headers(), CSRF_COOKIE).is_some_and(is_token_shaped);
    let refused = if is_state_changing(req.method()) {
        check(req.headers(), policy).err()
    } else {
        None
    };
    let mut resp = match refused {
        Some(why) => {
            tracing::info!(reason = why, "CSRF check refused a request");
            let msg = match lang_of(req.headers()) {
                Lang::Zh => "跨站请求被拒绝",
                Lang::En => "Cross-site request refused",
            };
            envelope::plain(StatusCode::FORBIDDEN, Errno::ReqErr, msg)
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

fn check(headers: &HeaderMap, policy: CsrfPolicy) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if site != "same-origin" && site != "none" {
            return Err("sec-fetch-site");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        match (origin_host, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => {}
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
        (None, _) if policy.require_token => Err("token required"),
        (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        m
    }

    const OPEN: CsrfPolicy = CsrfPolicy {
        require_token: false,
    };

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
        let strict = CsrfPolicy {
            require_token: true,
        };
        assert!(check(&h(&[]), strict).is_err());
    }
}
