//! Extractors that turn a request into what handlers need, never rejecting
//! with axum's plain-text answers: a malformed body becomes PARAMERR in the
//! route set's envelope, an oversized one 413, a late one 408. (Who the
//! client is: `client_address`.)

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::envelope;
use super::error::ApiError;
use super::messages;
use crate::domain::{Errno, Lang};
use crate::flow::ParamError;

/// `Accept-Language` decides: English when `en` is preferred over `zh`.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    let Some(value) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Lang::Zh;
    };
    let mut best: Option<(f32, Lang)> = None;
    for (i, part) in value.split(',').enumerate() {
        let mut bits = part.split(';');
        let tag = bits.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = bits
            .find_map(|b| b.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = if tag == "en" || tag.starts_with("en-") {
            Lang::En
        } else if tag == "zh" || tag.starts_with("zh-") {
            Lang::Zh
        } else {
            continue;
        };
        // Earlier entries win ties, as browsers list them by preference.
        let score = q - (i as f32) * 1e-4;
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, lang));
        }
    }
    best.map_or(Lang::Zh, |(_, l)| l)
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(lang_of(&parts.headers))
    }
}

/// A JSON object body, whatever the `Content-Type` says; empty means `{}`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let deadline = req.extensions().get::<BodyDeadline>().map(|d| d.0);
        let read = Bytes::from_request(req, state);
        let read = match deadline {
            Some(at) => match tokio::time::timeout_at(at, read).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(envelope::transport(
                        StatusCode::REQUEST_TIMEOUT,
                        Errno::ParamErr,
                        messages::BODY_TIMED_OUT,
                    ));
                }
            },
            None => read.await,
        };
        let malformed = || ApiError::from(ParamError::Body).into_response();
        let bytes = read.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                super::limits::too_large()
            } else {
                malformed()
            }
        })?;
        parse_object(&bytes).map(JsonBody).ok_or_else(malformed)
    }
}

/// When the request body must have arrived (`server.body_timeout` after the
/// header), set by [`super::limits::layer`].
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let value: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(bytes).ok()?
    };
    if !value.is_object() {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as headers;

    #[test]
    fn english_only_when_preferred() {
        assert_eq!(lang_of(&headers(&[])), Lang::Zh);
        assert_eq!(
            lang_of(&headers(&[("accept-language", "en-US,en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            lang_of(&headers(&[("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")])),
            Lang::Zh
        );
        assert_eq!(
            lang_of(&headers(&[("accept-language", "zh;q=0.5,en;q=0.8")])),
            Lang::En
        );
        assert_eq!(lang_of(&headers(&[("accept-language", "fr")])), Lang::Zh);
    }

    #[test]
    fn bodies_must_be_json_objects() {
        #[derive(serde::Deserialize)]
        struct B {
            #[allow(dead_code)]
            a: Option<String>,
        }
        assert!(parse_object::<B>(b"").is_some());
        assert!(parse_object::<B>(b"{\"a\":\"x\",\"zzz\":1}").is_some());
        assert!(parse_object::<B>(b"[\"x\"]").is_none());
        assert!(parse_object::<B>(b"{\"a\":1}").is_none());
        assert!(parse_object::<B>(b"{\"a\":").is_none());
        assert!(parse_object::<B>(b"null").is_none());
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[("cookie", "xsession=1; session=abc; csrf_token=\"def\"")]);
        assert_eq!(cookie(&h, "session"), Some("abc"));
        assert_eq!(cookie(&h, "csrf_token"), Some("def"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
