//! The success answers of SPEC §2 and §4 and the transport-level ones: the
//! errno envelope `{"errno":"0","errmsg",…,"data"?}`, the four-step flow's
//! `{"code":1,"message",…}`, and bare envelopes for 404, 405, 408, 413, 403
//! and 500. Error answers are rendered by `error::ApiError`. The language is
//! the request's (see `error::Wire`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::Wire;
use super::messages::Msg;
use crate::domain::Errno;

/// `{"errno":"0","errmsg":…}` with `data` when given.
pub fn ok(msg: Msg, data: Option<Value>) -> Response {
    let mut body = json!({ "errno": Errno::Ok, "errmsg": msg.get(Wire::current().lang) });
    if let Some(d) = data {
        body["data"] = d;
    }
    json_response(StatusCode::OK, &body)
}

/// `{"code":1,"message":…}` plus one extra field when given.
pub fn steps_ok(msg: Msg, extra: Option<(&str, Value)>) -> Response {
    let mut body = json!({ "code": 1, "message": msg.get(Wire::current().lang) });
    if let Some((k, v)) = extra {
        body[k] = v;
    }
    json_response(StatusCode::OK, &body)
}

/// A transport-level answer: a real status with a bare errno envelope.
pub fn transport(status: StatusCode, errno: Errno, msg: Msg) -> Response {
    plain(status, errno, msg.get(Wire::current().lang))
}

/// A bare envelope with a fixed text.
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

/// A value as JSON for `data` (`Null` if it cannot be written, which for
/// our plain structs does not happen).
pub fn data<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
