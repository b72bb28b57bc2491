//! `POST /hooks/sms/{provider}`: vendors' delivery receipts (SPEC §10),
//! verified as each vendor signs them (`crate::sms::receipts`) before they
//! touch anything. A refused callback is counted, logged and answered 401
//! (unsigned), 403 (forged), 400 (unreadable) or 404 (not configured).
//! Vendor-facing, so outside the OpenAPI document of the client API.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::AppState;
use super::envelope::json_response;
use crate::config::ProviderKind;
use crate::meter;
use crate::sms::receipts::{self, Callback, ReceiptError};

pub fn routes() -> Router<AppState> {
    Router::new().route("/hooks/sms/{provider}", post(receive))
}

async fn receive(
    State(s): State<AppState>,
    Path(provider): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(kind) = provider.parse::<ProviderKind>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let cb = Callback {
        twilio_signature: headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok()),
        token: query.get("token").map(String::as_str),
        body: &body,
    };
    let receipts = match receipts::read(kind, &s.sms, &cb) {
        Ok(r) => r,
        Err(e) => {
            meter::sms_receipt_refused(kind.name(), e.as_str());
            tracing::warn!(
                provider = kind.name(),
                reason = e.as_str(),
                "delivery receipt refused"
            );
            let status = match e {
                ReceiptError::NotConfigured => StatusCode::NOT_FOUND,
                ReceiptError::Unsigned => StatusCode::UNAUTHORIZED,
                ReceiptError::Forged => StatusCode::FORBIDDEN,
                ReceiptError::Malformed => StatusCode::BAD_REQUEST,
            };
            return status.into_response();
        }
    };
    let mut applied = 0;
    for r in &receipts {
        applied += usize::from(s.flow.apply_receipt(kind.name(), r).await);
    }
    tracing::info!(
        provider = kind.name(),
        receipts = receipts.len(),
        applied,
        "delivery receipts"
    );
    // Each vendor's documented acknowledgement.
    match kind {
        ProviderKind::Aliyun => {
            json_response(StatusCode::OK, &json!({ "code": 0, "msg": "接收成功" }))
        }
        ProviderKind::Tencent => {
            json_response(StatusCode::OK, &json!({ "result": 0, "errmsg": "OK" }))
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}
