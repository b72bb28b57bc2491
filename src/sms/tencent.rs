//! Tencent Cloud SMS: API 3.0 `SendSms`, version 2021-01-11, signed with
//! TC3-HMAC-SHA256 over `content-type` and `host`. The JSON body is serialised
//! once and the same bytes are hashed and sent; `Content-Type` is sent exactly
//! as signed. The call can succeed while the one number fails: success only
//! when there is no `Response.Error` and the number's `Code` is `Ok`.

use crate::config::ProviderKind;
use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Client;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, macros::format_description};

use super::http::{self, Answer};
use super::{SmsError, SmsErrorKind, SmsMessage, SmsReceipt, SmsSender};
use crate::clock::SharedClock;
use crate::config::TencentConfig;

const NAME: &str = ProviderKind::Tencent.name();
const SERVICE: &str = "sms";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// One request to sign; `headers` are lower-case names to values.
pub struct Tc3Request<'a> {
    pub service: &'a str,
    pub method: &'a str,
    /// The path actually requested: `/` for the API (a gateway or mock in
    /// `base_url` may add a prefix, which is then signed too).
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
    pub timestamp: i64,
}

pub struct Tc3Signature {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

fn hmac256(key: &[u8], msg: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The UTC date of a Unix timestamp, `yyyy-MM-dd`: the credential scope.
pub fn utc_date(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

pub fn tc3_sign(req: &Tc3Request<'_>, secret_id: &str, secret_key: &str) -> Tc3Signature {
    let mut headers: Vec<(&str, &str)> = req.headers.to_vec();
    headers.sort_by_key(|(k, _)| *k);
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim().to_lowercase()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = [
        req.method,
        req.path,
        req.query,
        &canonical_headers,
        &signed_headers,
        &hex::encode(Sha256::digest(req.payload)),
    ]
    .join("\n");
    let date = utc_date(req.timestamp);
    let scope = format!("{date}/{}/tc3_request", req.service);
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{}\n{scope}\n{}",
        req.timestamp,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac256(format!("TC3{secret_key}").as_bytes(), &date);
    let k_service = hmac256(&k_date, req.service);
    let k_signing = hmac256(&k_service, "tc3_request");
    let signature = hex::encode(hmac256(&k_signing, &string_to_sign));
    let authorization = format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    Tc3Signature {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

/// What an error code (call-level or per number) means for delivery.
pub fn classify(code: &str) -> SmsErrorKind {
    match code {
        "LimitExceeded.PhoneNumberCountLimit" => SmsErrorKind::Config,
        c if c.starts_with("LimitExceeded") || c.starts_with("RequestLimitExceeded") => {
            SmsErrorKind::RateLimited
        }
        "InvalidParameterValue.IncorrectPhoneNumber" | "FailedOperation.PhoneNumberInBlacklist" => {
            SmsErrorKind::RejectedNumber
        }
        c if c.starts_with("InternalError") => SmsErrorKind::Transient,
        _ => SmsErrorKind::Config,
    }
}

pub struct Tencent {
    cfg: TencentConfig,
    at: http::Endpoint,
}

impl Tencent {
    pub fn new(cfg: TencentConfig, client: Client, clock: SharedClock) -> Result<Self, String> {
        let at = http::Endpoint::new(NAME, &cfg.base_url, client, clock)?;
        Ok(Self { cfg, at })
    }

    fn parse(a: &Answer) -> Result<SmsReceipt, SmsError> {
        let v = http::json_body(NAME, a)?;
        let resp = &v["Response"];
        if let Some(code) = resp["Error"]["Code"].as_str() {
            let msg = resp["Error"]["Message"].as_str().unwrap_or_default();
            return Err(http::error(NAME, classify(code), format!("{code}: {msg}")));
        }
        if a.status >= 500 {
            return Err(http::error(
                NAME,
                SmsErrorKind::Transient,
                format!("HTTP {}", a.status),
            ));
        }
        let Some(status) = resp["SendStatusSet"].get(0) else {
            return Err(http::malformed(NAME, a));
        };
        match status["Code"].as_str() {
            Some("Ok") => Ok(SmsReceipt {
                provider: NAME,
                message_id: status["SerialNo"].as_str().map(str::to_owned),
                vendor_answer: a.text(),
            }),
            Some(code) => {
                let msg = status["Message"].as_str().unwrap_or_default();
                Err(http::error(NAME, classify(code), format!("{code}: {msg}")))
            }
            None => Err(http::malformed(NAME, a)),
        }
    }
}

#[async_trait]
impl SmsSender for Tencent {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
        let template = msg.template(&self.cfg.templates, &self.cfg.template_id, NAME)?;
        let mut body = json!({
            "PhoneNumberSet": [msg.mobile.e164()],
            "SmsSdkAppId": self.cfg.sdk_app_id,
            "SignName": self.cfg.sign_name,
            "TemplateId": template,
            "TemplateParamSet": msg.params(),
        });
        if !msg.send_id.is_empty() {
            // Echoed in the status callback: the send's own key.
            body["SessionContext"] = json!(msg.send_id);
        }
        let body = body.to_string();
        let ts = i64::try_from(self.at.clock.now_ms() / 1000).unwrap_or_default();
        let host = http::host_header(&self.at.base);
        let url = http::join(&self.at.base, "/");
        let signed = tc3_sign(
            &Tc3Request {
                service: SERVICE,
                method: "POST",
                path: url.path(),
                query: "",
                headers: &[("content-type", CONTENT_TYPE), ("host", &host)],
                payload: body.as_bytes(),
                timestamp: ts,
            },
            &self.cfg.secret_id,
            self.cfg.secret_key.expose(),
        );
        let req = self
            .at
            .client
            .post(url)
            .header("Authorization", signed.authorization)
            .header("Content-Type", CONTENT_TYPE)
            .header("X-TC-Action", "SendSms")
            .header("X-TC-Version", "2021-01-11")
            .header("X-TC-Timestamp", ts.to_string())
            .header("X-TC-Region", &self.cfg.region)
            .body(body);
        let answer = http::send(NAME, req).await?;
        Self::parse(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of the CVM DescribeInstances example, exactly as printed.
    const CVM_BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const JSON_CT: &str = "application/json; charset=utf-8";
    const CVM_HOST: &str = "cvm.tencentcloudapi.com";

    fn cvm(headers: &[(&str, &str)], key: &str) -> Tc3Signature {
        tc3_sign(
            &Tc3Request {
                service: "cvm",
                method: "POST",
                path: "/",
                query: "",
                headers,
                payload: CVM_BODY.as_bytes(),
                timestamp: 1_551_113_065,
            },
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            key,
        )
    }

    #[test]
    fn payload_hash_and_utc_scope_date_match_the_documentation() {
        assert_eq!(
            hex::encode(Sha256::digest(CVM_BODY.as_bytes())),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
    }

    /// T-A (DOC).
    #[test]
    fn tc3_matches_example_a() {
        let s = cvm(
            &[("content-type", JSON_CT), ("host", CVM_HOST)],
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        );
        assert_eq!(
            hex::encode(Sha256::digest(s.canonical_request.as_bytes())),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            s.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    /// T-B (DOC): the key really contains the asterisks.
    #[test]
    fn tc3_matches_example_b() {
        let s = cvm(
            &[("content-type", JSON_CT), ("host", CVM_HOST)],
            "Gu5t9xGARNpq86cd98joQYCN3*******",
        );
        assert_eq!(
            s.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.signature,
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    /// T-C (DOC): also signing `x-tc-action`, whose value is lower-cased.
    #[test]
    fn tc3_matches_example_c() {
        let s = cvm(
            &[
                ("content-type", JSON_CT),
                ("host", CVM_HOST),
                ("x-tc-action", "DescribeInstances"),
            ],
            "Gu5t9xGARNpq86cd98joQYCN3*******",
        );
        assert_eq!(
            hex::encode(Sha256::digest(s.canonical_request.as_bytes())),
            "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        assert_eq!(
            s.signature,
            "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3"
        );
    }

    /// T-D (DOC): the older GET example.
    #[test]
    fn tc3_matches_example_d_get() {
        let s = tc3_sign(
            &Tc3Request {
                service: "cvm",
                method: "GET",
                path: "/",
                query: "Limit=10&Offset=0",
                headers: &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("host", CVM_HOST),
                ],
                payload: b"",
                timestamp: 1_539_084_154,
            },
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        );
        assert_eq!(
            hex::encode(Sha256::digest(s.canonical_request.as_bytes())),
            "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
        );
        assert_eq!(
            s.signature,
            "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
        );
    }

    /// T-E (SELF): a SendSms request.
    #[test]
    fn tc3_send_sms_regression_vector() {
        let body = r#"{"PhoneNumberSet":["+8613800000000"],"SmsSdkAppId":"1400006666","SignName":"Test","TemplateId":"1110","TemplateParamSet":["123456"]}"#;
        let s = tc3_sign(
            &Tc3Request {
                service: "sms",
                method: "POST",
                path: "/",
                query: "",
                headers: &[
                    ("content-type", JSON_CT),
                    ("host", "sms.tencentcloudapi.com"),
                ],
                payload: body.as_bytes(),
                timestamp: 1_700_000_000,
            },
            "AKIDEXAMPLEEXAMPLEEXAMPLEEXAMPLE12",
            "EXAMPLEEXAMPLEEXAMPLEEXAMPLEKEY1",
        );
        assert_eq!(
            s.signature,
            "d3af6a40b1ca5a991c6558d3358df9afa15314edaaaa291d638bd51023273da0"
        );
    }

    #[test]
    fn codes_map_to_delivery_classes() {
        assert_eq!(
            classify("LimitExceeded.PhoneNumberDailyLimit"),
            SmsErrorKind::RateLimited
        );
        assert_eq!(classify("RequestLimitExceeded"), SmsErrorKind::RateLimited);
        assert_eq!(
            classify("LimitExceeded.PhoneNumberCountLimit"),
            SmsErrorKind::Config
        );
        assert_eq!(
            classify("InvalidParameterValue.IncorrectPhoneNumber"),
            SmsErrorKind::RejectedNumber
        );
        assert_eq!(classify("InternalError.Timeout"), SmsErrorKind::Transient);
        assert_eq!(
            classify("AuthFailure.SignatureFailure"),
            SmsErrorKind::Config
        );
    }
}
