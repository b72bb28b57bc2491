//! Route set `validate`: `GET /image_code/?uuid=…` and `POST /sms_code`
//! (SPEC §4), over the same actions as the canonical set.

use std::collections::HashMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{Client, JsonBody};
use super::{AppState, actions};
use crate::domain::Lang;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/image_code/", get(image_code))
        .route("/image_code", get(image_code))
        .route("/sms_code", post(sms_code))
}

/// A captcha for `uuid`.
async fn image_code(
    State(s): State<AppState>,
    lang: Lang,
    Client(client): Client,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    actions::captcha(&s, lang, &client, q.get("uuid").map(String::as_str), None).await
}

#[derive(Deserialize)]
struct SmsBody {
    mobile: Option<String>,
    image_code: Option<String>,
    uuid: Option<String>,
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
        b.uuid.as_deref(),
        "uuid",
    )
    .await
}
