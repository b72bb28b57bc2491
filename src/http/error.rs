//! From flow outcomes to the wire, in one place. Handlers return
//! `Result<Response, ApiError>` and use `?` on flow results: [`ApiError`]
//! carries the flow's error with the [`Wire`] of the request (its language,
//! and its route set's envelope), and renders itself: the errno, the HTTP
//! status, `Retry-After` on limits, the words (`messages`), the log line and
//! the metric.
//!
//! The wire of a request is set once by middleware around it ([`errno_wire`]
//! for the router, [`steps_wire`] around the `steps` route set), so a `?`
//! anywhere in a handler or an extractor picks it up.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::envelope::json_response;
use super::extract::lang_of;
use super::messages;
use crate::domain::{Errno, Lang};
use crate::flow::{FlowError, ParamError};
use crate::limits::retry_after_secs;

/// How the answers of one request are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    pub lang: Lang,
    pub envelope: Envelope,
}

/// The shapes of answer the route sets use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// `{"errno", "errmsg"}`, HTTP 200 for business outcomes (SPEC §2).
    Errno,
    /// The four-step flow's `{"code": 0|1, "message"}` (SPEC §4).
    Steps,
    /// Image routes: they cannot answer an error as a 200 image, so the
    /// errno envelope comes with a real status (400, 429, 503).
    Image,
}

tokio::task_local! {
    static WIRE: Wire;
}

impl Wire {
    /// The wire of the request being served (Chinese and the errno envelope
    /// outside one).
    pub fn current() -> Wire {
        WIRE.try_with(|w| *w).unwrap_or(Wire {
            lang: Lang::Zh,
            envelope: Envelope::Errno,
        })
    }
}

/// Middleware: the request's language, with the errno envelope.
pub async fn errno_wire(req: Request, next: Next) -> Response {
    let wire = Wire {
        lang: lang_of(req.headers()),
        envelope: Envelope::Errno,
    };
    WIRE.scope(wire, next.run(req)).await
}

/// Middleware for the `steps` route set: its own envelope.
pub async fn steps_wire(req: Request, next: Next) -> Response {
    let wire = Wire {
        lang: lang_of(req.headers()),
        envelope: Envelope::Steps,
    };
    WIRE.scope(wire, next.run(req)).await
}

/// A flow error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    error: FlowError,
    wire: Wire,
}

impl From<FlowError> for ApiError {
    fn from(error: FlowError) -> Self {
        Self {
            error,
            wire: Wire::current(),
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(p: ParamError) -> Self {
        FlowError::Param(p).into()
    }
}

impl ApiError {
    /// The error of an image route (answered with a real HTTP status).
    pub fn for_image(error: FlowError) -> Self {
        let wire = Wire {
            envelope: Envelope::Image,
            ..Wire::current()
        };
        Self { error, wire }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = &self.error;
        log(e);
        let errno = errno_of(e);
        let text = messages::error_text(e, self.wire.lang);
        let mut resp = match self.wire.envelope {
            Envelope::Errno => {
                json_response(StatusCode::OK, &json!({ "errno": errno, "errmsg": text }))
            }
            Envelope::Steps => {
                json_response(StatusCode::OK, &json!({ "code": 0, "message": text }))
            }
            Envelope::Image => json_response(
                image_status(errno),
                &json!({ "errno": errno, "errmsg": text }),
            ),
        };
        if let Some(after) = retry_after(e) {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(after)),
            );
        }
        resp
    }
}

/// The row of the errno table (SPEC §2) for each flow outcome.
pub fn errno_of(e: &FlowError) -> Errno {
    match e {
        FlowError::Param(_) => Errno::ParamErr,
        FlowError::Limited(_) | FlowError::Busy => Errno::ReqErr,
        FlowError::Store(_) | FlowError::Database(_) => Errno::DbErr,
        FlowError::CaptchaMissing
        | FlowError::CodeMissing
        | FlowError::StepMissing(_)
        | FlowError::SessionMissing => Errno::NoData,
        // The iHome profile page shows "name taken" on 4001 only (SPEC §9).
        FlowError::NameTaken => Errno::DbErr,
        FlowError::Avatars(_) => Errno::IoErr,
        FlowError::Refused(crate::defence::Refusal::Network) => Errno::IpErr,
        FlowError::Refused(_) => Errno::ReqErr,
        FlowError::CaptchaWrong
        | FlowError::CodeWrong { .. }
        | FlowError::BadCredentials
        | FlowError::StepToken => Errno::DataErr,
        FlowError::MobileTaken | FlowError::IdentitySet => Errno::DataExist,
        FlowError::UserDisabled | FlowError::UserMissing => Errno::UserErr,
        FlowError::NotLoggedIn => Errno::SessionErr,
        FlowError::Sms(_) => Errno::ThirdErr,
        FlowError::Internal(_) => Errno::ServerErr,
    }
}

/// When the client may try again, for `Retry-After`.
fn retry_after(e: &FlowError) -> Option<Duration> {
    match e {
        FlowError::Limited(r) => Some(r.retry_after),
        FlowError::Busy => Some(Duration::from_secs(1)),
        FlowError::Refused(crate::defence::Refusal::Pumping { retry_after, .. }) => {
            Some(*retry_after)
        }
        _ => None,
    }
}

fn image_status(errno: Errno) -> StatusCode {
    match errno {
        Errno::ParamErr => StatusCode::BAD_REQUEST,
        Errno::ReqErr => StatusCode::TOO_MANY_REQUESTS,
        Errno::DbErr => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Every error answer passes here: logged (details never sent) and counted.
fn log(e: &FlowError) {
    match e {
        FlowError::Limited(r) => crate::meter::limit_refusal(r.scope.as_str()),
        FlowError::Store(_) => crate::meter::backend_error("store"),
        FlowError::Database(_) => crate::meter::backend_error("database"),
        _ => {}
    }
    let errno = errno_of(e).code();
    match e {
        FlowError::Store(_)
        | FlowError::Database(_)
        | FlowError::Internal(_)
        | FlowError::Avatars(_) => {
            tracing::error!(error = %e, errno, "request failed");
        }
        FlowError::Sms(_) | FlowError::Busy => {
            tracing::warn!(error = %e, errno, "request failed");
        }
        _ => tracing::debug!(error = %e, errno, "request refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{Refusal, Scope};

    async fn body(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn the_envelope_and_language_come_from_the_request() {
        let limited = || {
            FlowError::Limited(Refusal {
                scope: Scope::Cooldown,
                retry_after: Duration::from_millis(59_001),
            })
        };
        let steps = Wire {
            lang: Lang::En,
            envelope: Envelope::Steps,
        };
        let resp = WIRE
            .scope(steps, async { ApiError::from(limited()).into_response() })
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "60");
        let b = body(resp).await;
        assert_eq!(b["code"], 0);
        assert_eq!(b["message"], "Please wait before requesting another code");

        let resp = ApiError::from(limited()).into_response();
        let b = body(resp).await;
        assert_eq!(b["errno"], "4201");
        assert_eq!(b["errmsg"], "发送过于频繁，请稍后再试");
    }

    #[tokio::test]
    async fn image_errors_carry_real_statuses() {
        let cases = [
            (FlowError::Param(ParamError::CaptchaId), 400),
            (FlowError::Store(crate::store::StoreError::Full), 503),
            (FlowError::Internal("x".into()), 500),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::for_image(e).into_response().status(), status);
        }
    }
}
