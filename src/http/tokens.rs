//! SPEC §11 tokens: `POST /api/v1.0/session/token` gives the logged-in user
//! a short-lived EdDSA JWT for the site's other services, and
//! `/.well-known/jwks.json` publishes the keys that verify it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{Envelope, PostRefusals};
use super::envelope::{self, json_response};
use super::error::ApiError;
use super::{AppState, messages, session};
use crate::flow::FlowError;

/// The token route, to be nested under the API prefixes.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue))
}

/// The key set, at the site's root.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

/// A JWT for the logged-in user (EdDSA, `sub` = user id, at most 15
/// minutes); a disabled user has no session, so no token.
#[utoipa::path(post, path = "/session/token", tag = "accounts",
    responses(
        (status = 200, description = "OK with {token, token_type, expires_in}, or SESSIONERR, DBERR", body = Envelope),
        PostRefusals,
    ))]
async fn issue(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (data, _) = session::required(&s, &headers).await?;
    let (token, ttl) = s
        .flow
        .tokens()
        .issue(data.user_id, &public_base(&s, &headers))
        .await
        .map_err(FlowError::from)?;
    Ok(envelope::ok(
        messages::OK,
        Some(json!({ "token": token, "token_type": "Bearer", "expires_in": ttl })),
    ))
}

/// The keys that verify the tokens, as a JSON Web Key Set.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "The JWK set (Ed25519 keys, `kid`, `alg` EdDSA)")))]
async fn jwks(State(s): State<AppState>) -> Response {
    match s.flow.tokens().jwks().await {
        Ok(set) => {
            let mut resp = json_response(StatusCode::OK, &set);
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("public, max-age=300"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read the token keys");
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "keys": [] }))
        }
    }
}

/// The base URL the request came to, the default `iss`.
fn public_base(s: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if s.cookies.secure { "https" } else { "http" };
    format!("{scheme}://{host}")
}
