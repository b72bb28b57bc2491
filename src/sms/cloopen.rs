//! Ronglian / Cloopen (容联云通讯), REST API 2013-12-26, TemplateSMS.
//!
//! `sig` = upper-case hex MD5(account SID + auth token + timestamp), in the
//! URL; `Authorization` = Base64(SID + ":" + timestamp); the timestamp is
//! `yyyyMMddHHmmss` in Asia/Shanghai, as the vendor's SDKs send it. The body
//! names the template and its data `[code, minutes]`. Only `statusCode ==
//! "000000"` is success.

use crate::config::ProviderKind;
use async_trait::async_trait;
use base64::Engine;
use md5::{Digest, Md5};
use reqwest::Client;
use serde_json::json;
use time::{OffsetDateTime, UtcOffset, macros::format_description};

use super::http::{self, Answer};
use super::{SmsError, SmsErrorKind, SmsMessage, SmsReceipt, SmsSender};
use crate::clock::SharedClock;
use crate::config::CloopenConfig;

const NAME: &str = ProviderKind::Cloopen.name();

/// `(sig, Authorization)` for one request.
pub fn sign(account_sid: &str, auth_token: &str, timestamp: &str) -> (String, String) {
    let digest = Md5::digest(format!("{account_sid}{auth_token}{timestamp}").as_bytes());
    let sig = hex::encode_upper(digest);
    let authorization =
        base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{timestamp}"));
    (sig, authorization)
}

/// `yyyyMMddHHmmss` in China Standard Time (UTC+8, no daylight saving).
pub fn timestamp(now: OffsetDateTime) -> String {
    let cst = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    now.to_offset(cst)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
}

/// What a `statusCode` means for delivery.
pub fn classify(status_code: &str) -> SmsErrorKind {
    match status_code {
        // Same number too often, daily caps, duplicates, over concurrency.
        "160038" | "160039" | "160040" | "160041" | "160054" | "160056" | "111111" => {
            SmsErrorKind::RateLimited
        }
        // Blacklisted, malformed or unsubscribed numbers.
        "160034" | "160042" | "160068" | "160072" | "160073" | "160074" => {
            SmsErrorKind::RejectedNumber
        }
        "160000" | "160050" => SmsErrorKind::Transient,
        // Credentials, account, application, template, content, IP allow-list.
        _ => SmsErrorKind::Config,
    }
}

pub struct Cloopen {
    cfg: CloopenConfig,
    at: http::Endpoint,
}

impl Cloopen {
    pub fn new(cfg: CloopenConfig, client: Client, clock: SharedClock) -> Result<Self, String> {
        let at = http::Endpoint::new(NAME, &cfg.base_url, client, clock)?;
        Ok(Self { cfg, at })
    }

    fn parse(a: &Answer) -> Result<SmsReceipt, SmsError> {
        let v = http::json_body(NAME, a)?;
        let Some(code) = v["statusCode"].as_str() else {
            return Err(http::malformed(NAME, a));
        };
        if code == "000000" && (200..300).contains(&a.status) {
            return Ok(SmsReceipt {
                provider: NAME,
                message_id: v["templateSMS"]["smsMessageSid"]
                    .as_str()
                    .map(str::to_owned),
                vendor_answer: a.text(),
            });
        }
        let msg = v["statusMsg"].as_str().unwrap_or_default();
        Err(http::error(
            NAME,
            classify(code),
            format!("statusCode {code}: {msg}"),
        ))
    }
}

#[async_trait]
impl SmsSender for Cloopen {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
        let ts = timestamp(self.at.clock.now());
        let (sig, authorization) = sign(&self.cfg.account_sid, self.cfg.auth_token.expose(), &ts);
        let mut url = http::join(
            &self.at.base,
            &format!(
                "/2013-12-26/Accounts/{}/SMS/TemplateSMS",
                self.cfg.account_sid
            ),
        );
        url.query_pairs_mut().append_pair("sig", &sig);
        let body = json!({
            "to": http::vendor_number(msg.mobile),
            "appId": self.cfg.app_id,
            "templateId": msg.template(&self.cfg.templates, &self.cfg.template_id, NAME)?,
            "datas": msg.params(),
        });
        let req = self
            .at
            .client
            .post(url)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json;charset=utf-8")
            .header("Authorization", authorization)
            .body(body.to_string());
        let answer = http::send(NAME, req).await?;
        if answer.status >= 500 {
            return Err(http::error(
                NAME,
                SmsErrorKind::Transient,
                format!("HTTP {}", answer.status),
            ));
        }
        Self::parse(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C-2 (SELF): no unmasked vector is published; this pins our reading.
    #[test]
    fn sig_and_authorization_match_the_reference_vector() {
        let (sig, auth) = sign(
            "abcdefghijklmnopqrstuvwxyz012345",
            "0123456789abcdef0123456789abcdef",
            "20240101120000",
        );
        assert_eq!(sig, "D6DF1E65D2F267AB9F4D3A4DC35C9E41");
        assert_eq!(
            auth,
            "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU6MjAyNDAxMDExMjAwMDA="
        );
    }

    /// C-1 (DOC, partial): the vendor's masked example header starts with
    /// Base64 of `<sid>:<yyyyMMddHH…>`.
    #[test]
    fn authorization_has_the_layout_of_the_vendor_example() {
        let doc = "ZmY4MDgwODEzYzM3ZGE1MzAxM2M4MDRmODA3MjAwN2M6MjAxMzAyMDExNTABCDE=";
        let (_, auth) = sign(
            "ff8080813c37da53013c804f8072007c",
            "token",
            "20130201150000",
        );
        // Base64 groups of 4 characters encode 3 bytes: the first 56 characters
        // cover "ff8080813c37da53013c804f8072007c:201302011" exactly.
        assert_eq!(&auth[..56], &doc[..56]);
    }

    #[test]
    fn the_timestamp_is_china_standard_time() {
        let t = OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("time"); // 2024-01-01T00:00:00Z
        assert_eq!(timestamp(t), "20240101080000");
    }

    #[test]
    fn status_codes_map_to_delivery_classes() {
        assert_eq!(classify("160038"), SmsErrorKind::RateLimited);
        assert_eq!(classify("160040"), SmsErrorKind::RateLimited);
        assert_eq!(classify("160042"), SmsErrorKind::RejectedNumber);
        assert_eq!(classify("160000"), SmsErrorKind::Transient);
        assert_eq!(classify("111109"), SmsErrorKind::Config);
        assert_eq!(classify("111142"), SmsErrorKind::Config);
    }
}
