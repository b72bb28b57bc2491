//! Alibaba Cloud SMS: dysmsapi `SendSms`, version 2017-05-25, signed with
//! ACS3-HMAC-SHA256 (the "V3" scheme). Business parameters travel in the query
//! string, the body is empty, and every `x-acs-*` header and `host` is signed.
//! `TemplateParam` is the JSON string `{"code":"…"}`. Success iff
//! `Code == "OK"`.
//!
//! The older RPC HMAC-SHA1 scheme is implemented too ([`rpc_v1_signature`]),
//! only so that the signature example of the SMS product's documentation can
//! be checked against the same percent-encoding.

use crate::config::ProviderKind;
use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Client;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::macros::format_description;

use super::http::{self, Answer};
use super::{SmsError, SmsErrorKind, SmsMessage, SmsReceipt, SmsSender};
use crate::clock::SharedClock;
use crate::config::AliyunConfig;

const NAME: &str = ProviderKind::Aliyun.name();
const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// RFC 3986 encoding as Alibaba Cloud signs it: only `A-Z a-z 0-9 - _ . ~`
/// stay, everything else is `%XX` of its UTF-8 bytes, upper-case hex.
pub fn pop_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k=v` pairs sorted by name and encoded, joined by `&`.
pub fn canonical_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", pop_encode(k), pop_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One V3 request to sign: lower-case header names to values (the
/// `x-acs-content-sha256` header included).
pub struct Acs3Request<'a> {
    pub method: &'a str,
    /// The path actually requested: `/` for dysmsapi (a gateway or mock in
    /// `base_url` may add a prefix, which is then signed too).
    pub path: &'a str,
    pub query: &'a BTreeMap<String, String>,
    pub headers: &'a BTreeMap<String, String>,
    pub payload: &'a [u8],
}

pub struct Acs3Signature {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

pub fn acs3_sign(req: &Acs3Request<'_>, access_key_id: &str, secret: &str) -> Acs3Signature {
    let canonical_headers: String = req
        .headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = req.headers.keys().cloned().collect::<Vec<_>>().join(";");
    let canonical_request = [
        req.method,
        req.path,
        &canonical_query(req.query),
        &canonical_headers,
        &signed_headers,
        &hex::encode(Sha256::digest(req.payload)),
    ]
    .join("\n");
    let string_to_sign = format!(
        "{ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    );
    Acs3Signature {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

/// RPC signature ("V2", `SignatureVersion=1.0`): `(canonical query, string to
/// sign, Base64 HMAC-SHA1 with key secret + "&")`.
pub fn rpc_v1_signature(
    method: &str,
    params: &BTreeMap<String, String>,
    secret: &str,
) -> (String, String, String) {
    let query = canonical_query(params);
    let string_to_sign = format!("{method}&{}&{}", pop_encode("/"), pop_encode(&query));
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (query, string_to_sign, signature)
}

/// What a `Code` means for delivery.
pub fn classify(code: &str) -> SmsErrorKind {
    match code {
        "isv.BUSINESS_LIMIT_CONTROL" | "isv.DAY_LIMIT_CONTROL" | "isv.MONTH_LIMIT_CONTROL" => {
            SmsErrorKind::RateLimited
        }
        c if c.starts_with("Throttling") => SmsErrorKind::RateLimited,
        "isv.MOBILE_NUMBER_ILLEGAL" => SmsErrorKind::RejectedNumber,
        "isp.SYSTEM_ERROR" | "ServiceUnavailable" | "InternalError" => SmsErrorKind::Transient,
        _ => SmsErrorKind::Config,
    }
}

pub struct Aliyun {
    cfg: AliyunConfig,
    at: http::Endpoint,
}

impl Aliyun {
    pub fn new(cfg: AliyunConfig, client: Client, clock: SharedClock) -> Result<Self, String> {
        let at = http::Endpoint::new(NAME, &cfg.base_url, client, clock)?;
        Ok(Self { cfg, at })
    }

    fn parse(a: &Answer) -> Result<SmsReceipt, SmsError> {
        // Gateway errors come with 4xx and a JSON body too: read the body first.
        let v = http::json_body(NAME, a)?;
        let Some(code) = v["Code"].as_str() else {
            return Err(http::malformed(NAME, a));
        };
        if code == "OK" {
            return Ok(SmsReceipt {
                provider: NAME,
                message_id: v["BizId"].as_str().map(str::to_owned),
                vendor_answer: a.text(),
            });
        }
        let kind = if a.status >= 500 {
            SmsErrorKind::Transient
        } else {
            classify(code)
        };
        let msg = v["Message"].as_str().unwrap_or_default();
        Err(http::error(NAME, kind, format!("{code}: {msg}")))
    }
}

#[async_trait]
impl SmsSender for Aliyun {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
        let template = msg.template(&self.cfg.templates, &self.cfg.template_code, NAME)?;
        let template_param = if msg.notice {
            "{}".to_owned()
        } else {
            serde_json::json!({ "code": msg.code }).to_string()
        };
        let mut query: BTreeMap<String, String> = [
            ("PhoneNumbers", http::vendor_number(msg.mobile)),
            ("SignName", self.cfg.sign_name.clone()),
            ("TemplateCode", template.to_owned()),
            ("TemplateParam", template_param),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if !msg.send_id.is_empty() {
            // Echoed in the delivery receipt: the send's own key.
            query.insert("OutId".into(), msg.send_id.to_owned());
        }
        let date = self
            .at
            .clock
            .now()
            .format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .unwrap_or_default();
        let headers: BTreeMap<String, String> = [
            ("host", http::host_header(&self.at.base)),
            ("x-acs-action", "SendSms".to_owned()),
            ("x-acs-content-sha256", hex::encode(Sha256::digest(b""))),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", crate::secret::random_hex(16)),
            ("x-acs-version", "2017-05-25".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut url = http::join(&self.at.base, "/");
        url.set_query(Some(&canonical_query(&query)));
        let signed = acs3_sign(
            &Acs3Request {
                method: "POST",
                path: url.path(),
                query: &query,
                headers: &headers,
                payload: b"",
            },
            &self.cfg.access_key_id,
            self.cfg.access_key_secret.expose(),
        );
        let mut req = self
            .at
            .client
            .post(url)
            .header("Authorization", signed.authorization);
        for (k, v) in headers.iter().filter(|(k, _)| k.as_str() != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        let answer = http::send(NAME, req).await?;
        Self::parse(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bodiless `POST /` signed with ACS3.
    fn sign_empty_post(
        query: &BTreeMap<String, String>,
        headers: &BTreeMap<String, String>,
        id: &str,
        secret: &str,
    ) -> Acs3Signature {
        let req = Acs3Request {
            method: "POST",
            path: "/",
            query,
            headers,
            payload: b"",
        };
        acs3_sign(&req, id, secret)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pop_encoding_keeps_only_unreserved_characters() {
        assert_eq!(pop_encode("a b*~/=&+"), "a%20b%2A~%2F%3D%26%2B");
    }

    /// A-1 (DOC): the SMS product's signature example.
    #[test]
    fn rpc_signature_matches_the_sms_documentation_example() {
        let params = map(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        let (query, sts, sig) = rpc_v1_signature("GET", &params, "testSecret");
        assert_eq!(
            query,
            "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123\
             &PhoneNumbers=15300000001&RegionId=cn-hangzhou\
             &SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8\
             &SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466\
             &SignatureVersion=1.0&TemplateCode=SMS_71390007\
             &TemplateParam=%7B%22customer%22%3A%22test%22%7D\
             &Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
        );
        assert_eq!(
            &sts[..60],
            "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DX"
        );
        assert_eq!(sig, "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
        assert_eq!(pop_encode(&sig), "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D");
    }

    /// A-2 (DOC, with the page's `TimeStamp` spelling) and A-3 (3P, with the
    /// real `Timestamp` name).
    #[test]
    fn rpc_signature_matches_the_generic_rpc_examples() {
        let base = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Version", "2014-05-26"),
        ];
        let mut doc = map(&base);
        doc.insert("TimeStamp".into(), "2016-02-23T12:46:24Z".into());
        assert_eq!(
            rpc_v1_signature("GET", &doc, "testsecret").2,
            "CT9X0VtwR86fNWSnsc6v8YGOjuE="
        );
        let mut fixed = map(&base);
        fixed.insert("Timestamp".into(), "2016-02-23T12:46:24Z".into());
        assert_eq!(
            rpc_v1_signature("GET", &fixed, "testsecret").2,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    /// A-4 (DOC): the V3 worked example (ECS RunInstances, empty body).
    #[test]
    fn acs3_matches_the_v3_documentation_example() {
        let empty = hex::encode(Sha256::digest(b""));
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let headers = map(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-content-sha256", &empty),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-version", "2014-05-26"),
        ]);
        let query = map(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let s = sign_empty_post(&query, &headers, "YourAccessKeyId", "YourAccessKeySecret");
        assert_eq!(
            s.string_to_sign,
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            s.signature,
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        assert_eq!(
            s.authorization,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;\
             x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    /// A-5 (SELF): V3 SendSms with the parameters in the query string.
    #[test]
    fn acs3_send_sms_regression_vector() {
        let empty = hex::encode(Sha256::digest(b""));
        let headers = map(&[
            ("host", "dysmsapi.aliyuncs.com"),
            ("x-acs-action", "SendSms"),
            ("x-acs-content-sha256", &empty),
            ("x-acs-date", "2024-01-01T00:00:00Z"),
            ("x-acs-signature-nonce", "00000000000000000000000000000001"),
            ("x-acs-version", "2017-05-25"),
        ]);
        let query = map(&[
            ("PhoneNumbers", "13800000000"),
            ("SignName", "测试"),
            ("TemplateCode", "SMS_000000"),
            ("TemplateParam", "{\"code\":\"123456\"}"),
        ]);
        let s = sign_empty_post(&query, &headers, "LTAIEXAMPLE", "EXAMPLESECRET");
        assert_eq!(
            s.signature,
            "9966a7c2b73b5c0db2d744e441bede7d52b5f8cd937e89f5d9f84af65b72aa68"
        );
    }

    #[test]
    fn codes_map_to_delivery_classes() {
        assert_eq!(
            classify("isv.BUSINESS_LIMIT_CONTROL"),
            SmsErrorKind::RateLimited
        );
        assert_eq!(classify("Throttling.User"), SmsErrorKind::RateLimited);
        assert_eq!(
            classify("isv.MOBILE_NUMBER_ILLEGAL"),
            SmsErrorKind::RejectedNumber
        );
        assert_eq!(classify("isp.SYSTEM_ERROR"), SmsErrorKind::Transient);
        assert_eq!(classify("SignatureDoesNotMatch"), SmsErrorKind::Config);
        assert_eq!(classify("isv.AMOUNT_NOT_ENOUGH"), SmsErrorKind::Config);
    }
}
