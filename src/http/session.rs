//! The `session` cookie (opaque id, HttpOnly, SameSite=Lax, Path=/, Secure
//! when configured) and what the cookie route sets do with it.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::error::ApiError;
use super::extract::cookie;
use super::messages::Msg;
use super::{AppState, envelope};
use crate::flow::{FlowError, SessionData, SessionOrigin};
use crate::users::User;

pub const SESSION_COOKIE: &str = "session";

#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
    pub max_age_secs: u64,
}

pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The app flow's session id, sent in the `token` header (`steps`).
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The session the request's cookie names, if it is live.
pub async fn current(s: &AppState, headers: &HeaderMap) -> Result<Option<SessionData>, FlowError> {
    match session_id(headers) {
        Some(id) => s.flow.session(id).await,
        None => Ok(None),
    }
}

/// The live session of the request, or SESSIONERR; with its id.
pub async fn required<'h>(
    s: &AppState,
    headers: &'h HeaderMap,
) -> Result<(SessionData, &'h str), FlowError> {
    let id = session_id(headers).ok_or(FlowError::NotLoggedIn)?;
    let data = s.flow.session(id).await?.ok_or(FlowError::NotLoggedIn)?;
    Ok((data, id))
}

/// Starts a fresh session for `user` (a pre-login id is never reused: the
/// old one is ended) and answers OK with the cookie and `data`.
pub async fn logged_in(
    s: &AppState,
    headers: &HeaderMap,
    origin: &SessionOrigin,
    user: &User,
    msg: Msg,
    data: Option<serde_json::Value>,
) -> Result<Response, ApiError> {
    if let Some(old) = session_id(headers) {
        s.flow.end_session(old).await?;
    }
    let id = s.flow.start_session(user, origin).await?;
    let mut resp = envelope::ok(msg, data);
    set(&mut resp, &id, s.cookies);
    Ok(resp)
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
