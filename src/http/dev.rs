//! Development hooks (SPEC §8), mounted only with `dev.expose_secrets = true`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::error::ApiError;
use super::{AppState, envelope, messages};
use crate::domain::{CaptchaId, Errno};
use crate::flow::FlowError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dev/captcha/{image_code_id}", get(captcha))
        .route("/dev/sms/{mobile}", get(sms))
}

/// The current answer of a captcha, not consumed.
async fn captcha(State(s): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let Some(id) = CaptchaId::parse(&raw) else {
        return Ok(envelope::plain(
            StatusCode::BAD_REQUEST,
            Errno::ParamErr,
            "bad id",
        ));
    };
    let text = s
        .flow
        .dev_captcha(&id)
        .await?
        .ok_or(FlowError::CaptchaMissing)?;
    Ok(envelope::ok(messages::OK, Some(json!({ "text": text }))))
}

/// The last code sent to a mobile number.
async fn sms(State(s): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let mobile = s.flow.inputs().mobile(Some(&raw))?;
    let sent = s
        .flow
        .dev_sms(&mobile)
        .await?
        .ok_or(FlowError::CodeMissing)?;
    Ok(envelope::ok(
        messages::OK,
        Some(json!({ "code": sent.code, "message": sent.message })),
    ))
}
