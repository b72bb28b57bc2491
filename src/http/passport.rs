//! Route set `passport`: the "information" news site's `/passport/*` API
//! (SPEC §4), over the same actions as the canonical set.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::client_address::{Client, Origin};
use super::docs::{Envelope, ImageRefusals, PostRefusals};
use super::error::ApiError;
use super::extract::JsonBody;
use super::wire::LoginBody;
use super::{AppState, actions};
use crate::flow::{CodeRequestFields, RegistrationFields};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(image_code))
        .routes(routes!(sms_code))
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
}

/// A captcha for `code_id` (or `imageCodeId`); `pre_code_id` names the
/// captcha this one replaces, which is deleted.
#[utoipa::path(get, path = "/passport/image_code", tag = "passport",
    params(
        ("code_id" = String, Query, description = "The captcha id (`imageCodeId` is accepted instead)", pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("pre_code_id" = Option<String>, Query, description = "A previous captcha to delete", pattern = "^[A-Za-z0-9_-]{1,64}$"),
    ),
    responses(
        (status = 200, description = "A 160×60 JPEG captcha", content_type = "image/jpeg"),
        (status = 400, description = "Missing or malformed id (PARAMERR)", body = Envelope),
        ImageRefusals,
    ))]
async fn image_code(
    State(s): State<AppState>,
    Client(client): Client,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let field = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let id = field("code_id").or_else(|| field("imageCodeId"));
    actions::captcha(&s, &client, id, field("pre_code_id")).await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = PassportSmsBody)]
struct SmsBody {
    mobile: Option<String>,
    image_code: Option<String>,
    image_code_id: Option<String>,
}

/// Checks the captcha and sends an SMS code.
#[utoipa::path(post, path = "/passport/sms_code", tag = "passport", request_body = SmsBody,
    responses(
        (status = 200, description = "OK, or PARAMERR, REQERR, NODATA, DATAERR, DATAEXIST, DBERR, THIRDERR", body = Envelope),
        PostRefusals,
    ))]
async fn sms_code(
    State(s): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(b): JsonBody<SmsBody>,
) -> Result<Response, ApiError> {
    let fields = CodeRequestFields {
        mobile: b.mobile.as_deref(),
        purpose: None,
        image_code: b.image_code.as_deref(),
        image_code_id: b.image_code_id.as_deref(),
        id_field: "image_code_id",
    };
    actions::send_code(&s, &client, &headers, fields).await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = PassportRegisterBody)]
struct RegisterBody {
    mobile: Option<String>,
    sms_code: Option<String>,
    /// The news site's pages send `smscode`.
    smscode: Option<String>,
    password: Option<String>,
}

/// Registers and logs in.
#[utoipa::path(post, path = "/passport/register", tag = "passport", request_body = RegisterBody,
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
        sms_code: b.sms_code.as_deref().or(b.smscode.as_deref()),
        password: b.password.as_deref(),
        password2: None,
    };
    actions::register(&s, &headers, &origin, fields).await
}

/// Logs in.
#[utoipa::path(post, path = "/passport/login", tag = "passport", request_body = LoginBody,
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

/// Logs out (the site links to it with GET as well as POST).
#[utoipa::path(method(get, post), path = "/passport/logout", tag = "passport",
    responses(
        (status = 200, description = "OK", body = Envelope),
        (status = 403, description = "Cross-site request refused", body = Envelope),
    ))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    actions::logout(&s, &headers).await
}
