//! The admin API (SPEC §10), served on the admin listener only. Every call
//! carries `Authorization: Bearer <admin.token>`, compared in constant time;
//! with no token configured every call is refused. Answers are the §2
//! envelope with real HTTP statuses (200, 400, 401, 404, 503), for the
//! scripts and tools operators use.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::envelope::{self, json_response};
use super::error::errno_of;
use super::messages;
use crate::domain::{Errno, Lang, Mobile};
use crate::flow::{Flow, FlowError};
use crate::users::AuditQuery;

#[derive(Clone)]
struct Admin {
    flow: Arc<Flow>,
    /// `admin.token`; `None`: every call is refused.
    token: Option<Arc<str>>,
}

/// The `/admin/…` routes; merged into the admin listener's router.
pub fn routes(flow: Arc<Flow>, token: &str) -> Router {
    let token = (!token.is_empty()).then(|| Arc::<str>::from(token));
    let state = Admin { flow, token };
    Router::new()
        .route("/admin/users", get(find_user))
        .route("/admin/users/{id}", axum::routing::delete(delete_user))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/admin/users/{id}/enable", post(enable_user))
        .route(
            "/admin/users/{id}/sessions",
            axum::routing::delete(end_sessions),
        )
        .route(
            "/admin/lists/{list}",
            get(show_list).post(add_entry).delete(remove_entry),
        )
        .route("/admin/stats", get(stats))
        .route("/admin/audit", get(audit))
        .layer(middleware::from_fn_with_state(state.clone(), bearer))
        .with_state(state)
}

