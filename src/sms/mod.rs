//! The SMS port: one trait per vendor client, and the chain that tries them in
//! order, falling over only on transient failures.

pub mod aliyun;
pub mod cloopen;
pub mod http;
pub mod log;
pub mod receipts;
pub mod tencent;
pub mod twilio;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::SharedClock;
use crate::config::{ProviderKind, SmsConfig};
use crate::domain::{Lang, Mobile, Purpose};

/// One verification message to deliver.
pub struct SmsMessage<'a> {
    pub mobile: &'a Mobile,
    pub code: &'a str,
    pub ttl_minutes: u64,
    pub lang: Lang,
    /// Not a code: the enumeration-safe mode's "someone tried to register
    /// your number" notice (`code` is unused). Vendors that send templates
    /// need a `notice` template for it.
    pub notice: bool,
    /// What the code is for: it picks the template.
    pub purpose: Purpose,
    /// A key unique to this send, given to vendors that take one (Aliyun
    /// `OutId`, Tencent `SessionContext`); empty: none.
    pub send_id: &'a str,
}

impl<'a> SmsMessage<'a> {
    /// `text` with this message's code and every spelling of its number
    /// hidden: vendors echo both in answers and error messages, which end up
    /// in logs and on the operator's terminal.
    pub fn scrub(&self, text: &str) -> String {
        let e164 = self.mobile.e164();
        let masked = self.mobile.masked();
        text.replace(self.code, "******")
            .replace(e164, &masked)
            .replace(e164.trim_start_matches('+'), &masked)
            .replace(&self.mobile.display(), &masked)
    }

    /// This message's template among `templates` (`sms.<vendor>.templates`):
    /// `<purpose>_<lang>`, then `<purpose>` (a notice: `notice_<lang>`,
    /// `notice`), else `default` — which a notice cannot use (a code
    /// template would show an empty code), so a notice without a template
    /// of its own is refused as a configuration matter.
    pub fn template<'t>(
        &self,
        templates: &'t BTreeMap<String, String>,
        default: &'t str,
        provider: &'static str,
    ) -> Result<&'t str, SmsError> {
        let what = if self.notice {
            "notice"
        } else {
            self.purpose.as_str()
        };
        let lang = match self.lang {
            Lang::Zh => "zh",
            Lang::En => "en",
        };
        let found = templates
            .get(&format!("{what}_{lang}"))
            .or_else(|| templates.get(what));
        match found {
            Some(t) => Ok(t.as_str()),
            None if !self.notice => Ok(default),
            None => Err(SmsError {
                provider,
                kind: SmsErrorKind::Config,
                detail: "no template for notices (sms.<vendor>.templates.notice)".into(),
            }),
        }
    }

    /// A template vendor's parameters: the code and the minutes, nothing
    /// for a notice.
    pub fn params(&self) -> Vec<String> {
        if self.notice {
            Vec::new()
        } else {
            vec![self.code.to_owned(), self.ttl_minutes.to_string()]
        }
    }

    /// The text for providers that send free text (vendors with templates
    /// send only the code and minutes).
    pub fn text(&self) -> String {
        if self.notice {
            return match self.lang {
                Lang::Zh => "有人尝试用您的手机号注册账号。如果不是您本人操作，请忽略此短信。".to_owned(),
                Lang::En => "Someone tried to sign up with your number. If it was not you, ignore this message.".to_owned(),
            };
        }
        match self.lang {
            Lang::Zh => format!(
                "您的验证码是{}，{}分钟内有效。请勿告诉他人。",
                self.code, self.ttl_minutes
            ),
            Lang::En => format!(
                "Your verification code is {}. It expires in {} minutes. Do not share it.",
                self.code, self.ttl_minutes
            ),
        }
    }
}

/// How a send failed, which decides whether another provider may be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsErrorKind {
    /// Network, timeout, vendor 5xx: worth trying the next provider.
    Transient,
    /// The vendor throttled us or the number.
    RateLimited,
    /// The vendor refused the number itself.
    RejectedNumber,
    /// Credentials, template or account problems: an operator must act.
    Config,
    /// The request left but no answer came (timed out, or cut off): the
    /// vendor may well have accepted it. Treated as sent (SPEC §5): the code
    /// and every limit stay, and no other provider is tried, or a slow
    /// vendor would turn each retry into one more message.
    Unknown,
}

