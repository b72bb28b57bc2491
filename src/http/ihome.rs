//! The canonical route set (`/api/v1.0`, alias `/api/v1_0`), wire-compatible
//! with the iHome tutorial backend (SPEC §3).

use std::collections::HashMap;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::envelope::{self, Msg};
use super::extract::{Client, JsonBody};
use super::{AppState, actions};
use crate::domain::{Errno, Lang};
use crate::flow::{FlowError, ParamError};
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
    let id = id.ok().map(|Path(raw)| raw);
    actions::captcha(&s, lang, &client, id.as_deref(), None).await
}

/// Checks the captcha and sends an SMS code to `mobile`.
async fn sms_code(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    mobile: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return envelope::error(lang, &FlowError::Param(ParamError::Body));
    };
    let mobile = mobile.ok().map(|Path(m)| m);
    let field = |k: &str| q.get(k).map(String::as_str);
    actions::send_code(
        &s,
        lang,
        &client,
        mobile.as_deref(),
        field("image_code"),
        field("image_code_id"),
        "image_code_id",
    )
    .await
}

#[derive(Deserialize)]
struct RegisterBody {
    mobile: Option<String>,
    sms_code: Option<String>,
    password: Option<String>,
    password2: Option<String>,
}

/// Registers with an SMS code and starts a session.
async fn register(
    State(s): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    JsonBody(b): JsonBody<RegisterBody>,
) -> Response {
    actions::register(
        &s,
        lang,
        &headers,
        b.mobile.as_deref(),
        b.sms_code.as_deref(),
        b.password.as_deref(),
        b.password2.as_deref(),
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct LoginBody {
    pub mobile: Option<String>,
    pub password: Option<String>,
}

/// Logs in with mobile and password; a new session id every time.
async fn login(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<LoginBody>,
) -> Response {
    actions::login(
        &s,
        lang,
        &client,
        &headers,
        b.mobile.as_deref(),
        b.password.as_deref(),
    )
    .await
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
    actions::logout(&s, lang, &headers).await
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
