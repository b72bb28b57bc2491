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
use super::extract::BodyDeadline;
use super::messages;
use crate::domain::Errno;

#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    pub max_bytes: usize,
    /// The bound of an avatar upload, the one body that may be larger.
    pub upload_max_bytes: usize,
    pub timeout: Duration,
}

/// The avatar upload route (under either API prefix).
pub const UPLOAD_PATH_SUFFIX: &str = "/users/avatar";

pub async fn layer(State(rules): State<BodyRules>, mut req: Request, next: Next) -> Response {
    let max_bytes = if req.uri().path().ends_with(UPLOAD_PATH_SUFFIX) {
        rules.upload_max_bytes
    } else {
        rules.max_bytes
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return too_large();
    }
    req.extensions_mut()
        .insert(BodyDeadline(tokio::time::Instant::now() + rules.timeout));
    next.run(req).await
}

pub fn too_large() -> Response {
    let mut resp = envelope::transport(
        StatusCode::PAYLOAD_TOO_LARGE,
        Errno::ParamErr,
        messages::BODY_TOO_LARGE,
    );
    // The body is left unread: the connection cannot be reused.
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}
