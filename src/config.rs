//! Configuration: built-in defaults, then a TOML file, then `PHONEAUTH_…`
//! environment variables (`__` nests: `PHONEAUTH_SMS__PROVIDER`). `DATABASE_URL`
//! and `REDIS_URL` sit just above the defaults, so any explicit key wins.
//! Every key, its default and its env name are documented in
//! `config.example.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// File read when `--config` is not given and it exists.
pub const DEFAULT_FILE: &str = "phoneauth.toml";

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub database: DatabaseConfig,
    pub sms: SmsConfig,
    pub captcha: CaptchaConfig,
    pub limits: LimitsConfig,
    pub password: PasswordConfig,
    /// Sessions (`[sessions]`; the earlier name `[session]` is still read).
    #[serde(alias = "session")]
    pub sessions: SessionConfig,
    pub phone: PhoneConfig,
    pub csrf: CsrfConfig,
    pub compat: CompatConfig,
    pub web: WebConfig,
    pub accounts: AccountsConfig,
    pub avatars: AvatarsConfig,
    pub defence: DefenceConfig,
    pub audit: AuditConfig,
    pub admin: AdminConfig,
    pub tokens: TokensConfig,
    pub webhooks: WebhooksConfig,
    pub dev: DevConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: AdminListen,
    pub trusted_proxies: CidrList,
    pub secure_cookies: bool,
    /// Hex, at least 32 bytes. Empty: embedded mode keeps a generated one in
    /// `phoneauth.secret` beside the SQLite file.
    pub secret: Secret,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// After SIGTERM/SIGINT, how long in-flight requests may take before the
    /// process exits anyway.
    pub shutdown_grace_secs: u64,
    /// A request's header must arrive within this long of the connection
    /// waiting for it.
    pub header_timeout: Seconds,
    /// A request's whole body must arrive within this long.
    pub body_timeout: Seconds,
    /// A keep-alive connection with no request in flight closes after this.
    pub idle_timeout: Seconds,
    /// What one request may spend waiting on the store and the database, all
    /// steps together; past it the request answers DBERR (`crate::budget`).
    pub backend_deadline: Seconds,
    /// Open connections at once; 0: derived from the open-file limit.
    pub max_connections: usize,
    /// Open connections at once from one address (trusted proxies are
    /// exempt); 0: a quarter of `max_connections`, between 8 and 256.
    pub max_connections_per_ip: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            admin_listen: AdminListen(Some(SocketAddr::from(([127, 0, 0, 1], 9100)))),
            trusted_proxies: CidrList::default(),
            secure_cookies: false,
            secret: Secret::default(),
            max_body_bytes: 16 * 1024,
            shutdown_grace_secs: 20,
            header_timeout: Seconds::secs(10),
            body_timeout: Seconds::secs(10),
            idle_timeout: Seconds::secs(60),
            backend_deadline: Seconds(std::time::Duration::from_millis(1_800)),
            max_connections: 0,
            max_connections_per_ip: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub url: String,
    /// Size bound of the embedded store, in MiB.
    pub memory_max_mb: usize,
    /// Prefix of every Redis key, so several deployments can share a Redis.
    pub key_prefix: String,
    pub connect_timeout_ms: u64,
    /// Bound on one store operation; past it the request answers DBERR.
    pub timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "memory://".into(),
            memory_max_mb: 256,
            key_prefix: "phoneauth:".into(),
            connect_timeout_ms: 2_000,
            timeout_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    /// PostgreSQL pool size per instance (SQLite uses a small fixed pool).
    pub max_connections: u32,
    /// How long a request waits for a database connection before DBERR.
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://phoneauth.db".into(),
            max_connections: 10,
            acquire_timeout_ms: 3_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    pub provider: ProviderKind,
    pub fallback: List<ProviderKind>,
    pub code_ttl_secs: u64,
    pub max_guesses: u32,
    /// Bound on connecting to a vendor.
    pub connect_timeout_ms: u64,
    /// Bound on one whole vendor call.
    pub timeout_ms: u64,
    pub cloopen: CloopenConfig,
    pub aliyun: AliyunConfig,
    pub tencent: TencentConfig,
    pub twilio: TwilioConfig,
    /// Numbers with a fixed code, never sent to a vendor (SPEC §10).
    pub test_numbers: Vec<TestNumber>,
    /// Test numbers beside a real provider (refused at start otherwise).
    pub allow_test_numbers_in_production: bool,
    /// Numbers of these countries or prefixes go through their own chain.
    pub routes: Vec<SmsRoute>,
}

/// `[[sms.routes]]`: numbers of `countries` (ISO alpha-2) or `prefixes`
/// (E.164 digits) are sent through `providers`, in order, with failover.
/// The first route that matches wins; other numbers take `sms.provider`
/// and `sms.fallback`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsRoute {
    #[serde(default)]
    pub countries: StringList,
    #[serde(default)]
    pub prefixes: StringList,
    pub providers: List<ProviderKind>,
}

/// `[[sms.test_numbers]]`: a number whose code is fixed until `expires`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestNumber {
    pub mobile: String,
    pub code: Secret,
    /// The last day it works, `2027-06-30` (a TOML date or a string).
    pub expires: TomlDate,
}

/// A day written as a TOML date (`2027-06-30`) or as the string
/// `"2027-06-30"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TomlDate(pub time::Date);

impl Serialize for TomlDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for TomlDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )
    }
}

impl<'de> Deserialize<'de> for TomlDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Toml(toml::value::Datetime),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(t) => t,
            Raw::Toml(dt) => dt.to_string(),
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(text.trim(), &format)
            .map(TomlDate)
            .map_err(|_| {
                serde::de::Error::custom(format!("{text:?} is not a date like 2027-06-30"))
            })
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Log,
            fallback: List::default(),
            code_ttl_secs: 300,
            max_guesses: 5,
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            cloopen: CloopenConfig::default(),
            aliyun: AliyunConfig::default(),
            tencent: TencentConfig::default(),
            twilio: TwilioConfig::default(),
            test_numbers: Vec::new(),
            allow_test_numbers_in_production: false,
            routes: Vec::new(),
        }
    }
}

