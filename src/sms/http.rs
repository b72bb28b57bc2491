//! What the vendor clients share: one HTTP client with connect and total
//! timeouts, a bounded read of the answer, and the mapping of transport
//! failures: no connection (refused, connect timeout) and HTTP 5xx are
//! transient; a request that left and got no whole answer (timed out, cut
//! off) has an unknown outcome.
//! Request URLs are never logged: Cloopen carries its signature in the URL.

use std::time::Duration;

use reqwest::{Client, RequestBuilder};
use serde_json::Value;
use url::Url;

use super::{SmsError, SmsErrorKind};
use crate::clock::SharedClock;

/// Largest vendor answer read; anything longer is cut (and then malformed).
const MAX_ANSWER: usize = 64 * 1024;

pub fn client(connect: Duration, total: Duration) -> Result<Client, String> {
    // rustls needs a process-wide crypto provider; installing it twice is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("phoneauth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// What a signing vendor client holds besides its own keys: where its API
/// is, the shared HTTP client, and the clock its signatures are dated with.
pub struct Endpoint {
    pub base: Url,
    pub client: Client,
    pub clock: SharedClock,
}

impl Endpoint {
    pub fn new(
        provider: &'static str,
        base_url: &str,
        client: Client,
        clock: SharedClock,
    ) -> Result<Self, String> {
        let base = Url::parse(base_url).map_err(|e| format!("sms.{provider}.base_url: {e}"))?;
        Ok(Self {
            base,
            client,
            clock,
        })
    }
}

/// A vendor's answer: status and body bytes.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as text for diagnostics, cut short.
    pub fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        s.chars().take(512).collect()
    }
}

pub fn error(provider: &'static str, kind: SmsErrorKind, detail: impl Into<String>) -> SmsError {
    SmsError {
        provider,
        kind,
        detail: detail.into(),
    }
}

/// Sends and reads the answer. Without a connection the failure is
/// transient; once the request may have left, a missing answer leaves the
/// outcome unknown.
pub async fn send(provider: &'static str, req: RequestBuilder) -> Result<Answer, SmsError> {
    let resp = req.send().await.map_err(|e| {
        let (kind, what) = if e.is_builder() {
            // The request was never made: a bad URL or header from config.
            (SmsErrorKind::Config, "could not build the request")
        } else if e.is_connect() {
            (SmsErrorKind::Transient, "could not connect")
        } else if e.is_timeout() {
            (SmsErrorKind::Unknown, "timed out")
        } else {
            (SmsErrorKind::Unknown, "request failed")
        };
        error(provider, kind, format!("{what}: {}", e.without_url()))
    })?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let mut resp = resp;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_ANSWER {
                    body.truncate(MAX_ANSWER);
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(error(
                    provider,
                    SmsErrorKind::Unknown,
                    format!("reading the answer failed: {}", e.without_url()),
                ));
            }
        }
    }
    Ok(Answer { status, body })
}

/// The answer's JSON body; a 5xx without one is a transient failure, any
/// other answer without one is malformed.
pub fn json_body(provider: &'static str, a: &Answer) -> Result<Value, SmsError> {
    match a.json() {
        Some(v) => Ok(v),
        None if a.status >= 500 => Err(error(
            provider,
            SmsErrorKind::Transient,
            format!("HTTP {}", a.status),
        )),
        None => Err(malformed(provider, a)),
    }
}

/// The answer could not be understood: worth another provider.
pub fn malformed(provider: &'static str, a: &Answer) -> SmsError {
    let kind = SmsErrorKind::Transient;
    error(
        provider,
        kind,
        format!("HTTP {} with an unexpected body: {}", a.status, a.text()),
    )
}

/// `host[:port]` exactly as an HTTP client sends it in `Host` (the port only
/// when it is not the scheme's default): what Tencent and Aliyun sign.
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// `base` with `path` appended (keeping any path the base has).
pub fn join(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    u.set_path(&joined);
    u
}

/// How the number is written for vendors that want national numbers for
/// mainland China and country code + number (no `+`) elsewhere.
pub fn vendor_number(m: &crate::domain::Mobile) -> String {
    let e164 = m.e164();
    match e164.strip_prefix("+86") {
        Some(national) => national.to_owned(),
        None => e164.trim_start_matches('+').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_has_the_port_only_when_it_is_not_the_default() {
        let u = |s: &str| Url::parse(s).expect("url");
        assert_eq!(
            host_header(&u("https://sms.tencentcloudapi.com/")),
            "sms.tencentcloudapi.com"
        );
        assert_eq!(
            host_header(&u("https://sms.tencentcloudapi.com:443/")),
            "sms.tencentcloudapi.com"
        );
        assert_eq!(host_header(&u("http://127.0.0.1:8080")), "127.0.0.1:8080");
        assert_eq!(
            host_header(&u("https://app.cloopen.com:8883")),
            "app.cloopen.com:8883"
        );
    }

    #[test]
    fn join_keeps_a_base_path() {
        let base = Url::parse("http://127.0.0.1:9000/mock").expect("url");
        assert_eq!(
            join(&base, "/2010-04-01/x").as_str(),
            "http://127.0.0.1:9000/mock/2010-04-01/x"
        );
        let base = Url::parse("https://api.twilio.com").expect("url");
        assert_eq!(
            join(&base, "/2010-04-01/x").as_str(),
            "https://api.twilio.com/2010-04-01/x"
        );
    }
}
