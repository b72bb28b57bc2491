//! Route set `passport`: the "information" news site's `/passport/*` API
//! (SPEC §4), over the same actions as the canonical set.

use std::collections::HashMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{Client, JsonBody};
use super::ihome::LoginBody;
use super::{AppState, actions};
use crate::domain::Lang;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/passport/image_code", get(image_code))
        .route("/passport/sms_code", post(sms_code))
        .route("/passport/register", post(register))
        .route("/passport/login", post(login))
        .route("/passport/logout", get(logout).post(logout))
}

/// A captcha for `code_id` (or `imageCodeId`); `pre_code_id` names the
/// captcha this one replaces, which is deleted.
async fn image_code(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let id = q
        .get("code_id")
        .or_else(|| q.get("imageCodeId"))
        .map(String::as_str);
    let previous = q.get("pre_code_id").map(String::as_str);
    actions::captcha(&s, lang, &client, id, previous).await
}

#[derive(Deserialize)]
struct SmsBody {
    mobile: Option<String>,
    image_code: Option<String>,
    image_code_id: Option<String>,
}

/// Checks the captcha and sends an SMS code.
async fn sms_code(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    JsonBody(b): JsonBody<SmsBody>,
) -> Response {
    actions::send_code(
        &s,
        lang,
        &client,
        b.mobile.as_deref(),
        b.image_code.as_deref(),
        b.image_code_id.as_deref(),
        "image_code_id",
    )
    .await
}

#[derive(Deserialize)]
struct RegisterBody {
    mobile: Option<String>,
    sms_code: Option<String>,
    /// The news site's pages send `smscode`.
    smscode: Option<String>,
    password: Option<String>,
}

/// Registers and logs in.
async fn register(
    State(s): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    JsonBody(b): JsonBody<RegisterBody>,
) -> Response {
    let code = b.sms_code.as_deref().or(b.smscode.as_deref());
    actions::register(
        &s,
        lang,
        &headers,
        b.mobile.as_deref(),
        code,
        b.password.as_deref(),
        None,
    )
    .await
}

/// Logs in.
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

/// Logs out (the site links to it with GET as well as POST).
async fn logout(State(s): State<AppState>, lang: Lang, headers: HeaderMap) -> Response {
    actions::logout(&s, lang, &headers).await
}