/// The SMS providers phoneauth can send through (`sms.provider`,
/// `sms.fallback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Development only: writes the message to the log.
    Log,
    Cloopen,
    Aliyun,
    Tencent,
    Twilio,
}

impl ProviderKind {
    pub const fn name(self) -> &'static str {
        match self {
            ProviderKind::Log => "log",
            ProviderKind::Cloopen => "cloopen",
            ProviderKind::Aliyun => "aliyun",
            ProviderKind::Tencent => "tencent",
            ProviderKind::Twilio => "twilio",
        }
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        from_name(s)
    }
}

impl std::str::FromStr for RouteSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        from_name(s)
    }
}

/// A name as the configuration spells it, read with serde's rules.
fn from_name<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de).map_err(|e| e.to_string())
}

/// `provider == "log"`: compare with the name as configured.
impl PartialEq<&str> for ProviderKind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl SmsConfig {
    /// The configured providers in order: `sms.provider`, then `sms.fallback`.
    pub fn chain(&self) -> impl Iterator<Item = ProviderKind> + '_ {
        std::iter::once(self.provider).chain(self.fallback.0.iter().copied())
    }

    /// Every provider some number may be sent through: the chain's and the
    /// routes', each once.
    pub fn providers_in_use(&self) -> Vec<ProviderKind> {
        let mut all: Vec<ProviderKind> = Vec::new();
        let routed = self
            .routes
            .iter()
            .flat_map(|r| r.providers.0.iter().copied());
        for kind in self.chain().chain(routed) {
            if !all.contains(&kind) {
                all.push(kind);
            }
        }
        all
    }

    /// The purposes and languages a template vendor in use sends with its
    /// default template, and the notices it cannot send: what
    /// `check-config` names.
    pub fn template_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for kind in self.providers_in_use() {
            let templates = match kind {
                ProviderKind::Cloopen => &self.cloopen.templates,
                ProviderKind::Aliyun => &self.aliyun.templates,
                ProviderKind::Tencent => &self.tencent.templates,
                ProviderKind::Twilio => &self.twilio.templates,
                ProviderKind::Log => continue,
            };
            let mut defaulted = Vec::new();
            for purpose in crate::domain::Purpose::ALL {
                for lang in ["zh", "en"] {
                    let p = purpose.as_str();
                    if !templates.contains_key(&format!("{p}_{lang}")) && !templates.contains_key(p)
                    {
                        defaulted.push(format!("{p}/{lang}"));
                    }
                }
            }
            let name = kind.name();
            if !defaulted.is_empty() {
                notes.push(format!(
                    "sms.{name}: no template of its own for {}; the default template is used",
                    defaulted.join(", ")
                ));
            }
            let notice = ["notice", "notice_zh", "notice_en"]
                .iter()
                .any(|k| templates.contains_key(*k));
            if kind != ProviderKind::Twilio && !notice {
                notes.push(format!(
                    "sms.{name}: no template for notice; the taken-number notice of accounts.hide_registered is not sent"
                ));
            }
        }
        notes
    }

    /// The keys a vendor needs that are not set (none for `log`).
    fn missing_keys(&self, kind: ProviderKind) -> Vec<&'static str> {
        match kind {
            ProviderKind::Log => Vec::new(),
            ProviderKind::Cloopen => self.cloopen.missing_keys(),
            ProviderKind::Aliyun => self.aliyun.missing_keys(),
            ProviderKind::Tencent => self.tencent.missing_keys(),
            ProviderKind::Twilio => self.twilio.missing_keys(),
        }
    }

    fn base_url(&self, kind: ProviderKind) -> Option<&str> {
        match kind {
            ProviderKind::Log => None,
            ProviderKind::Cloopen => Some(&self.cloopen.base_url),
            ProviderKind::Aliyun => Some(&self.aliyun.base_url),
            ProviderKind::Tencent => Some(&self.tencent.base_url),
            ProviderKind::Twilio => Some(&self.twilio.base_url),
        }
    }
}

/// The names of the keys whose `empty` flag is set.
fn missing(keys: &[(&'static str, bool)]) -> Vec<&'static str> {
    keys.iter()
        .filter(|(_, empty)| *empty)
        .map(|(k, _)| *k)
        .collect()
}

/// Ronglian / Cloopen (容联云通讯), REST 2013-12-26 TemplateSMS.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloopenConfig {
    pub base_url: String,
    #[serde(deserialize_with = "lenient")]
    pub account_sid: String,
    pub auth_token: Secret,
    #[serde(deserialize_with = "lenient")]
    pub app_id: String,
    #[serde(deserialize_with = "lenient")]
    pub template_id: String,
    /// Templates per purpose and language; `template_id` for the rest.
    pub templates: BTreeMap<String, String>,
}

impl CloopenConfig {
    fn missing_keys(&self) -> Vec<&'static str> {
        missing(&[
            ("account_sid", self.account_sid.is_empty()),
            ("auth_token", self.auth_token.is_empty()),
            ("app_id", self.app_id.is_empty()),
            ("template_id", self.template_id.is_empty()),
        ])
    }
}

impl Default for CloopenConfig {
    fn default() -> Self {
        Self {
            base_url: "https://app.cloopen.com:8883".into(),
            account_sid: String::new(),
            auth_token: Secret::default(),
            app_id: String::new(),
            template_id: String::new(),
            templates: BTreeMap::new(),
        }
    }
}

/// Alibaba Cloud SMS (dysmsapi 2017-05-25 SendSms), ACS3-HMAC-SHA256.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AliyunConfig {
    pub base_url: String,
    #[serde(deserialize_with = "lenient")]
    pub access_key_id: String,
    pub access_key_secret: Secret,
    #[serde(deserialize_with = "lenient")]
    pub sign_name: String,
    #[serde(deserialize_with = "lenient")]
    pub template_code: String,
    /// Templates per purpose and language (`login`, `reset_en`, `notice`…);
    /// `template_code` for the rest.
    pub templates: BTreeMap<String, String>,
    /// The secret `?token=` of the SmsReport callback URL (Aliyun does not
    /// sign its status pushes); empty: receipts are refused.
    pub callback_token: Secret,
}

