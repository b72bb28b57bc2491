//! The one wire envelope of SPEC §2: `{"errno", "errmsg", "data"?}`, HTTP 200
//! for business outcomes, `Retry-After` on limits. Every JSON answer of the
//! errno route sets is built here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::{Errno, Lang};
use crate::flow::FlowError;
use crate::limits::retry_after_secs;

/// A success message in both languages.
#[derive(Debug, Clone, Copy)]
pub struct Msg {
    pub zh: &'static str,
    pub en: &'static str,
}

impl Msg {
    pub const OK: Msg = Msg {
        zh: "成功",
        en: "OK",
    };

    pub fn get(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }
}

/// `{"errno":"0","errmsg":…}` with optional `data`.
pub fn ok(lang: Lang, msg: Msg, data: Option<Value>) -> Response {
    let mut body = json!({ "errno": Errno::Ok, "errmsg": msg.get(lang) });
    if let Some(d) = data {
        body["data"] = d;
    }
    json_response(StatusCode::OK, &body)
}

/// Logs what went wrong inside (never sent) and answers the envelope.
pub fn error(lang: Lang, e: &FlowError) -> Response {
    error_with_status(lang, e, StatusCode::OK)
}

pub fn error_with_status(lang: Lang, e: &FlowError, status: StatusCode) -> Response {
    log_error(e);
    let body = json!({ "errno": e.errno(), "errmsg": e.message(lang) });
    let mut resp = json_response(status, &body);
    if let Some(after) = e.retry_after() {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(after)),
        );
    }
    resp
}

/// A bare envelope for transport-level answers (404, 405, 413, 403, 500).
pub fn plain(status: StatusCode, errno: Errno, errmsg: &str) -> Response {
    json_response(status, &json!({ "errno": errno, "errmsg": errmsg }))
}

pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The four-step flow's envelope: `{"code": 1, "message": …}` plus `extra`
/// fields on success.
pub fn steps_ok(lang: Lang, msg: Msg, extra: Option<(&str, Value)>) -> Response {
    let mut body = json!({ "code": 1, "message": msg.get(lang) });
    if let Some((k, v)) = extra {
        body[k] = v;
    }
    json_response(StatusCode::OK, &body)
}

/// `{"code": 0, "message": …}`, with `Retry-After` on limits.
pub fn steps_error(lang: Lang, e: &FlowError) -> Response {
    log_error(e);
    let body = json!({ "code": 0, "message": e.message(lang) });
    let mut resp = json_response(StatusCode::OK, &body);
    if let Some(after) = e.retry_after() {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(after)),
        );
    }
    resp
}

/// Every error answer passes here: it is logged (details never sent) and
/// counted.
pub fn log_error(e: &FlowError) {
    match e {
        FlowError::Limited(r) => crate::meter::limit_refusal(r.scope.as_str()),
        FlowError::Store(_) => crate::meter::backend_error("store"),
        FlowError::Database(_) => crate::meter::backend_error("database"),
        _ => {}
    }
    match e {
        FlowError::Store(_) | FlowError::Database(_) | FlowError::Internal(_) => {
            tracing::error!(error = %e, errno = e.errno().code(), "request failed");
        }
        FlowError::Sms(_) | FlowError::Busy => {
            tracing::warn!(error = %e, errno = e.errno().code(), "request failed");
        }
        _ => tracing::debug!(error = %e, errno = e.errno().code(), "request refused"),
    }
}
