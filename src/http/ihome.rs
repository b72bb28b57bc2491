//! The canonical route set (`/api/v1.0`, alias `/api/v1_0`), wire-compatible
//! with the iHome tutorial backend (SPEC §3).

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::client_address::{Client, Origin};
use super::docs::{Envelope, ImageRefusals, PostRefusals, SessionReply};
use super::error::ApiError;
use super::extract::JsonBody;
use super::wire::{LoginBody, SessionInfo};
use super::{AppState, actions, envelope, session};
use crate::domain::Errno;
use crate::flow::{CodeRequestFields, ParamError, RegistrationFields};

/// The canonical routes with the account routes of SPEC §9
/// (`super::account`); `upload_limit` bounds an avatar upload's body.
pub fn routes(upload_limit: usize) -> OpenApiRouter<AppState> {
    let api = || {
        OpenApiRouter::new()
            .routes(routes!(image_code))
            .routes(routes!(sms_code))
            .routes(routes!(register))
            .routes(routes!(login))
            .routes(routes!(current_session, logout))
            .merge(super::account::routes(upload_limit))
            .merge(super::tokens::api_routes())
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
        ImageRefusals,
    ))]
async fn image_code(
    State(s): State<AppState>,
    Client(client): Client,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id.ok().map(|Path(raw)| raw);
    actions::captcha(&s, &client, id.as_deref(), None).await
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
    Client(client): Client,
    headers: HeaderMap,
    mobile: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| ParamError::Body)?;
    let mobile = mobile.ok().map(|Path(m)| m);
    let fields = CodeRequestFields {
        mobile: mobile.as_deref(),
        purpose: None,
        image_code: q.get("image_code").map(String::as_str),
        image_code_id: q.get("image_code_id").map(String::as_str),
        id_field: "image_code_id",
    };
    actions::send_code(&s, &client, &headers, fields).await
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
        PostRefusals,
    ))]
async fn register(
    State(s): State<AppState>,
    headers: HeaderMap,
    Origin(origin): Origin,
    JsonBody(b): JsonBody<RegisterBody>,
) -> Result<Response, ApiError> {
    let fields = RegistrationFields {
        mobile: b.mobile.as_deref(),
        sms_code: b.sms_code.as_deref(),
        password: b.password.as_deref(),
        password2: b.password2.as_deref(),
    };
    actions::register(&s, &headers, &origin, fields).await
}

/// Logs in with mobile and password; a new session id every time.
#[utoipa::path(post, path = "/sessions", tag = "ihome", request_body = LoginBody,
    responses(
        (status = 200, description = "OK (sets the session cookie), or PARAMERR, DATAERR, REQERR, USERERR, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Origin(origin): Origin,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    actions::login(&s, &client, &headers, &origin, b.fields()).await
}

#[utoipa::path(get, path = "/session", tag = "ihome",
    responses((status = 200, description = "Logged in (errno 0, errmsg \"true\") or not (errno 4101, errmsg \"false\")", body = SessionReply)))]
/// Whether the caller is logged in: `errmsg` is `"true"` or `"false"`, as the
/// original pages test it.
async fn current_session(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(match session::current(&s, &headers).await? {
        Some(data) => envelope::json_response(
            StatusCode::OK,
            &json!({
                "errno": Errno::Ok,
                "errmsg": "true",
                "data": SessionInfo::from(&data),
            }),
        ),
        None => envelope::plain(StatusCode::OK, Errno::SessionErr, "false"),
    })
}

/// Ends the session; the `csrf_token` cookie stays valid.
#[utoipa::path(delete, path = "/session", tag = "ihome",
    responses(
        (status = 200, description = "OK", body = Envelope),
        (status = 403, description = "Cross-site request refused", body = Envelope),
    ))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    actions::logout(&s, &headers).await
}
