//! Delivery receipts (SPEC §10): each vendor's status callback, verified
//! before anything in it is believed, read into [`Receipt`]s.
//!
//! - Twilio signs its callbacks: `X-Twilio-Signature` is the Base64
//!   HMAC-SHA1, under the account's auth token, of the callback URL followed
//!   by every form field, sorted by name, as name then value. The URL is
//!   the one phoneauth gave with the message (`sms.twilio.status_callback`).
//! - Aliyun (SmsReport, HTTP batch push) and Tencent (短信状态回调) document
//!   no signature on their status pushes. phoneauth requires the secret
//!   `sms.<vendor>.callback_token` in the callback URL the operator
//!   registers (`/hooks/sms/aliyun?token=…`), compared in constant time.
//! - Cloopen's status push is not taken: its format is not published in a
//!   form phoneauth can check.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::config::{ProviderKind, SmsConfig};

/// What a receipt says of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    Failed,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The vendor's id of the message, as its send answered it.
    pub message_id: String,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("receipts of this provider are not configured")]
    NotConfigured,
    #[error("the callback carries no signature or token")]
    Unsigned,
    #[error("the callback's signature or token is wrong")]
    Forged,
    #[error("the callback's body cannot be read")]
    Malformed,
}

impl ReceiptError {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReceiptError::NotConfigured => "not_configured",
            ReceiptError::Unsigned => "unsigned",
            ReceiptError::Forged => "forged",
            ReceiptError::Malformed => "malformed",
        }
    }
}

/// A status callback as it arrived.
pub struct Callback<'a> {
    /// `X-Twilio-Signature`, when present.
    pub twilio_signature: Option<&'a str>,
    /// The `token` query parameter, when present.
    pub token: Option<&'a str>,
    pub body: &'a [u8],
}

/// Verifies a callback of `provider` and reads its receipts. Statuses that
/// are not final (queued, sent, accepted) are left out.
pub fn read(
    provider: ProviderKind,
    cfg: &SmsConfig,
    cb: &Callback<'_>,
) -> Result<Vec<Receipt>, ReceiptError> {
    match provider {
        ProviderKind::Twilio => {
            let url = &cfg.twilio.status_callback;
            let token = cfg.twilio.auth_token.expose();
            if url.is_empty() || token.is_empty() {
                return Err(ReceiptError::NotConfigured);
            }
            let given = cb.twilio_signature.ok_or(ReceiptError::Unsigned)?;
            let fields: Vec<(String, String)> =
                url::form_urlencoded::parse(cb.body).into_owned().collect();
            let want = twilio_signature(token, url, &fields);
            if !bool::from(want.as_bytes().ct_eq(given.trim().as_bytes())) {
                return Err(ReceiptError::Forged);
            }
            Ok(twilio_receipts(&fields))
        }
        ProviderKind::Aliyun => {
            check_token(cfg.aliyun.callback_token.expose(), cb.token)?;
            json_receipts(cb.body, "biz_id", |r| match r["success"].as_bool() {
                Some(true) => Some(Delivery::Delivered),
                Some(false) => Some(Delivery::Failed),
                None => None,
            })
        }
        ProviderKind::Tencent => {
            check_token(cfg.tencent.callback_token.expose(), cb.token)?;
            json_receipts(cb.body, "sid", |r| match r["report_status"].as_str() {
                Some("SUCCESS") => Some(Delivery::Delivered),
                Some("FAIL") => Some(Delivery::Failed),
                _ => None,
            })
        }
        ProviderKind::Cloopen | ProviderKind::Log => Err(ReceiptError::NotConfigured),
    }
}

/// Twilio's request signature of `url` and form `fields`.
pub fn twilio_signature(token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn twilio_receipts(fields: &[(String, String)]) -> Vec<Receipt> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let delivery = match field("MessageStatus") {
        Some("delivered") => Delivery::Delivered,
        Some("undelivered" | "failed") => Delivery::Failed,
        _ => return Vec::new(),
    };
    field("MessageSid")
        .map(|sid| Receipt {
            message_id: sid.to_owned(),
            delivery,
        })
        .into_iter()
        .collect()
}

