//! Request-level bounds of SPEC §5: a declared `Content-Length` over the body
//! limit gets 413 at once (before any byte of the body is waited for), and
//! the body must then arrive within `server.body_timeout` (enforced where it
//! is read, in [`super::extract::JsonBody`]). Connection-level bounds live in
//! `crate::server`.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::envelope;
use super::extract::{BodyDeadline, lang_of};
use crate::domain::{Errno, Lang};

#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    pub max_bytes: usize,
    pub timeout: Duration,
}

pub async fn layer(State(rules): State<BodyRules>, mut req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > rules.max_bytes as u64) {
        return too_large(lang_of(req.headers()));
    }
    req.extensions_mut()
        .insert(BodyDeadline(tokio::time::Instant::now() + rules.timeout));
    next.run(req).await
}

pub fn too_large(lang: Lang) -> Response {
    let msg = match lang {
        Lang::Zh => "请求数据过大",
        Lang::En => "Request body too large",
    };
    let mut resp = envelope::plain(StatusCode::PAYLOAD_TOO_LARGE, Errno::ParamErr, msg);
    // The body is left unread: the connection cannot be reused.
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}