impl SmsErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsErrorKind::Transient => "transient",
            SmsErrorKind::RateLimited => "rate_limited",
            SmsErrorKind::RejectedNumber => "rejected_number",
            SmsErrorKind::Config => "config",
            SmsErrorKind::Unknown => "unknown",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{provider}: {kind:?}: {detail}")]
pub struct SmsError {
    pub provider: &'static str,
    pub kind: SmsErrorKind,
    /// Vendor detail for logs; never holds the code or the whole number.
    pub detail: String,
}

/// What the vendor said when it accepted a message.
#[derive(Debug, Clone)]
pub struct SmsReceipt {
    pub provider: &'static str,
    pub message_id: Option<String>,
    /// The vendor's answer as received (cut short), for `phoneauth sms-test`.
    /// It may echo the number or the text: never log it.
    pub vendor_answer: String,
}

#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError>;
}

/// The configured providers in order: the primary, then each fallback —
/// or, for numbers of a country or prefix of `sms.routes`, that route's.
pub struct SmsChain {
    providers: Vec<Arc<dyn SmsSender>>,
    routes: Vec<Route>,
}

/// One of `sms.routes`, its providers built.
struct Route {
    countries: Vec<String>,
    prefixes: Vec<String>,
    providers: Vec<Arc<dyn SmsSender>>,
}

impl Route {
    fn matches(&self, m: &Mobile) -> bool {
        let digits = m.e164().trim_start_matches('+');
        self.countries.iter().any(|c| c == m.country())
            || self.prefixes.iter().any(|p| digits.starts_with(p.as_str()))
    }
}

impl SmsChain {
    pub fn new(providers: Vec<Arc<dyn SmsSender>>) -> Self {
        Self {
            providers,
            routes: Vec::new(),
        }
    }

    /// The configured providers in order: `sms.provider`, then
    /// `sms.fallback`, and the chains of `sms.routes`; one client and one
    /// instance per vendor.
    pub fn from_config(sms: &SmsConfig, clock: SharedClock) -> Result<Self, String> {
        let client = http::client(
            Duration::from_millis(sms.connect_timeout_ms),
            Duration::from_millis(sms.timeout_ms),
        )
        .map_err(|e| format!("building the SMS HTTP client: {e}"))?;
        let mut built: Vec<(ProviderKind, Arc<dyn SmsSender>)> = Vec::new();
        for kind in sms.providers_in_use() {
            let (client, clock) = (client.clone(), clock.clone());
            let sender: Arc<dyn SmsSender> = match kind {
                ProviderKind::Log => Arc::new(log::LogSender),
                ProviderKind::Cloopen => {
                    Arc::new(cloopen::Cloopen::new(sms.cloopen.clone(), client, clock)?)
                }
                ProviderKind::Aliyun => {
                    Arc::new(aliyun::Aliyun::new(sms.aliyun.clone(), client, clock)?)
                }
                ProviderKind::Tencent => {
                    Arc::new(tencent::Tencent::new(sms.tencent.clone(), client, clock)?)
                }
                ProviderKind::Twilio => Arc::new(twilio::Twilio::new(sms.twilio.clone(), client)?),
            };
            built.push((kind, sender));
        }
        let pick = |kinds: &mut dyn Iterator<Item = ProviderKind>| -> Vec<Arc<dyn SmsSender>> {
            kinds
                .filter_map(|k| built.iter().find(|(b, _)| *b == k).map(|(_, s)| s.clone()))
                .collect()
        };
        let providers = pick(&mut sms.chain());
        let routes = sms
            .routes
            .iter()
            .map(|r| Route {
                countries: r
                    .countries
                    .0
                    .iter()
                    .map(|c| c.to_ascii_uppercase())
                    .collect(),
                prefixes: r
                    .prefixes
                    .0
                    .iter()
                    .map(|p| p.trim_start_matches('+').to_owned())
                    .collect(),
                providers: pick(&mut r.providers.0.iter().copied()),
            })
            .collect();
        Ok(Self { providers, routes })
    }

    /// The chain for `m`: its route's, else the default.
    fn providers_for(&self, m: &Mobile) -> &[Arc<dyn SmsSender>] {
        self.routes
            .iter()
            .find(|r| r.matches(m))
            .map_or(&self.providers, |r| &r.providers)
    }