impl AliyunConfig {
    fn missing_keys(&self) -> Vec<&'static str> {
        missing(&[
            ("access_key_id", self.access_key_id.is_empty()),
            ("access_key_secret", self.access_key_secret.is_empty()),
            ("sign_name", self.sign_name.is_empty()),
            ("template_code", self.template_code.is_empty()),
        ])
    }
}

impl Default for AliyunConfig {
    fn default() -> Self {
        Self {
            base_url: "https://dysmsapi.aliyuncs.com".into(),
            access_key_id: String::new(),
            access_key_secret: Secret::default(),
            sign_name: String::new(),
            template_code: String::new(),
            templates: BTreeMap::new(),
            callback_token: Secret::default(),
        }
    }
}

/// Tencent Cloud SMS (API 2021-01-11 SendSms), TC3-HMAC-SHA256.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TencentConfig {
    pub base_url: String,
    #[serde(deserialize_with = "lenient")]
    pub secret_id: String,
    pub secret_key: Secret,
    #[serde(deserialize_with = "lenient")]
    pub sdk_app_id: String,
    #[serde(deserialize_with = "lenient")]
    pub sign_name: String,
    #[serde(deserialize_with = "lenient")]
    pub template_id: String,
    #[serde(deserialize_with = "lenient")]
    pub region: String,
    /// Templates per purpose and language; `template_id` for the rest.
    pub templates: BTreeMap<String, String>,
    /// The secret `?token=` of the status callback URL (Tencent does not
    /// sign its status pushes); empty: receipts are refused.
    pub callback_token: Secret,
}

impl TencentConfig {
    fn missing_keys(&self) -> Vec<&'static str> {
        missing(&[
            ("secret_id", self.secret_id.is_empty()),
            ("secret_key", self.secret_key.is_empty()),
            ("sdk_app_id", self.sdk_app_id.is_empty()),
            ("sign_name", self.sign_name.is_empty()),
            ("template_id", self.template_id.is_empty()),
            ("region", self.region.is_empty()),
        ])
    }
}

impl Default for TencentConfig {
    fn default() -> Self {
        Self {
            base_url: "https://sms.tencentcloudapi.com".into(),
            secret_id: String::new(),
            secret_key: Secret::default(),
            sdk_app_id: String::new(),
            sign_name: String::new(),
            template_id: String::new(),
            region: "ap-guangzhou".into(),
            templates: BTreeMap::new(),
            callback_token: Secret::default(),
        }
    }
}

/// Twilio Programmable Messaging (Messages API 2010-04-01).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    pub base_url: String,
    #[serde(deserialize_with = "lenient")]
    pub account_sid: String,
    pub auth_token: Secret,
    /// Sender number or id; or set `messaging_service_sid` instead.
    #[serde(deserialize_with = "lenient")]
    pub from: String,
    #[serde(deserialize_with = "lenient")]
    pub messaging_service_sid: String,
    /// Message text; `{code}` and `{minutes}` are filled in.
    pub template_zh: String,
    pub template_en: String,
    /// Texts per purpose and language (`login_zh`, `reset`, `notice_en`…);
    /// `template_zh`/`template_en` for the rest.
    pub templates: BTreeMap<String, String>,
    /// When set, the text ends with the WebOTP line `@<domain> #<code>`, so
    /// browsers on that site can offer to fill the code in.
    pub webotp_domain: String,
    /// The public URL of `/hooks/sms/twilio`, sent as each message's
    /// `StatusCallback` and checked in Twilio's signatures; empty: no
    /// receipts.
    pub status_callback: String,
}

impl TwilioConfig {
    fn missing_keys(&self) -> Vec<&'static str> {
        missing(&[
            ("account_sid", self.account_sid.is_empty()),
            ("auth_token", self.auth_token.is_empty()),
            (
                "from",
                self.from.is_empty() && self.messaging_service_sid.is_empty(),
            ),
        ])
    }
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: Secret::default(),
            from: String::new(),
            messaging_service_sid: String::new(),
            template_zh: "您的验证码是{code}，{minutes}分钟内有效。请勿告诉他人。".into(),
            template_en: "Your verification code is {code}. It expires in {minutes} minutes."
                .into(),
            webotp_domain: String::new(),
            status_callback: String::new(),
            templates: BTreeMap::new(),
        }
    }
}

/// A string that may arrive as a number (an environment variable of digits
/// is parsed as one; template and app ids often are digits).
fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Secret::deserialize(d).map(|s| s.0)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptchaConfig {
    pub ttl_secs: u64,
}

