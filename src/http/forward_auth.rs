//! `GET /auth/verify` (SPEC §11): forward auth for the site's other
//! services — nginx `auth_request`, Traefik ForwardAuth, Caddy
//! `forward_auth`. A live session (the `session` cookie, or the `token`
//! header of the app flow) answers 200 with `X-User-Id`, `X-User-Mobile`
//! (E.164) and `X-User-Name` (percent-encoded UTF-8); anything else 401 with
//! an empty body. It costs one store read and no database query: it sits
//! in front of every request of the site.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, session};

/// Whether the request carries a live session; who it is.
#[utoipa::path(get, path = "/auth/verify", tag = "operations",
    params(("token" = Option<String>, Header, description = "A token from the app flow, instead of the session cookie")),
    responses(
        (status = 200, description = "Logged in: X-User-Id, X-User-Mobile (E.164), X-User-Name (percent-encoded UTF-8); empty body"),
        (status = 401, description = "Not logged in; empty body"),
    ))]
pub async fn verify(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let id = session::session_id(&headers).or_else(|| session::token(&headers));
    let found = match id {
        Some(id) => s.flow.verify_session(id).await,
        None => Ok(None),
    };
    let data = match found {
        Ok(Some(d)) => d,
        Ok(None) => return empty(StatusCode::UNAUTHORIZED),
        Err(e) => {
            // The site's proxy turns any other status into an error page:
            // an outage is not a login.
            tracing::error!(error = %e, "forward auth could not read the session");
            return empty(StatusCode::SERVICE_UNAVAILABLE);
        }
    };
    let mobile = if data.e164.is_empty() {
        // Sessions started before the number was kept in E.164: the
        // national form is a CN number's.
        match data.mobile.starts_with('+') {
            true => data.mobile.clone(),
            false => format!("+86{}", data.mobile),
        }
    } else {
        data.e164.clone()
    };
    let mut resp = empty(StatusCode::OK);
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-user-id", data.user_id.to_string()),
        ("x-user-mobile", mobile),
        ("x-user-name", percent_encode(&data.name)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    resp
}

fn empty(status: StatusCode) -> Response {
    let mut resp = status.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Every byte but the unreserved characters of RFC 3986 as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn names_are_percent_encoded_utf8() {
        assert_eq!(percent_encode("老王 1"), "%E8%80%81%E7%8E%8B%201");
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(percent_encode("\r\n"), "%0D%0A");
    }
}
