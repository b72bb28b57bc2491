//! Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{sid}/Messages.json`
//! with HTTP Basic auth and a form body (`To`, `From` or
//! `MessagingServiceSid`, `Body`). Success is HTTP 201 with a message `sid`.
//! The text comes from a template per language, optionally ending with the
//! WebOTP line `@<domain> #<code>`.

use crate::config::ProviderKind;
use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Client;
use sha1::Sha1;
use url::Url;

use super::http::{self, Answer};
use super::{SmsError, SmsErrorKind, SmsMessage, SmsReceipt, SmsSender};
use crate::config::TwilioConfig;
use crate::domain::Lang;

const NAME: &str = ProviderKind::Twilio.name();

/// `Authorization` value for HTTP Basic (RFC 7617).
pub fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `X-Twilio-Signature` of a webhook (status callbacks): Base64 HMAC-SHA1
/// with the auth token over the full URL followed by every POST parameter,
/// sorted by name (values of one name sorted too), as name + value.
pub fn webhook_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The message text: the language's template with `{code}` and `{minutes}`
/// filled in, plus the WebOTP line when a domain is configured.
pub fn message_text(cfg: &TwilioConfig, code: &str, minutes: u64, lang: Lang) -> String {
    let template = match lang {
        Lang::Zh => &cfg.template_zh,
        Lang::En => &cfg.template_en,
    };
    fill(template, cfg, code, minutes)
}

/// `template` with `{code}` and `{minutes}` filled in, and the WebOTP line
/// when configured (never on a text without the code).
fn fill(template: &str, cfg: &TwilioConfig, code: &str, minutes: u64) -> String {
    let mut text = template
        .replace("{code}", code)
        .replace("{minutes}", &minutes.to_string());
    if !cfg.webotp_domain.is_empty() && template.contains("{code}") {
        text.push_str(&format!("\n\n@{} #{code}", cfg.webotp_domain));
    }
    text
}

/// What an error `code` (and HTTP status) means for delivery.
pub fn classify(status: u16, code: Option<i64>) -> SmsErrorKind {
    match (status, code) {
        (429, _) | (_, Some(20429)) => SmsErrorKind::RateLimited,
        // Invalid, unsubscribed, unreachable or non-mobile `To`.
        (_, Some(21211 | 21610 | 21612 | 21614)) => SmsErrorKind::RejectedNumber,
        (s, _) if s >= 500 => SmsErrorKind::Transient,
        _ => SmsErrorKind::Config,
    }
}

pub struct Twilio {
    cfg: TwilioConfig,
    base: Url,
    client: Client,
}

impl Twilio {
    pub fn new(cfg: TwilioConfig, client: Client) -> Result<Self, String> {
        let base = Url::parse(&cfg.base_url).map_err(|e| format!("sms.twilio.base_url: {e}"))?;
        Ok(Self { cfg, base, client })
    }

    fn parse(a: &Answer) -> Result<SmsReceipt, SmsError> {
        let v = a.json();
        if a.status == 201 || a.status == 200 {
            let sid = v
                .as_ref()
                .and_then(|v| v["sid"].as_str().map(str::to_owned));
            return match sid {
                Some(sid) => Ok(SmsReceipt {
                    provider: NAME,
                    message_id: Some(sid),
                    vendor_answer: a.text(),
                }),
                None => Err(http::malformed(NAME, a)),
            };
        }
        let code = v.as_ref().and_then(|v| v["code"].as_i64());
        let msg = v
            .as_ref()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| a.text());
        let detail = match code {
            Some(c) => format!("HTTP {} code {c}: {msg}", a.status),
            None => format!("HTTP {}: {msg}", a.status),
        };
        Err(http::error(NAME, classify(a.status, code), detail))
    }
}

#[async_trait]
impl SmsSender for Twilio {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
        let url = http::join(
            &self.base,
            &format!(
                "/2010-04-01/Accounts/{}/Messages.json",
                self.cfg.account_sid
            ),
        );
        let body = match msg.template(&self.cfg.templates, "", NAME) {
            Ok(t) if !t.is_empty() => fill(t, &self.cfg, msg.code, msg.ttl_minutes),
            _ if msg.notice => msg.text(),
            _ => message_text(&self.cfg, msg.code, msg.ttl_minutes, msg.lang),
        };
        let sender = if self.cfg.messaging_service_sid.is_empty() {
            ("From", self.cfg.from.as_str())
        } else {
            (
                "MessagingServiceSid",
                self.cfg.messaging_service_sid.as_str(),
            )
        };
        let mut form = vec![("To", msg.mobile.e164()), sender, ("Body", body.as_str())];
        if !self.cfg.status_callback.is_empty() {
            form.push(("StatusCallback", self.cfg.status_callback.as_str()));
        }
        let req = self
            .client
            .post(url)
            .header(
                "Authorization",
                basic_auth(&self.cfg.account_sid, self.cfg.auth_token.expose()),
            )
            .form(&form);
        let answer = http::send(NAME, req).await?;
        Self::parse(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W-1 (RFC 7617 example).
    #[test]
    fn basic_auth_encodes_user_and_password() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const PARAMS: &[(&str, &str)] = &[
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
        ("Caller", "+14158675309"),
    ];

    /// W-2 … W-6 (SDK): twilio-python's validator tests.
    #[test]
    fn webhook_signatures_match_the_sdk_vectors() {
        assert_eq!(
            webhook_signature("12345", URL, PARAMS),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let dup = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ];
        assert_eq!(
            webhook_signature("12345", URL, &dup),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            webhook_signature("12345", with_port, PARAMS),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        use sha2::Digest;
        let body_hash = hex::encode(sha2::Sha256::digest(
            br#"{"property": "value", "boolean": true}"#,
        ));
        assert_eq!(
            body_hash,
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let json_url = format!("{URL}&bodySHA256={body_hash}");
        assert_eq!(
            webhook_signature("12345", &json_url, &[]),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        );
    }

    #[test]
    fn the_text_fills_the_template_and_ends_with_the_webotp_line() {
        let mut cfg = TwilioConfig::default();
        assert_eq!(
            message_text(&cfg, "123456", 5, Lang::En),
            "Your verification code is 123456. It expires in 5 minutes."
        );
        assert!(
            message_text(&cfg, "123456", 5, Lang::Zh)
                .starts_with("您的验证码是123456，5分钟内有效")
        );
        cfg.webotp_domain = "example.com".into();
        assert!(message_text(&cfg, "123456", 5, Lang::En).ends_with("\n\n@example.com #123456"));
    }

    #[test]
    fn errors_map_to_delivery_classes() {
        assert_eq!(classify(429, Some(20429)), SmsErrorKind::RateLimited);
        assert_eq!(classify(400, Some(21211)), SmsErrorKind::RejectedNumber);
        assert_eq!(classify(400, Some(21610)), SmsErrorKind::RejectedNumber);
        assert_eq!(classify(401, Some(20003)), SmsErrorKind::Config);
        assert_eq!(classify(400, Some(21608)), SmsErrorKind::Config);
        assert_eq!(classify(503, None), SmsErrorKind::Transient);
    }
}
