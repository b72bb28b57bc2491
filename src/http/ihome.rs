//! The canonical route set (`/api/v1.0`, alias `/api/v1_0`), wire-compatible
//! with the iHome tutorial backend (SPEC §3).

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{Envelope, ProfileReply, SessionReply};
use super::envelope::{self, Msg};
use super::extract::{Client, JsonBody};
use super::{AppState, actions};
use crate::domain::{Errno, Lang};
use crate::flow::{FlowError, ParamError};
use crate::users::User;

pub fn routes() -> OpenApiRouter<AppState> {
    let api = || {
        OpenApiRouter::new()
            .routes(routes!(image_code))
            .routes(routes!(sms_code))
            .routes(routes!(register))
            .routes(routes!(login))
            .routes(routes!(current_session, logout))
            .routes(routes!(user_profile))
    };
    OpenApiRouter::new()
        .nest("/api/v1.0", api())
        .nest("/api/v1_0", api())
}

/// A fresh JPEG captcha stored under the client's id (300 s), replacing any
/// earlier one.
#[utoipa::path(get, path = "/image_codes/{image_code_id}", tag = "ihome",
    params(("image_code_id" = String, Path, description = "1–64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "A 160×60 JPEG captcha", content_type = "image/jpeg"),
        (status = 400, description = "Malformed id (PARAMERR)", body = Envelope),
        (status = 429, description = "Per-client captcha limit (REQERR, Retry-After)", body = Envelope),
        (status = 503, description = "Store unavailable (DBERR)", body = Envelope),
    ))]
async fn image_code(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = id.ok().map(|Path(raw)| raw);
    actions::captcha(&s, lang, &client, id.as_deref(), None).await
}

/// Checks (and consumes) the captcha and sends an SMS code to `mobile`.
#[utoipa::path(get, path = "/sms_codes/{mobile}", tag = "ihome",
    params(
        ("mobile" = String, Path, description = "A mobile number: 13812345678, +86 138…, 0086…"),
        ("image_code" = String, Query, description = "The captcha answer (any case)"),
        ("image_code_id" = String, Query, description = "The captcha id", pattern = "^[A-Za-z0-9_-]{1,64}$"),
    ),
    responses((status = 200, description = "OK, or PARAMERR, REQERR, NODATA, DATAERR, DATAEXIST, DBERR, THIRDERR", body = Envelope)))]
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

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    mobile: Option<String>,
    sms_code: Option<String>,
    password: Option<String>,
    password2: Option<String>,
}

/// Registers with an SMS code and starts a session.
#[utoipa::path(post, path = "/users", tag = "ihome", request_body = RegisterBody,
    responses(
        (status = 200, description = "OK (sets the session cookie), or PARAMERR, NODATA, DATAERR, DATAEXIST, REQERR, DBERR", body = Envelope),
        (status = 403, description = "Cross-site request refused", body = Envelope),
        (status = 413, description = "Body over 16 KiB", body = Envelope),
    ))]
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

#[derive(Deserialize, ToSchema)]
pub(super) struct LoginBody {
    pub mobile: Option<String>,
    pub password: Option<String>,
}

/// Logs in with mobile and password; a new session id every time.
#[utoipa::path(post, path = "/sessions", tag = "ihome", request_body = LoginBody,
    responses(
        (status = 200, description = "OK (sets the session cookie), or PARAMERR, DATAERR, REQERR, USERERR, DBERR", body = Envelope),
        (status = 403, description = "Cross-site request refused", body = Envelope),
        (status = 413, description = "Body over 16 KiB", body = Envelope),
    ))]
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

#[utoipa::path(get, path = "/session", tag = "ihome",
    responses((status = 200, description = "Logged in (errno 0, errmsg \"true\") or not (errno 4101, errmsg \"false\")", body = SessionReply)))]
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
#[utoipa::path(delete, path = "/session", tag = "ihome",
    responses(
        (status = 200, description = "OK", body = Envelope),
        (status = 403, description = "Cross-site request refused", body = Envelope),
    ))]
async fn logout(State(s): State<AppState>, lang: Lang, headers: HeaderMap) -> Response {
    actions::logout(&s, lang, &headers).await
}

/// The logged-in user's profile.
#[utoipa::path(get, path = "/user", tag = "ihome",
    responses((status = 200, description = "OK with the profile, or SESSIONERR, USERERR, DBERR", body = ProfileReply)))]
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
