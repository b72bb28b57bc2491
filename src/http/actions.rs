//! What the errno route sets (`ihome`, `passport`, `validate`) do alike, on
//! fields their wire already located: draw a captcha, send a code, register,
//! log in, log out. Each parses its fields once (`flow::input`), calls the
//! flow and answers; errors go back as [`ApiError`].

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Wire};
use super::{AppState, envelope, messages, session};
use crate::domain::CaptchaId;
use crate::flow::{
    CodeRequestFields, CredentialFields, ParamError, RegistrationFields, SessionOrigin,
};
use crate::limits::ClientKey;

/// A fresh JPEG captcha under `id` (after deleting `previous`, when given).
/// Errors keep real statuses: a bad id 400, a limit 429, a store outage 503.
pub async fn captcha(
    s: &AppState,
    client: &ClientKey,
    id: Option<&str>,
    previous: Option<&str>,
) -> Result<Response, ApiError> {
    let id = id
        .and_then(CaptchaId::parse)
        .ok_or_else(|| ApiError::for_image(ParamError::CaptchaId.into()))?;
    let jpeg = s
        .flow
        .issue_captcha(&id, client)
        .await
        .map_err(ApiError::for_image)?;
    // Only a client that may draw a captcha may drop its previous one.
    if let Some(prev) = previous.and_then(CaptchaId::parse)
        && prev != id
    {
        s.flow
            .discard_captcha(&prev)
            .await
            .map_err(ApiError::for_image)?;
    }
    let mut resp = jpeg.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The captcha-checked SMS code request; the purposes that need a session
/// (`change_mobile`, `confirm`) read it from the request.
pub async fn send_code(
    s: &AppState,
    client: &ClientKey,
    headers: &HeaderMap,
    fields: CodeRequestFields<'_>,
) -> Result<Response, ApiError> {
    let request = s.flow.inputs().code_request(fields)?;
    let session = match request.purpose.needs_session() {
        true => session::current(s, headers).await?,
        false => None,
    };
    s.flow
        .request_code(&request, session.as_ref(), client, Wire::current().lang)
        .await?;
    Ok(envelope::ok(messages::SENT, None))
}

/// Registration with an SMS code; starts a session.
pub async fn register(
    s: &AppState,
    headers: &HeaderMap,
    origin: &SessionOrigin,
    fields: RegistrationFields<'_>,
) -> Result<Response, ApiError> {
    let registration = s.flow.inputs().registration(fields)?;
    let user = s.flow.register(&registration, None).await?;
    session::logged_in(s, headers, origin, &user, messages::REGISTERED, None).await
}

/// Login with mobile and password; a new session id every time.
pub async fn login(
    s: &AppState,
    client: &ClientKey,
    headers: &HeaderMap,
    origin: &SessionOrigin,
    fields: CredentialFields<'_>,
) -> Result<Response, ApiError> {
    let credentials = s.flow.inputs().credentials(fields)?;
    let user = s.flow.login(&credentials, client).await?;
    session::logged_in(s, headers, origin, &user, messages::LOGGED_IN, None).await
}

/// Ends the session; the `csrf_token` cookie stays valid.
pub async fn logout(s: &AppState, headers: &HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session::session_id(headers) {
        s.flow.end_session(id).await?;
    }
    let mut resp = envelope::ok(messages::OK, None);
    session::clear(&mut resp, s.cookies);
    Ok(resp)
}