impl Default for CaptchaConfig {
    fn default() -> Self {
        Self { ttl_secs: 300 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub captcha_per_ip_per_minute: u64,
    pub sms_requests_per_ip_per_minute: u64,
    pub sms_sent_per_ip_per_hour: u64,
    pub sms_cooldown_secs: u64,
    pub sms_per_mobile_per_day: u64,
    pub sms_budget_per_day: u64,
    /// Failed logins per mobile number in the window.
    pub login_failures: u64,
    /// Failed logins per client address in the window (generous: carrier-grade
    /// NAT puts thousands behind one address).
    pub login_failures_per_ip: u64,
    pub login_window_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            captcha_per_ip_per_minute: 60,
            sms_requests_per_ip_per_minute: 30,
            sms_sent_per_ip_per_hour: 20,
            sms_cooldown_secs: 60,
            sms_per_mobile_per_day: 10,
            sms_budget_per_day: 10_000,
            login_failures: 5,
            login_failures_per_ip: 50,
            login_window_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    pub min_len: usize,
    pub max_len: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashes computed at once; 0 means one per CPU core.
    pub max_concurrent_hashes: usize,
    /// How long a request waits for a hashing slot before it is refused.
    pub queue_timeout_ms: u64,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_len: 8,
            max_len: 128,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 0,
            queue_timeout_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub ttl_secs: u64,
    /// Live sessions one user may hold; a new one ends the oldest.
    pub max_per_user: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 86_400,
            max_per_user: 10,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhoneConfig {
    /// Regions accepted besides CN, e.g. `HK,MO`.
    pub allowed_regions: StringList,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsrfConfig {
    pub require_token: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompatConfig {
    pub routes: List<RouteSet>,
    pub steps_require_captcha: bool,
    /// Steps 3 and 4 must present step 2's `step_token`.
    pub steps_require_token: bool,
}

impl Default for CompatConfig {
    fn default() -> Self {
        Self {
            routes: List(vec![RouteSet::Ihome]),
            steps_require_captcha: false,
            steps_require_token: false,
        }
    }
}

/// A route set of SPEC §3-4 (`compat.routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSet {
    /// The canonical API; always served.
    Ihome,
    Passport,
    Validate,
    Steps,
}

impl RouteSet {
    pub fn name(self) -> &'static str {
        match self {
            RouteSet::Ihome => "ihome",
            RouteSet::Passport => "passport",
            RouteSet::Validate => "validate",
            RouteSet::Steps => "steps",
        }
    }
}

/// `set == "steps"`: compare with the name as configured.
impl PartialEq<&str> for RouteSet {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    pub static_dir: Option<PathBuf>,
    pub pages_dir: Option<PathBuf>,
}

/// The life of an account (SPEC §9).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// A `login` code for a number without an account creates one.
    pub sign_up_by_code: bool,
    /// Code requests answer alike whether or not a number has an account.
    pub hide_registered: bool,
}

/// Adaptive anti-pumping and the lists (SPEC §10).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefenceConfig {
    pub mode: DefenceMode,
    /// Unverified sends an hour a prefix (E.164 less its last 4 digits) may
    /// have whatever its history…
    pub prefix_floor: u64,
    /// …and a country.
    pub country_floor: u64,
    /// Besides the floor, this share of the scope's codes verified today
    /// may go unverified in an hour: busy, healthy scopes get room.
    pub ratio: f64,
    /// The first block of a scope; each repeat within a day doubles it.
    pub block_initial_secs: u64,
    pub block_max_secs: u64,
    /// How often each instance looks for changed lists.
    pub list_refresh_ms: u64,
}

impl Default for DefenceConfig {
    fn default() -> Self {
        Self {
            mode: DefenceMode::Enforce,
            prefix_floor: 20,
            country_floor: 500,
            ratio: 0.5,
            block_initial_secs: 15 * 60,
            block_max_secs: 12 * 3600,
            list_refresh_ms: 2_000,
        }
    }
}

/// `defence.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefenceMode {
    Off,
    /// Counts what it would refuse, refuses nothing.
    Shadow,
    Enforce,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 180,
        }
    }
}

/// Signed webhooks of the audit events (SPEC §11, Standard Webhooks).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    pub endpoints: Vec<WebhookEndpoint>,
    /// The first retry's delay; each failure doubles it (at most an hour),
    /// for 24 hours.
    pub retry_initial_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            retry_initial_ms: 5_000,
        }
    }
}

/// `[[webhooks.endpoints]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    pub url: String,
    /// `whsec_<base64>`, as Standard Webhooks writes it.
    pub secret: Secret,
    /// Audit event names; `"*"` for all.
    pub events: StringList,
}

impl WebhookEndpoint {
    /// The key the secret names.
    pub fn key(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        let b64 = self.secret.expose().strip_prefix("whsec_")?;
        let key = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        (!key.is_empty()).then_some(key)
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events.0.iter().any(|e| e == "*" || e == event)
    }
}

/// Short-lived JWTs for the site's other services (SPEC §11).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// `iss`; empty: the public base URL the request came to.
    pub issuer: String,
    pub audience: String,
    /// At most 900 (15 minutes).
    pub ttl_secs: u64,
    /// A signing key older than this is replaced.
    pub rotate_hours: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: "phoneauth".into(),
            ttl_secs: 900,
            rotate_hours: 168,
        }
    }
}

/// The admin API (SPEC §10), on `server.admin_listen` only.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The bearer token; unset, every admin call is refused.
    pub token: Secret,
}

/// Where avatars are kept (SPEC §9).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AvatarsConfig {
    /// `file://<dir>` (unset: `avatars` beside the SQLite database, or in
    /// the working directory) or `s3://bucket/prefix`.
    pub store: String,
    /// The base of `avatar_url`: `/avatars/` for a file store; the bucket's
    /// public address for S3 (required there).
    pub public_url: String,
    pub max_bytes: usize,
    /// S3: the endpoint (empty: AWS), the region and the keys.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

impl Default for AvatarsConfig {
    fn default() -> Self {
        Self {
            store: String::new(),
            public_url: String::new(),
            max_bytes: 5 * 1024 * 1024,
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevConfig {
    pub expose_secrets: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `phoneauth=debug`; `RUST_LOG` wins.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `server.admin_listen`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminListen(pub Option<SocketAddr>);

impl<'de> Deserialize<'de> for AdminListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().eq_ignore_ascii_case("off") || s.trim().is_empty() {
            return Ok(Self(None));
        }
        s.trim()
            .parse()
            .map(|a| Self(Some(a)))
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an address or `off`")))
    }
}

impl Serialize for AdminListen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str("off"),
        }
    }
}

/// A list written either as a TOML array or as one comma-separated string
/// (the only form an environment variable has).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(d)? {
            Raw::One(s) => s.split(',').map(str::to_owned).collect(),
            Raw::Many(v) => v,
        };
        Ok(Self(
            items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    }
}

