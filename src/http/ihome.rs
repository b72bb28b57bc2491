//! The canonical route set (`/api/v1.0`, alias `/api/v1_0`), wire-compatible
//! with the iHome tutorial backend (SPEC §3).

use std::collections::HashMap;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::envelope::{self, Msg};
use super::extract::{Client, JsonBody};
use super::session;
use crate::domain::{CaptchaId, Errno, Lang};
use crate::flow::{self, FlowError, ParamError};
use crate::users::User;

pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/image_codes/{image_code_id}", get(image_code))
        .route("/sms_codes/{mobile}", get(sms_code))
        .route("/users", axum::routing::post(register))
        .route("/sessions", axum::routing::post(login))
        .route("/session", get(current_session).delete(logout))
        .route("/user", get(user_profile));
    Router::new()
        .nest("/api/v1.0", api.clone())
        .nest("/api/v1_0", api)
}

/// A fresh JPEG captcha stored under the client's id (300 s).
async fn image_code(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(id) = id.ok().and_then(|Path(raw)| CaptchaId::parse(&raw)) else {
        let e = FlowError::Param(ParamError::CaptchaId);
        return envelope::error_with_status(lang, &e, StatusCode::BAD_REQUEST);
    };
    match s.flow.issue_captcha(&id, &client).await {
        Ok(jpeg) => captcha_image(jpeg),
        Err(e) => {
            let status = match e.errno() {
                Errno::ReqErr => StatusCode::TOO_MANY_REQUESTS,
                Errno::DbErr => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            envelope::error_with_status(lang, &e, status)
        }
    }
}

/// The JPEG answer shared by every route set that serves captchas.
pub fn captcha_image(jpeg: Vec<u8>) -> Response {
    let mut resp = jpeg.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const SENT: Msg = Msg {
    zh: "发送成功",
    en: "Code sent",
};

/// Checks the captcha and sends an SMS code to `mobile`.
async fn sms_code(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    mobile: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = query.map_err(|_| FlowError::Param(ParamError::Body))?;
        let answer = flow::parse_captcha_answer(q.get("image_code").map(String::as_str))?;
        let id =
            flow::parse_captcha_id(q.get("image_code_id").map(String::as_str), "image_code_id")?;
        let mobile = mobile.ok().map(|Path(m)| m);
        let mobile = s.flow.parse_mobile(mobile.as_deref())?;
        s.flow
            .request_code(&mobile, Some((&id, &answer)), &client, lang)
            .await
    }
    .await;
    match result {
        Ok(()) => envelope::ok(lang, SENT, None),
        Err(e) => envelope::error(lang, &e),
    }
}

#[derive(Deserialize)]
struct RegisterBody {
    mobile: Option<String>,
    sms_code: Option<String>,
    password: Option<String>,
    password2: Option<String>,
}

const REGISTERED: Msg = Msg {
    zh: "注册成功",
    en: "Registered",
};

/// Registers with an SMS code and starts a session.
async fn register(
    State(s): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    JsonBody(b): JsonBody<RegisterBody>,
) -> Response {
    let result = async {
        let mobile = s.flow.parse_mobile(b.mobile.as_deref())?;
        let code = flow::parse_sms_code(b.sms_code.as_deref())?;
        let password = s
            .flow
            .parse_new_password(b.password.as_deref(), b.password2.as_deref())?;
        s.flow.register(&mobile, &code, &password, None).await
    }
    .await;
    match result {
        Ok(user) => s.login_response(lang, REGISTERED, &headers, &user).await,
        Err(e) => envelope::error(lang, &e),
    }
}

#[derive(Deserialize)]
struct LoginBody {
    mobile: Option<String>,
    password: Option<String>,
}

const LOGGED_IN: Msg = Msg {
    zh: "登录成功",
    en: "Logged in",
};

/// Logs in with mobile and password; a new session id every time.
async fn login(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<LoginBody>,
) -> Response {
    let result = async {
        let mobile = s.flow.parse_mobile(b.mobile.as_deref())?;
        let password = s.flow.parse_login_password(b.password.as_deref())?;
        s.flow.login(&mobile, &password, &client).await
    }
    .await;
    match result {
        Ok(user) => s.login_response(lang, LOGGED_IN, &headers, &user).await,
        Err(e) => envelope::error(lang, &e),
    }
}

/// Whether the caller is logged in: `errmsg` is `"true"` or `"false"`, as the
/// original pages test it.
async fn current_session(State(s): State<AppState>, lang: Lang, headers: HeaderMap) -> Response {
    match s.current_session(&headers).await {
        Ok(Some(data)) => envelope::json_response(
            StatusCode::OK,
            &json!({
                "errno": Errno::Ok,
                "errmsg": "true",
                "data": { "user_id": data.user_id, "name": data.name },
            }),
        ),
        Ok(None) => envelope::plain(StatusCode::OK, Errno::SessionErr, "false"),
        Err(e) => envelope::error(lang, &e),
    }
}

/// Ends the session; the `csrf_token` cookie stays valid.
async fn logout(State(s): State<AppState>, lang: Lang, headers: HeaderMap) -> Response {
    if let Some(id) = session::session_id(&headers)
        && let Err(e) = s.flow.end_session(id).await
    {
        return envelope::error(lang, &e);
    }
    let mut resp = envelope::ok(lang, Msg::OK, None);
    session::clear(&mut resp, s.cookies);
    resp
}

/// The logged-in user's profile.
async fn user_profile(State(s): State<AppState>, lang: Lang, headers: HeaderMap) -> Response {
    let result = async {
        let data = s
            .current_session(&headers)
            .await?
            .ok_or(FlowError::NotLoggedIn)?;
        s.flow.user(data.user_id).await
    }
    .await;
    match result {
        Ok(user) => envelope::ok(lang, Msg::OK, Some(profile(&user))),
        Err(e) => envelope::error(lang, &e),
    }
}

pub fn profile(user: &User) -> serde_json::Value {
    json!({
        "user_id": user.id,
        "name": user.name,
        "mobile": user.mobile.display(),
        "avatar": user.avatar_url,
        "create_time": user.created_at.format(&Rfc3339).ok(),
    })
}
