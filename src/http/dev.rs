//! Development hooks (SPEC §8), mounted only with `dev.expose_secrets = true`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::AppState;
use super::envelope::{self, Msg};
use crate::domain::{CaptchaId, Errno, Lang};
use crate::flow::FlowError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dev/captcha/{image_code_id}", get(captcha))
        .route("/dev/sms/{mobile}", get(sms))
}

/// The current answer of a captcha, not consumed.
async fn captcha(State(s): State<AppState>, lang: Lang, Path(raw): Path<String>) -> Response {
    let Some(id) = CaptchaId::parse(&raw) else {
        return envelope::plain(StatusCode::BAD_REQUEST, Errno::ParamErr, "bad id");
    };
    match s.flow.dev_captcha(&id).await {
        Ok(Some(text)) => envelope::ok(lang, Msg::OK, Some(json!({ "text": text }))),
        Ok(None) => envelope::error(lang, &FlowError::CaptchaMissing),
        Err(e) => envelope::error(lang, &e),
    }
}

/// The last code sent to a mobile number.
async fn sms(State(s): State<AppState>, lang: Lang, Path(raw): Path<String>) -> Response {
    let mobile = match s.flow.parse_mobile(Some(&raw)) {
        Ok(m) => m,
        Err(e) => return envelope::error(lang, &e),
    };
    match s.flow.dev_sms(&mobile).await {
        Ok(Some(d)) => envelope::ok(
            lang,
            Msg::OK,
            Some(json!({ "code": d.code, "message": d.message })),
        ),
        Ok(None) => envelope::error(lang, &FlowError::CodeMissing),
        Err(e) => envelope::error(lang, &e),
    }
}