/// Refuses a call without the right bearer token (401).
async fn bearer(State(a): State<Admin>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // Digests of equal length: the comparison tells nothing, not even
    // the token's length.
    let ok = match (&a.token, given) {
        (Some(want), Some(got)) => {
            let (want, got) = (
                Sha256::digest(want.as_bytes()),
                Sha256::digest(got.as_bytes()),
            );
            bool::from(want.as_slice().ct_eq(got.as_slice()))
        }
        _ => false,
    };
    if !ok {
        let mut resp = reply(
            StatusCode::UNAUTHORIZED,
            Errno::RoleErr,
            "admin token missing or wrong",
            None,
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    next.run(req).await
}

fn reply(status: StatusCode, errno: Errno, msg: &str, data: Option<Value>) -> Response {
    let mut body = json!({ "errno": errno, "errmsg": msg });
    if let Some(d) = data {
        body["data"] = d;
    }
    json_response(status, &body)
}

fn ok(data: Value) -> Response {
    reply(StatusCode::OK, Errno::Ok, "OK", Some(data))
}

/// A flow error with the status an operator's tool expects.
fn failed(e: FlowError) -> Response {
    let errno = errno_of(&e);
    let status = match errno {
        Errno::ParamErr => StatusCode::BAD_REQUEST,
        Errno::UserErr | Errno::NoData => StatusCode::NOT_FOUND,
        Errno::DbErr => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if errno == Errno::DbErr || errno == Errno::ServerErr {
        tracing::error!(error = %e, "admin call failed");
    }
    let text = match &e {
        FlowError::Param(crate::flow::ParamError::ListEntry(why)) => why.clone(),
        _ => messages::error_text(&e, Lang::En).into_owned(),
    };
    reply(status, errno, &text, None)
}

fn bad_request(msg: &str) -> Response {
    reply(StatusCode::BAD_REQUEST, Errno::ParamErr, msg, None)
}

/// `GET /admin/users?mobile=…` or `?id=…`.
async fn find_user(
    State(a): State<Admin>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return bad_request("malformed query");
    };
    let id = match q.get("id").map(|v| v.trim().parse::<i64>()) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return bad_request("id must be a number"),
        None => None,
    };
    let mobile = match q.get("mobile") {
        Some(raw) => match Mobile::parse(raw, a.flow.defence().policy()) {
            Ok(m) => Some(m),
            Err(e) => return bad_request(&format!("mobile: {e}")),
        },
        None => None,
    };
    match a.flow.find_user(id, mobile.as_ref()).await {
        Ok(u) => ok(u.operator_view()),
        Err(e) => failed(e),
    }
}

async fn disable_user(State(a): State<Admin>, Path(id): Path<i64>) -> Response {
    match a.flow.set_disabled(id, true).await {
        Ok(u) => ok(u.operator_view()),
        Err(e) => failed(e),
    }
}

async fn enable_user(State(a): State<Admin>, Path(id): Path<i64>) -> Response {
    match a.flow.set_disabled(id, false).await {
        Ok(u) => ok(u.operator_view()),
        Err(e) => failed(e),
    }
}

async fn delete_user(State(a): State<Admin>, Path(id): Path<i64>) -> Response {
    match a.flow.remove_user(id).await {
        Ok(()) => ok(json!({ "user_id": id, "deleted": true })),
        Err(e) => failed(e),
    }
}

async fn end_sessions(State(a): State<Admin>, Path(id): Path<i64>) -> Response {
    match a.flow.end_sessions_of(id).await {
        Ok(()) => ok(json!({ "user_id": id, "sessions_ended": true })),
        Err(e) => failed(e),
    }
}

fn known_list(list: &str) -> bool {
    matches!(list, "block" | "safe")
}

async fn show_list(State(a): State<Admin>, Path(list): Path<String>) -> Response {
    if !known_list(&list) {
        return bad_request("the lists are block and safe");
    }
    match a.flow.list(&list).await {
        Ok(entries) => ok(json!({ "list": list, "entries": entries })),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct EntryBody {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

async fn add_entry(State(a): State<Admin>, Path(list): Path<String>, body: Bytes) -> Response {
    change(a, true, list, body).await
}

async fn remove_entry(State(a): State<Admin>, Path(list): Path<String>, body: Bytes) -> Response {
    change(a, false, list, body).await
}

async fn change(a: Admin, add: bool, list: String, body: Bytes) -> Response {
    if !known_list(&list) {
        return bad_request("the lists are block and safe");
    }
    let Ok(b) = serde_json::from_slice::<EntryBody>(&body) else {
        return bad_request(
            r#"the body must be {"type": "number|prefix|country|network", "value": "…"}"#,
        );
    };
    match a.flow.change_list(add, &list, &b.kind, &b.value).await {
        Ok((entry, changed)) => ok(json!({ "entry": entry, "changed": changed })),
        Err(e) => failed(e),
    }
}

async fn stats(State(a): State<Admin>) -> Response {
    match a.flow.stats().await {
        Ok(s) => ok(envelope::data(&s)),
        Err(e) => failed(e),
    }
}

/// `GET /admin/audit?since=&user_id=&event=&limit=`: `since` is RFC 3339
/// or Unix seconds (default: a day ago); at most 1,000 records, newest first.
async fn audit(
    State(a): State<Admin>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return bad_request("malformed query");
    };
    let now_ms = a.flow.audit().now_ms();
    let since_ms = match q.get("since").map(|s| parse_since(s)) {
        None => now_ms - 86_400_000,
        Some(Some(ms)) => ms,
        Some(None) => return bad_request("since must be RFC 3339 or Unix seconds"),
    };
    let user_id = match q.get("user_id").map(|v| v.trim().parse::<i64>()) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return bad_request("user_id must be a number"),
        None => None,
    };
    let limit = match q.get("limit").map(|v| v.trim().parse::<i64>()) {
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return bad_request("limit must be 1 to 1000"),
        None => 1000,
    };
    let query = AuditQuery {
        since_ms,
        user_id,
        event: q.get("event").map(|e| e.trim().to_owned()),
        limit,
    };
    match a.flow.audit_events(&query).await {
        Ok(events) => ok(json!({ "events": events })),
        Err(e) => failed(e),
    }
}

/// RFC 3339 or Unix seconds, as Unix milliseconds.
pub fn parse_since(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    OffsetDateTime::parse(raw, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}