/// A list of names of a kind (route sets, providers), written like a
/// [`StringList`]; each name must be one the kind knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::IntoDeserializer;
        let names = StringList::deserialize(d)?;
        names
            .0
            .into_iter()
            .map(|name| {
                let de: serde::de::value::StringDeserializer<D::Error> = name.into_deserializer();
                T::deserialize(de)
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// CIDRs; a bare address means that one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<IpNet>);

impl<'de> Deserialize<'de> for CidrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = StringList::deserialize(d)?;
        list.0
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a CIDR")))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl Serialize for CidrList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// `PHONEAUTH_<SECTION>__<KEY>` variables, each value kept as the string it
/// is. figment's own `Env` guesses types, which turns `+15005550006` into a
/// number and `0123` into `123`; here the key's type decides, at extraction.
struct StringEnv {
    inner: Env,
}

impl StringEnv {
    fn prefixed(prefix: &'static str) -> Self {
        Self {
            inner: Env::prefixed(prefix).split("__"),
        }
    }
}

impl figment::Provider for StringEnv {
    fn metadata(&self) -> figment::Metadata {
        self.inner.metadata()
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = figment::value::Dict::new();
        for (key, value) in self.inner.iter() {
            let nested = figment::util::nest(key.as_str(), figment::value::Value::from(value));
            if let Some(d) = nested.into_dict() {
                merge_into(&mut dict, d);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Adds `from` to `into`, nested tables merged key by key.
fn merge_into(into: &mut figment::value::Dict, from: figment::value::Dict) {
    use figment::value::Value;
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, nested)) => {
                merge_into(existing, nested);
            }
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// A duration written as whole seconds (`10`) or with a unit (`10s`,
/// `500ms`, `2m`); printed with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub std::time::Duration);

impl Seconds {
    pub const fn secs(n: u64) -> Self {
        Self(std::time::Duration::from_secs(n))
    }

    fn parse(s: &str) -> Option<std::time::Duration> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().ok()?;
        let ms = match unit.trim() {
            "" | "s" => n.checked_mul(1_000)?,
            "ms" => n,
            "m" | "min" => n.checked_mul(60_000)?,
            "h" => n.checked_mul(3_600_000)?,
            _ => return None,
        };
        Some(std::time::Duration::from_millis(ms))
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Self::secs(n)),
            Raw::S(s) => Self::parse(&s).map(Self).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a duration (seconds, or a number with s, ms, m or h)"
                ))
            }),
        }
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1_000) {
            s.serialize_str(&format!("{}s", ms / 1_000))
        } else {
            s.serialize_str(&format!("{ms}ms"))
        }
    }
}

