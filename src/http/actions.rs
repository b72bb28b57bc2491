//! The actions of the errno-envelope route sets (`ihome`, `passport`,
//! `validate`): each takes the raw fields its route set extracted, parses them,
//! calls the flow and answers the envelope. Route modules only say where the
//! fields are.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::envelope::{self, Msg};
use super::session;
use crate::domain::{CaptchaId, Errno, Lang};
use crate::flow::{self, FlowError, ParamError};
use crate::limits::ClientKey;

pub const SENT: Msg = Msg {
    zh: "发送成功",
    en: "Code sent",
};
pub const REGISTERED: Msg = Msg {
    zh: "注册成功",
    en: "Registered",
};
pub const LOGGED_IN: Msg = Msg {
    zh: "登录成功",
    en: "Logged in",
};

/// A fresh JPEG captcha under `id` (after deleting `previous`, when given).
/// Image routes cannot answer errors as 200 images: a bad id is 400, a limit
/// 429, a store outage 503, each with the JSON envelope.
pub async fn captcha(
    s: &AppState,
    lang: Lang,
    client: &ClientKey,
    id: Option<&str>,
    previous: Option<&str>,
) -> Response {
    let Some(id) = id.and_then(CaptchaId::parse) else {
        let e = FlowError::Param(ParamError::CaptchaId);
        return envelope::error_with_status(lang, &e, StatusCode::BAD_REQUEST);
    };
    let jpeg = match s.flow.issue_captcha(&id, client).await {
        Ok(jpeg) => jpeg,
        Err(e) => return image_error(lang, &e),
    };
    // Only a client that may draw a captcha may drop its previous one.
    if let Some(prev) = previous.and_then(CaptchaId::parse)
        && prev != id
        && let Err(e) = s.flow.discard_captcha(&prev).await
    {
        return image_error(lang, &e);
    }
    jpeg_response(jpeg)
}

fn image_error(lang: Lang, e: &FlowError) -> Response {
    let status = match e.errno() {
        Errno::ReqErr => StatusCode::TOO_MANY_REQUESTS,
        Errno::DbErr => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    envelope::error_with_status(lang, e, status)
}

fn jpeg_response(jpeg: Vec<u8>) -> Response {
    let mut resp = jpeg.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The captcha-checked SMS code request. `id_field` names the id parameter
/// in this route set's messages.
pub async fn send_code(
    s: &AppState,
    lang: Lang,
    client: &ClientKey,
    mobile: Option<&str>,
    answer: Option<&str>,
    id: Option<&str>,
    id_field: &'static str,
) -> Response {
    let result = async {
        let answer = flow::parse_captcha_answer(answer)?;
        let id = flow::parse_captcha_id(id, id_field)?;
        let mobile = s.flow.parse_mobile(mobile)?;
        s.flow
            .request_code(&mobile, Some((&id, &answer)), client, lang)
            .await
    }
    .await;
    match result {
        Ok(()) => envelope::ok(lang, SENT, None),
        Err(e) => envelope::error(lang, &e),
    }
}

/// Registration with an SMS code; starts a session.
pub async fn register(
    s: &AppState,
    lang: Lang,
    headers: &HeaderMap,
    mobile: Option<&str>,
    code: Option<&str>,
    password: Option<&str>,
    password2: Option<&str>,
) -> Response {
    let result = async {
        let mobile = s.flow.parse_mobile(mobile)?;
        let code = flow::parse_sms_code(code)?;
        let password = s.flow.parse_new_password(password, password2)?;
        s.flow.register(&mobile, &code, &password, None).await
    }
    .await;
    match result {
        Ok(user) => s.login_response(lang, REGISTERED, headers, &user).await,
        Err(e) => envelope::error(lang, &e),
    }
}

/// Login with mobile and password; a new session id every time.
pub async fn login(
    s: &AppState,
    lang: Lang,
    client: &ClientKey,
    headers: &HeaderMap,
    mobile: Option<&str>,
    password: Option<&str>,
) -> Response {
    let result = async {
        let mobile = s.flow.parse_mobile(mobile)?;
        let password = s.flow.parse_login_password(password)?;
        s.flow.login(&mobile, &password, client).await
    }
    .await;
    match result {
        Ok(user) => s.login_response(lang, LOGGED_IN, headers, &user).await,
        Err(e) => envelope::error(lang, &e),
    }
}

/// Ends the session; the `csrf_token` cookie stays valid.
pub async fn logout(s: &AppState, lang: Lang, headers: &HeaderMap) -> Response {
    if let Some(id) = session::session_id(headers)
        && let Err(e) = s.flow.end_session(id).await
    {
        return envelope::error(lang, &e);
    }
    let mut resp = envelope::ok(lang, Msg::OK, None);
    session::clear(&mut resp, s.cookies);
    resp
}