/// Whether `provider`'s receipts can arrive at all (what [`read`] refuses
/// as `NotConfigured` otherwise): only then is a send worth recording.
pub fn configured(provider: ProviderKind, cfg: &SmsConfig) -> bool {
    match provider {
        ProviderKind::Twilio => {
            !cfg.twilio.status_callback.is_empty() && !cfg.twilio.auth_token.expose().is_empty()
        }
        ProviderKind::Aliyun => !cfg.aliyun.callback_token.expose().is_empty(),
        ProviderKind::Tencent => !cfg.tencent.callback_token.expose().is_empty(),
        ProviderKind::Cloopen | ProviderKind::Log => false,
    }
}

fn check_token(want: &str, given: Option<&str>) -> Result<(), ReceiptError> {
    if want.is_empty() {
        return Err(ReceiptError::NotConfigured);
    }
    let given = given.ok_or(ReceiptError::Unsigned)?;
    if bool::from(want.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(ReceiptError::Forged)
    }
}

/// A JSON array of reports, each with its message id under `id` and a
/// status that `status` reads.
fn json_receipts(
    body: &[u8],
    id: &str,
    status: impl Fn(&serde_json::Value) -> Option<Delivery>,
) -> Result<Vec<Receipt>, ReceiptError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| ReceiptError::Malformed)?;
    let reports = v.as_array().ok_or(ReceiptError::Malformed)?;
    Ok(reports
        .iter()
        .filter_map(|r| {
            let message_id = r[id].as_str()?.to_owned();
            Some(Receipt {
                message_id,
                delivery: status(r)?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// W-2 and W-3 of sms-providers.md (twilio-python's validator tests).
    #[test]
    fn twilio_signatures_match_the_published_vectors() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let w2 = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]);
        assert_eq!(
            twilio_signature("12345", url, &w2),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let w3 = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            twilio_signature("12345", url, &w3),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    fn config() -> SmsConfig {
        let mut c = SmsConfig::default();
        c.twilio.auth_token = "12345".into();
        c.twilio.status_callback = "https://auth.example.com/hooks/sms/twilio".into();
        c.aliyun.callback_token = "aliyun-token".into();
        c
    }

    #[test]
    fn a_signed_twilio_callback_is_read_and_a_forged_one_refused() {
        let c = config();
        let body = b"MessageSid=SM123&MessageStatus=delivered&To=%2B15005550006";
        let fields: Vec<(String, String)> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let sig = twilio_signature("12345", &c.twilio.status_callback, &fields);
        let cb = |s: Option<&'static str>, body: &'static [u8]| Callback {
            twilio_signature: s,
            token: None,
            body,
        };
        let signed = Callback {
            twilio_signature: Some(&sig),
            token: None,
            body,
        };
        let got = read(ProviderKind::Twilio, &c, &signed).expect("signed");
        assert_eq!(
            got,
            vec![Receipt {
                message_id: "SM123".into(),
                delivery: Delivery::Delivered
            }]
        );
        assert_eq!(
            read(ProviderKind::Twilio, &c, &cb(None, body)),
            Err(ReceiptError::Unsigned)
        );
        let tampered = b"MessageSid=SM123&MessageStatus=failed&To=%2B15005550006";
        let forged = Callback {
            twilio_signature: Some(&sig),
            token: None,
            body: tampered,
        };
        assert_eq!(
            read(ProviderKind::Twilio, &c, &forged),
            Err(ReceiptError::Forged)
        );
    }

    #[test]
    fn aliyun_and_tencent_reports_need_the_token() {
        let c = config();
        let body =
            br#"[{"biz_id":"B1","success":true},{"biz_id":"B2","success":false},{"success":true}]"#;
        let ok = Callback {
            twilio_signature: None,
            token: Some("aliyun-token"),
            body,
        };
        let got = read(ProviderKind::Aliyun, &c, &ok).expect("read");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].delivery, Delivery::Failed);
        let wrong = Callback {
            token: Some("guess"),
            ..ok
        };
        assert_eq!(
            read(ProviderKind::Aliyun, &c, &wrong),
            Err(ReceiptError::Forged)
        );
        let tencent = Callback {
            twilio_signature: None,
            token: Some("x"),
            body: b"[]",
        };
        assert_eq!(
            read(ProviderKind::Tencent, &c, &tencent),
            Err(ReceiptError::NotConfigured)
        );
        let garbage = Callback {
            twilio_signature: None,
            token: Some("aliyun-token"),
            body: b"{",
        };
        assert_eq!(
            read(ProviderKind::Aliyun, &c, &garbage),
            Err(ReceiptError::Malformed)
        );
    }
}