/// A credential. Prints and serialises as `<redacted>` when set. Numbers are
/// accepted too, because an environment variable of digits arrives as one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            U(u64),
            I(i64),
        }
        Ok(Self(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::U(n) => n.to_string(),
            Raw::I(n) => n.to_string(),
        }))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", describe(.0))]
    Figment(#[from] Box<figment::Error>),
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Loads the layers. `file`: the `--config` path; without it
    /// `phoneauth.toml` is read when present.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // Lossy: every environment value arrives as a string (see
        // [`StringEnv`]) and becomes a number or a boolean only where the key
        // is one; string keys keep exactly what was written.
        Self::figment(file)?
            .extract_lossy::<Config>()
            .map_err(|e| ConfigError::Figment(Box::new(e)))
            .and_then(|c| c.validated())
    }

    pub fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut fig = Figment::new()
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "store.url".into()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => fig = fig.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_FILE).exists() => fig = fig.merge(Toml::file(DEFAULT_FILE)),
            None => {}
        }
        Ok(fig.merge(StringEnv::prefixed("PHONEAUTH_")))
    }

    /// Checks what types alone cannot; every message names its key.
    pub fn validated(self) -> Result<Self, ConfigError> {
        let mut errs = Vec::new();
        let mut zero = Vec::new();
        let mut positive = |key: &'static str, v: u64| {
            if v == 0 {
                zero.push(key);
            }
        };
        let l = &self.limits;
        positive(
            "limits.captcha_per_ip_per_minute",
            l.captcha_per_ip_per_minute,
        );
        positive(
            "limits.sms_requests_per_ip_per_minute",
            l.sms_requests_per_ip_per_minute,
        );
        positive(
            "limits.sms_sent_per_ip_per_hour",
            l.sms_sent_per_ip_per_hour,
        );
        positive("limits.sms_per_mobile_per_day", l.sms_per_mobile_per_day);
        positive("limits.sms_budget_per_day", l.sms_budget_per_day);
        positive("limits.login_failures", l.login_failures);
        positive("limits.login_failures_per_ip", l.login_failures_per_ip);
        positive("limits.login_window_secs", l.login_window_secs);
        positive("sms.code_ttl_secs", self.sms.code_ttl_secs);
        positive("sms.max_guesses", u64::from(self.sms.max_guesses));
        positive("sms.connect_timeout_ms", self.sms.connect_timeout_ms);
        positive("sms.timeout_ms", self.sms.timeout_ms);
        positive("captcha.ttl_secs", self.captcha.ttl_secs);
        positive("sessions.ttl_secs", self.sessions.ttl_secs);
        positive(
            "sessions.max_per_user",
            u64::from(self.sessions.max_per_user),
        );
        positive(
            "server.header_timeout",
            self.server.header_timeout.0.as_millis() as u64,
        );
        positive(
            "server.body_timeout",
            self.server.body_timeout.0.as_millis() as u64,
        );
        positive(
            "server.idle_timeout",
            self.server.idle_timeout.0.as_millis() as u64,
        );
        positive("store.memory_max_mb", self.store.memory_max_mb as u64);
        positive("server.max_body_bytes", self.server.max_body_bytes as u64);
        positive("avatars.max_bytes", self.avatars.max_bytes as u64);
        positive(
            "defence.block_initial_secs",
            self.defence.block_initial_secs,
        );
        positive("defence.list_refresh_ms", self.defence.list_refresh_ms);
        positive("audit.retention_days", self.audit.retention_days);
        positive("tokens.rotate_hours", self.tokens.rotate_hours);
        positive("webhooks.retry_initial_ms", self.webhooks.retry_initial_ms);
        for (i, e) in self.webhooks.endpoints.iter().enumerate() {
            if !(e.url.starts_with("http://") || e.url.starts_with("https://")) {
                errs.push(format!(
                    "webhooks.endpoints[{i}].url must be an http(s) URL"
                ));
            }
            if e.key().is_none() {
                errs.push(format!(
                    "webhooks.endpoints[{i}].secret must be whsec_ followed by base64"
                ));
            }
            if e.events.0.is_empty() {
                errs.push(format!(
                    "webhooks.endpoints[{i}].events must name events, or \"*\""
                ));
            }
        }
        if !(1..=crate::tokens::MAX_TTL_SECS).contains(&self.tokens.ttl_secs) {
            errs.push("tokens.ttl_secs must be between 1 and 900 (15 minutes)".into());
        }
        positive("store.timeout_ms", self.store.timeout_ms);
        positive("store.connect_timeout_ms", self.store.connect_timeout_ms);
        positive(
            "database.max_connections",
            u64::from(self.database.max_connections),
        );
        positive(
            "database.acquire_timeout_ms",
            self.database.acquire_timeout_ms,
        );

        errs.extend(zero.iter().map(|k| format!("{k} must be greater than 0")));
        let d = &self.defence;
        if d.block_max_secs < d.block_initial_secs {
            errs.push("defence.block_max_secs must be at least defence.block_initial_secs".into());
        }
        if !(d.ratio.is_finite() && d.ratio >= 0.0) {
            errs.push("defence.ratio must be a number of 0 or more".into());
        }
        for (i, t) in self.sms.test_numbers.iter().enumerate() {
            let code = t.code.expose();
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                errs.push(format!("sms.test_numbers[{i}].code must be 6 digits"));
            }
        }
        if !self.sms.test_numbers.is_empty()
            && self.sms.provider != ProviderKind::Log
            && !self.sms.allow_test_numbers_in_production
        {
            errs.push(
                "sms.test_numbers beside a real provider need sms.allow_test_numbers_in_production = true"
                    .into(),
            );
        }
        let a = &self.avatars;
        if !(a.store.is_empty() || a.store.starts_with("file://") || a.store.starts_with("s3://")) {
            errs.push("avatars.store must be file://<dir> or s3://<bucket>/<prefix>".into());
        }
        if a.store.starts_with("s3://") && a.public_url.is_empty() {
            errs.push("avatars.public_url is required with an s3:// avatars.store".into());
        }
        let p = &self.password;
        if p.min_len == 0 || p.min_len > p.max_len {
            errs.push("password.min_len must be between 1 and password.max_len".into());
        }
        if p.argon2_memory_kib < 8 * p.argon2_parallelism.max(1)
            || p.argon2_iterations == 0
            || p.argon2_parallelism == 0
        {
            errs.push(
                "password.argon2_* parameters are out of range (memory ≥ 8 KiB per lane, iterations ≥ 1, parallelism ≥ 1)".into(),
            );
        }
        if self.store.url != "memory://"
            && let Err(e) = crate::store::redis::RedisTarget::parse(&self.store.url)
        {
            errs.push(format!(
                    "store.url: {e} in {:?} (memory://, redis://, rediss://, redis+cluster://, redis+sentinel://)",
                    redact_url(&self.store.url)
                ));
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("mysql://"))
        {
            errs.push(format!(
                "database.url: unsupported scheme in {:?} (sqlite://, postgres://, mysql://)",
                redact_url(db)
            ));
        }
        errs.extend(self.sms_problems());
        if !self.server.secret.is_empty()
            && let Err(e) = crate::secret::ServerSecret::from_hex(self.server.secret.expose())
        {
            errs.push(format!("server.secret: {e}"));
        }
        if let Err(e) = crate::domain::MobilePolicy::new(&self.phone.allowed_regions.0) {
            errs.push(format!("phone.allowed_regions: {e}"));
        }
        if errs.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }

    /// Problems of the SMS chain: a provider listed twice, and a selected
    /// provider without its keys or with an unusable `base_url`. (Unknown
    /// names never get this far: they do not deserialise.)
    fn sms_problems(&self) -> Vec<String> {
        let mut errs = Vec::new();
        for (i, r) in self.sms.routes.iter().enumerate() {
            if r.providers.0.is_empty() {
                errs.push(format!(
                    "sms.routes[{i}].providers must name at least one provider"
                ));
            }
            if r.countries.0.is_empty() && r.prefixes.0.is_empty() {
                errs.push(format!("sms.routes[{i}] needs countries or prefixes"));
            }
            for c in &r.countries.0 {
                if c.to_ascii_uppercase()
                    .parse::<phonenumber::country::Id>()
                    .is_err()
                {
                    errs.push(format!(
                        "sms.routes[{i}].countries: {c:?} is not an ISO 3166 alpha-2 code"
                    ));
                }
            }
            for p in &r.prefixes.0 {
                let d = p.trim_start_matches('+');
                if d.is_empty() || d.len() > 15 || !d.bytes().all(|b| b.is_ascii_digit()) {
                    errs.push(format!(
                        "sms.routes[{i}].prefixes: {p:?} is not 1 to 15 E.164 digits"
                    ));
                }
            }
            for kind in &r.providers.0 {
                for field in self.sms.missing_keys(*kind) {
                    errs.push(format!(
                        "sms.{kind}.{field} is required: sms.routes[{i}] sends through {kind}",
                        kind = kind.name()
                    ));
                }
            }
        }
        for (vendor, templates) in [
            ("cloopen", &self.sms.cloopen.templates),
            ("aliyun", &self.sms.aliyun.templates),
            ("tencent", &self.sms.tencent.templates),
            ("twilio", &self.sms.twilio.templates),
        ] {
            for key in templates.keys() {
                let what = key
                    .strip_suffix("_zh")
                    .or_else(|| key.strip_suffix("_en"))
                    .unwrap_or(key);
                if what != "notice" && crate::domain::Purpose::parse(what).is_none() {
                    errs.push(format!(
                        "sms.{vendor}.templates.{key}: not a purpose (register, login, reset, change_mobile, confirm, notice), with _zh or _en if it is for one language"
                    ));
                }
            }
        }
        let chain: Vec<ProviderKind> = self.sms.chain().collect();
        for (i, kind) in chain.iter().enumerate() {
            if chain[..i].contains(kind) {
                errs.push(format!(
                    "sms.fallback: provider {kind:?} is listed twice",
                    kind = kind.name()
                ));
                continue;
            }
            for field in self.sms.missing_keys(*kind) {
                errs.push(format!(
                    "sms.{kind}.{field} is required when {kind} is in the SMS chain \
                     (env PHONEAUTH_SMS__{}__{})",
                    kind.name().to_uppercase(),
                    field.to_uppercase()
                ));
            }
            if let Some(url) = self.sms.base_url(*kind) {
                match url::Url::parse(url) {
                    Ok(u)
                        if (u.scheme() == "https" || u.scheme() == "http")
                            && u.host_str().is_some() => {}
                    _ => errs.push(format!(
                        "sms.{kind}.base_url: {url:?} is not an http(s) URL"
                    )),
                }
            }
        }
        errs
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store.url = redact_url(&self.store.url);
        shown.database.url = redact_url(&self.database.url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The SQLite database file, when the database is one.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        sqlite_path(&self.database.url)
    }

    /// Where embedded mode keeps its generated secret: beside the SQLite file.
    pub fn embedded_secret_path(&self) -> Option<PathBuf> {
        let path = sqlite_path(&self.database.url)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Some(dir.join("phoneauth.secret"))
    }
}

