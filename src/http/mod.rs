//! HTTP: the router and its middleware, one module per route set, and the
//! wire. Handlers are thin: parse the fields once (`flow::input`), call the
//! flow, answer; errors travel as `error::ApiError`.
//!
//! Where things are: the client's address in `client_address`, the words of
//! every answer in `messages`, errno and status in `error`, CSRF in `csrf`,
//! timeouts and body bounds in `limits` (connections: `crate::server`),
//! request logs in `trace`, shared request and reply types in `wire`.

mod account;
mod actions;
mod admin;
mod client_address;
mod csrf;
mod dev;
mod docs;
mod envelope;
mod error;
mod extract;
mod files;
mod forward_auth;
mod hooks;
mod ihome;
mod limits;
mod messages;
mod passport;
mod session;
mod steps;
mod tokens;
mod trace;
mod validate;
mod wire;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
#[cfg(test)]
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use admin::parse_since;
pub use client_address::{TrustedProxies, canonical};
pub use csrf::CsrfPolicy;
pub use files::{Folder, private_files_in};
pub use session::CookiePolicy;

use crate::config::RouteSet;
use crate::domain::Errno;
use crate::flow::Flow;

/// Cheap handles shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub flow: Arc<Flow>,
    pub trusted: TrustedProxies,
    pub cookies: CookiePolicy,
    /// `compat.steps_require_captcha`.
    pub steps_require_captcha: bool,
    /// The SMS settings delivery receipts are checked against.
    pub sms: Arc<crate::config::SmsConfig>,
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(s: &AppState) -> Self {
        s.trusted.clone()
    }
}

/// A header map from pairs, for unit tests of the HTTP layer.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            *k,
            axum::http::HeaderValue::from_str(v).expect("header value"),
        );
    }
    h
}

/// Options of the router that are not part of the flow.
pub struct RouterOptions {
    pub csrf: CsrfPolicy,
    pub max_body_bytes: usize,
    /// The body bound of an avatar upload: `avatars.max_bytes` and room
    /// for the form around it.
    pub upload_max_bytes: usize,
    /// `server.body_timeout`: the whole body must arrive within it.
    pub body_timeout: std::time::Duration,
    /// `server.backend_deadline`: each request's time for the store and
    /// database (`crate::budget`).
    pub backend_deadline: std::time::Duration,
    pub dev_hooks: bool,
    /// Route sets from `compat.routes`; `ihome` is always served.
    pub route_sets: Vec<RouteSet>,
    /// What serves the web pages.
    pub pages: Pages,
}

/// The web pages: phoneauth's own, or an existing site's files (then the
/// built-in pages step aside).
pub enum Pages {
    Builtin,
    Hosted {
        static_dir: Option<Folder>,
        pages_dir: Option<Folder>,
    },
}

