//! The `session` cookie: opaque id, HttpOnly, SameSite=Lax, Path=/, Secure
//! when configured.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::extract::cookie;

pub const SESSION_COOKIE: &str = "session";

#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
    pub max_age_secs: u64,
}

pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

pub fn set(resp: &mut Response, id: &str, policy: CookiePolicy) {
    let secure = if policy.secure { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        policy.max_age_secs
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn clear(resp: &mut Response, policy: CookiePolicy) {
    let secure = if policy.secure { "; Secure" } else { "" };
    let value = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}");
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
