//! Route set `validate`: `GET /image_code/?uuid=…` and `POST /sms_code`
//! (SPEC §4), over the same actions as the canonical set.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::client_address::Client;
use super::docs::{Envelope, ImageRefusals, PostRefusals};
use super::error::ApiError;
use super::extract::JsonBody;
use super::{AppState, actions};
use crate::flow::CodeRequestFields;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(image_code))
        .route("/image_code", get(image_code))
        .routes(routes!(sms_code))
}

/// A captcha for `uuid` (also served without the trailing slash).
#[utoipa::path(get, path = "/image_code/", tag = "validate",
    params(("uuid" = String, Query, description = "The captcha id", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "A 160×60 JPEG captcha", content_type = "image/jpeg"),
        (status = 400, description = "Missing or malformed uuid (PARAMERR)", body = Envelope),
        ImageRefusals,
    ))]
async fn image_code(
    State(s): State<AppState>,
    Client(client): Client,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    actions::captcha(&s, &client, q.get("uuid").map(String::as_str), None).await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ValidateSmsBody)]
struct SmsBody {
    mobile: Option<String>,
    image_code: Option<String>,
    uuid: Option<String>,
}

/// Checks the captcha and sends an SMS code.
#[utoipa::path(post, path = "/sms_code", tag = "validate", request_body = SmsBody,
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
        image_code_id: b.uuid.as_deref(),
        id_field: "uuid",
    };
    actions::send_code(&s, &client, &headers, fields).await
}