pub fn router(state: AppState, opts: RouterOptions) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ihome::routes(opts.upload_max_bytes))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(forward_auth::verify))
        .merge(tokens::routes());
    for set in &opts.route_sets {
        match set {
            RouteSet::Ihome => {}
            RouteSet::Passport => api = api.merge(passport::routes()),
            RouteSet::Validate => api = api.merge(validate::routes()),
            RouteSet::Steps => api = api.merge(steps::routes()),
        }
    }
    let (mut app, doc) = api.split_for_parts();
    let doc = Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".into()));
    app = app.route(
        "/api-docs/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    doc.as_str().to_owned(),
                )
            }
        }),
    );
    if opts.dev_hooks {
        app = app.merge(dev::routes());
    }
    app = app.merge(hooks::routes());
    if let Some(dir) = state.flow.avatar_dir() {
        app = app.merge(files::avatars(dir.to_path_buf()));
    }
    app = match opts.pages {
        Pages::Builtin => app.merge(files::builtin()),
        Pages::Hosted {
            static_dir,
            pages_dir,
        } => app.merge(files::hosted(static_dir, pages_dir)),
    };
    app.route_layer(middleware::from_fn(trace::record_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            limits::BodyRules {
                max_bytes: opts.max_body_bytes,
                upload_max_bytes: opts.upload_max_bytes,
                timeout: opts.body_timeout,
            },
            limits::layer,
        ))
        .layer(middleware::from_fn_with_state(opts.csrf, csrf::layer))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(error::errno_wire))
        .layer(middleware::from_fn_with_state(
            opts.backend_deadline,
            with_backend_budget,
        ))
        .layer(middleware::from_fn_with_state(
            state.trusted.clone(),
            trace::layer,
        ))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "phoneauth",
        description = "Sign-up and sign-in with a mobile number: image captcha, SMS code, password, sessions. \
                       Wire-compatible with the classic Flask tutorial backends; see SPEC §2 for the envelope.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "ihome", description = "The canonical API, always on (also under /api/v1_0)"),
        (name = "accounts", description = "The life of an account (SPEC §9), on the canonical API"),
        (name = "passport", description = "The news site's /passport API (compat.routes)"),
        (name = "validate", description = "uuid-keyed captcha and SMS code (compat.routes)"),
        (name = "steps", description = "The four-step mobile-app registration (compat.routes)"),
        (name = "operations", description = "Health"),
    )
)]
struct ApiDoc;

/// The admin listener: Prometheus metrics and the admin API (`admin.token`),
/// apart from the public API.
pub fn admin_router(
    handle: Option<metrics_exporter_prometheus::PrometheusHandle>,
    flow: Arc<Flow>,
    token: &str,
) -> Router {
    admin::routes(flow, token)
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    match handle {
                        Some(h) => (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4",
                            )],
                            h.render(),
                        )
                            .into_response(),
                        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    }
                }
            }),
        )
        .route("/healthz", get(healthz))
}

/// Process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = docs::Health)))]
async fn healthz() -> Response {
    envelope::json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `/readyz` answers within this, whatever hangs.
const READY_PROBE_BOUND: std::time::Duration = std::time::Duration::from_millis(1_800);

/// Store and database answer; 503 when either does not.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Store and database answer", body = docs::Health),
        (status = 503, description = "One of them does not (named in `failing`)", body = docs::Health),
    ))]
async fn readyz(State(s): State<AppState>) -> Response {
    // Both probes at once, each under the bound, so the answer always comes
    // within it and names the part that failed.
    let (store, database) = tokio::join!(
        bounded(async { s.flow.store_ready().await.map_err(|e| e.to_string()) }),
        bounded(async { s.flow.database_ready().await.map_err(|e| e.to_string()) }),
    );
    let failing = match (&store, &database) {
        (Ok(()), Ok(())) => {
            return envelope::json_response(StatusCode::OK, &json!({ "status": "ready" }));
        }
        (Err(e), _) => {
            tracing::warn!(error = %e, "not ready: store");
            "store"
        }
        (_, Err(e)) => {
            tracing::warn!(error = %e, "not ready: database");
            "database"
        }
    };
    envelope::json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({ "status": "unavailable", "failing": failing }),
    )
}

/// Middleware: the request's budget for the store and database.
async fn with_backend_budget(
    State(limit): State<std::time::Duration>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    crate::budget::scope(limit, next.run(req)).await
}

/// A readiness probe under [`READY_PROBE_BOUND`].
async fn bounded(probe: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(READY_PROBE_BOUND, probe)
        .await
        .unwrap_or_else(|_| Err("did not answer in time".to_owned()))
}

async fn not_found() -> Response {
    envelope::transport(StatusCode::NOT_FOUND, Errno::ParamErr, messages::NO_ROUTE)
}

async fn method_not_allowed() -> Response {
    envelope::transport(
        StatusCode::METHOD_NOT_ALLOWED,
        Errno::ParamErr,
        messages::METHOD_NOT_ALLOWED,
    )
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    envelope::transport(
        StatusCode::INTERNAL_SERVER_ERROR,
        Errno::ServerErr,
        messages::INTERNAL,
    )
}