    /// Tries each provider once, in order, moving on only after a transient
    /// failure: a rejected number or a configuration problem would fail the
    /// same way elsewhere, a vendor that throttles us must not be dodged, and
    /// a send whose outcome is unknown may have been delivered.
    pub async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
        let mut last = None;
        for p in self.providers_for(msg.mobile) {
            let started = std::time::Instant::now();
            match p.send(msg).await {
                Ok(receipt) => {
                    crate::meter::sms_send(p.name(), "ok", started.elapsed());
                    tracing::info!(provider = p.name(), outcome = "ok", mobile = %msg.mobile,
                        latency_ms = started.elapsed().as_millis() as u64, "SMS accepted by the provider");
                    return Ok(receipt);
                }
                Err(mut e) => {
                    // Vendors echo numbers and texts in their errors; the
                    // detail travels on into logs, so scrub it once here.
                    e.detail = msg.scrub(&e.detail);
                    crate::meter::sms_send(e.provider, e.kind.as_str(), started.elapsed());
                    tracing::warn!(provider = e.provider, outcome = e.kind.as_str(), detail = %e.detail,
                        mobile = %msg.mobile, latency_ms = started.elapsed().as_millis() as u64,
                        "SMS provider failed");
                    let transient = e.kind == SmsErrorKind::Transient;
                    last = Some(e);
                    if !transient {
                        break;
                    }
                }
            }
        }
        Err(last.unwrap_or(SmsError {
            provider: "chain",
            kind: SmsErrorKind::Config,
            detail: "no SMS provider configured".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MobilePolicy;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake {
        name: &'static str,
        outcome: Option<SmsErrorKind>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl SmsSender for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn send(&self, _: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self.outcome {
                None => Ok(SmsReceipt {
                    provider: self.name,
                    message_id: None,
                    vendor_answer: String::new(),
                }),
                Some(kind) => Err(SmsError {
                    provider: self.name,
                    kind,
                    detail: "fake".into(),
                }),
            }
        }
    }

    fn fake(name: &'static str, outcome: Option<SmsErrorKind>) -> Arc<Fake> {
        Arc::new(Fake {
            name,
            outcome,
            calls: AtomicUsize::new(0),
        })
    }

    async fn run(chain: &SmsChain) -> Result<SmsReceipt, SmsError> {
        let m = Mobile::parse("13812345678", &MobilePolicy::default()).expect("mobile");
        chain
            .send(&SmsMessage {
                mobile: &m,
                code: "123456",
                ttl_minutes: 5,
                lang: Lang::Zh,
                notice: false,
                purpose: Purpose::Register,
                send_id: "",
            })
            .await
    }

    #[test]
    fn scrub_hides_the_code_and_every_spelling_of_the_number() {
        let m = Mobile::parse("13812345678", &MobilePolicy::default()).expect("mobile");
        let msg = SmsMessage {
            mobile: &m,
            code: "654321",
            ttl_minutes: 5,
            lang: Lang::En,
            notice: false,
            purpose: Purpose::Register,
            send_id: "",
        };
        let out = msg.scrub("To +8613812345678 (8613812345678, 13812345678): code 654321");
        assert_eq!(
            out,
            "To 138****5678 (138****5678, 138****5678): code ******"
        );
    }

    #[tokio::test]
    async fn a_transient_failure_falls_over_to_the_next_provider() {
        let a = fake("a", Some(SmsErrorKind::Transient));
        let b = fake("b", None);
        let chain = SmsChain::new(vec![a.clone(), b.clone()]);
        assert_eq!(run(&chain).await.expect("sent").provider, "b");
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        assert_eq!(b.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unknown_outcome_does_not_try_the_fallback() {
        let a = fake("a", Some(SmsErrorKind::Unknown));
        let b = fake("b", None);
        let chain = SmsChain::new(vec![a.clone(), b.clone()]);
        let err = run(&chain).await.expect_err("unknown");
        assert_eq!(err.kind, SmsErrorKind::Unknown);
        assert_eq!(b.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_rejected_number_does_not_try_the_fallback() {
        let a = fake("a", Some(SmsErrorKind::RejectedNumber));
        let b = fake("b", None);
        let chain = SmsChain::new(vec![a.clone(), b.clone()]);
        let err = run(&chain).await.expect_err("refused");
        assert_eq!(err.kind, SmsErrorKind::RejectedNumber);
        assert_eq!(b.calls.load(Ordering::SeqCst), 0);
    }
}