/// One line per bad key: `server.listen: <problem> (in <source>)`, naming the
/// exact environment variable when that is where the value came from.
fn describe(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_ascii_lowercase();
            let source = match &e.metadata {
                Some(m) if m.name.contains("environment") && !e.path.is_empty() => {
                    format!("environment variable {}", env_name(&e.path))
                }
                Some(m) => match &m.source {
                    Some(src) => format!("{} {src}", m.name),
                    None => m.name.to_string(),
                },
                None => "built-in defaults".into(),
            };
            let key = if key.is_empty() {
                "configuration".into()
            } else {
                key
            };
            format!("{key}: {} (in {source})", e.kind)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn env_name(path: &[String]) -> String {
    let joined = path
        .iter()
        .map(|p| p.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join("__");
    match joined.as_str() {
        "DATABASE__URL" | "STORE__URL" => {
            format!("PHONEAUTH_{joined} (or DATABASE_URL / REDIS_URL)")
        }
        _ => format!("PHONEAUTH_{joined}"),
    }
}

/// The file of a `sqlite:` URL, or `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Hides the password of `scheme://user:password@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its large error type
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in(jail: &Jail, file: Option<&str>) -> Result<Config, ConfigError> {
        Config::load(file.map(|f| jail.directory().join(f)).as_deref())
    }

    #[test]
    fn defaults_are_the_embedded_mode_of_the_spec() {
        Jail::expect_with(|jail| {
            let c = load_in(jail, None).expect("defaults load");
            assert_eq!(c.server.listen.to_string(), "127.0.0.1:8000");
            assert_eq!(
                c.server.admin_listen.0.map(|a| a.to_string()).as_deref(),
                Some("127.0.0.1:9100")
            );
            assert_eq!(c.store.url, "memory://");
            assert_eq!(c.database.url, "sqlite://phoneauth.db");
            assert_eq!(c.sms.provider, "log");
            assert_eq!(c.compat.routes.0, vec!["ihome"]);
            assert!(!c.dev.expose_secrets);
            Ok(())
        });
    }

    #[test]
    fn env_overrides_file_and_file_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "phoneauth.toml",
                "[server]\nlisten = \"127.0.0.1:7000\"\n[limits]\nsms_cooldown_secs = 90\n",
            )?;
            jail.set_env("PHONEAUTH_SERVER__LISTEN", "127.0.0.1:7001");
            jail.set_env(
                "PHONEAUTH_SERVER__TRUSTED_PROXIES",
                "10.0.0.0/8, 192.168.1.1",
            );
            jail.set_env("PHONEAUTH_SERVER__ADMIN_LISTEN", "off");
            let c = load_in(jail, None).expect("loads");
            assert_eq!(c.server.listen.to_string(), "127.0.0.1:7001");
            assert_eq!(c.limits.sms_cooldown_secs, 90);
            assert_eq!(c.server.trusted_proxies.0.len(), 2);
            assert_eq!(c.server.admin_listen.0, None);
            Ok(())
        });
    }

    #[test]
    fn environment_strings_arrive_exactly_as_written() {
        Jail::expect_with(|jail| {
            jail.set_env("PHONEAUTH_SMS__TWILIO__FROM", "+15005550006");
            jail.set_env("PHONEAUTH_SMS__TENCENT__TEMPLATE_ID", "0123");
            jail.set_env("PHONEAUTH_SMS__TENCENT__SDK_APP_ID", "1400006666");
            jail.set_env("PHONEAUTH_SMS__ALIYUN__ACCESS_KEY_SECRET", "12e4");
            jail.set_env("PHONEAUTH_SMS__CLOOPEN__APP_ID", "true");
            // Numbers, booleans and durations still read as such.
            jail.set_env("PHONEAUTH_SERVER__MAX_BODY_BYTES", "2048");
            jail.set_env("PHONEAUTH_SERVER__SECURE_COOKIES", "true");
            jail.set_env("PHONEAUTH_SERVER__HEADER_TIMEOUT", "5");
            jail.set_env("PHONEAUTH_SERVER__IDLE_TIMEOUT", "1500ms");
            jail.create_file(
                "phoneauth.toml",
                "[sms.twilio]\nfrom = \"+15005550006\"\n[sms.tencent]\nsign_name = \"0123\"\n",
            )?;
            let c = load_in(jail, None).expect("loads");
            assert_eq!(c.sms.twilio.from, "+15005550006");
            assert_eq!(c.sms.tencent.template_id, "0123");
            assert_eq!(
                c.sms.tencent.sign_name, "0123",
                "TOML and environment agree"
            );
            assert_eq!(c.sms.tencent.sdk_app_id, "1400006666");
            assert_eq!(c.sms.aliyun.access_key_secret.expose(), "12e4");
            assert_eq!(c.sms.cloopen.app_id, "true");
            assert_eq!(c.server.max_body_bytes, 2048);
            assert!(c.server.secure_cookies);
            assert_eq!(c.server.header_timeout, Seconds::secs(5));
            assert_eq!(
                c.server.idle_timeout.0,
                std::time::Duration::from_millis(1500)
            );
            Ok(())
        });
    }

    #[test]
    fn durations_that_are_not_durations_name_their_key() {
        Jail::expect_with(|jail| {
            jail.set_env("PHONEAUTH_SERVER__BODY_TIMEOUT", "soon");
            let msg = load_in(jail, None).expect_err("bad duration").to_string();
            assert!(msg.contains("server.body_timeout"), "{msg}");
            assert!(msg.contains("PHONEAUTH_SERVER__BODY_TIMEOUT"), "{msg}");
            jail.set_env("PHONEAUTH_SERVER__BODY_TIMEOUT", "0");
            let msg = load_in(jail, None).expect_err("zero").to_string();
            assert!(
                msg.contains("server.body_timeout must be greater than 0"),
                "{msg}"
            );
            Ok(())
        });
    }

    #[test]
    fn database_url_is_honoured_unless_the_nested_key_is_set() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "sqlite://other.db");
            assert_eq!(
                load_in(jail, None).expect("loads").database.url,
                "sqlite://other.db"
            );
            jail.set_env("PHONEAUTH_DATABASE__URL", "sqlite://nested.db");
            assert_eq!(
                load_in(jail, None).expect("loads").database.url,
                "sqlite://nested.db"
            );
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key_and_its_source() {
        Jail::expect_with(|jail| {
            jail.set_env("PHONEAUTH_SERVER__LISTEN", "not-an-address");
            let msg = load_in(jail, None).expect_err("bad listen").to_string();
            assert!(msg.contains("server.listen"), "{msg}");
            assert!(msg.contains("PHONEAUTH_SERVER__LISTEN"), "{msg}");
            jail.clear_env();
            jail.create_file("c.toml", "[limits]\nsms_cooldown_secs = \"soon\"\n")?;
            let msg = load_in(jail, Some("c.toml"))
                .expect_err("bad type")
                .to_string();
            assert!(msg.contains("limits.sms_cooldown_secs"), "{msg}");
            assert!(msg.contains("c.toml"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_zero_limits_are_refused() {
        Jail::expect_with(|jail| {
            jail.create_file("a.toml", "[limits]\nsms_colldown_secs = 3\n")?;
            let msg = load_in(jail, Some("a.toml")).expect_err("typo").to_string();
            assert!(msg.contains("sms_colldown_secs"), "{msg}");
            jail.create_file("b.toml", "[limits]\nsms_per_mobile_per_day = 0\n")?;
            let msg = load_in(jail, Some("b.toml")).expect_err("zero").to_string();
            assert!(msg.contains("limits.sms_per_mobile_per_day"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_when_printed() {
        let mut c = Config::default();
        c.server.secret = Secret::from("ab".repeat(32).as_str());
        c.database.url = "postgres://app:hunter2@db/phoneauth".into();
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("abababab"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(!format!("{c:?}").contains("abababab"));
    }

    #[test]
    fn test_numbers_take_a_toml_date_or_a_string_and_refuse_a_real_provider() {
        let toml = r#"
            [[sms.test_numbers]]
            mobile = "17000000001"
            code = "246810"
            expires = 2027-06-30
            [[sms.test_numbers]]
            mobile = "17000000002"
            code = "135790"
            expires = "2027-07-01"
        "#;
        let c: Config = Figment::new()
            .merge(Toml::string(toml))
            .extract()
            .expect("parses");
        let days: Vec<String> = c
            .sms
            .test_numbers
            .iter()
            .map(|t| t.expires.to_string())
            .collect();
        assert_eq!(days, ["2027-06-30", "2027-07-01"]);
        let c = c.validated().expect("valid beside the log provider");
        let mut real = c.clone();
        real.sms.provider = ProviderKind::Twilio;
        let err = real
            .clone()
            .validated()
            .expect_err("refused beside a real provider");
        assert!(
            err.to_string().contains("allow_test_numbers_in_production"),
            "{err}"
        );
        real.sms.allow_test_numbers_in_production = true;
        // Allowed, the test numbers are no longer what is refused (the
        // missing Twilio keys still are).
        if let Err(e) = real.validated() {
            assert!(!e.to_string().contains("test_numbers"), "{e}");
        }
        let bad: Result<Config, _> = Figment::new()
            .merge(Toml::string(
                "[[sms.test_numbers]]\nmobile = \"1\"\ncode = \"1\"\nexpires = \"June\"",
            ))
            .extract();
        assert!(bad.is_err(), "a date that is not one");
    }

    #[test]
    fn the_example_file_parses_and_lists_every_key() {
        let example = include_str!("../config.example.toml");
        let parsed: Config = Figment::new()
            .merge(Toml::string(example))
            .extract()
            .expect("config.example.toml parses");
        parsed.validated().expect("config.example.toml is valid");
        let defaults = toml::to_string(&Config::default()).expect("serialise defaults");
        let table: toml::Table = defaults.parse().expect("toml");
        fn walk(path: &mut Vec<String>, t: &toml::Table, example: &str) {
            for (key, value) in t {
                path.push(key.clone());
                match value.as_table() {
                    Some(inner) => walk(path, inner, example),
                    None => {
                        let env = format!("PHONEAUTH_{}", path.join("__").to_uppercase());
                        assert!(
                            example.contains(&env),
                            "config.example.toml does not document {} ({env})",
                            path.join(".")
                        );
                    }
                }
                path.pop();
            }
        }
        walk(&mut Vec::new(), &table, example);
    }

    #[test]
    fn embedded_secret_lives_beside_the_database() {
        let mut c = Config::default();
        assert_eq!(
            c.embedded_secret_path(),
            Some(PathBuf::from("phoneauth.secret"))
        );
        c.database.url = "sqlite:///var/lib/phoneauth/users.db?mode=rwc".into();
        assert_eq!(
            c.embedded_secret_path(),
            Some(PathBuf::from("/var/lib/phoneauth/phoneauth.secret"))
        );
    }
}
