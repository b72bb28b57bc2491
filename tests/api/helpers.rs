//! `spawn_app()`: a real phoneauth on 127.0.0.1:0 with a temporary SQLite
//! file, the development hooks on, a manual clock, and a store and database
//! that a test can switch off. One typed method per endpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use phoneauth::clock::ManualClock;
use phoneauth::config::Config;
use phoneauth::domain::Mobile;
use phoneauth::sms::{SmsError, SmsErrorKind, SmsMessage, SmsReceipt, SmsSender, log::LogSender};
use phoneauth::store::{
    CodeCheck, CodeClaim, Counter, IndexAdd, KvStore, MemoryStore, PumpCounts, PumpKeys,
    SharedStore, StoreError,
};
use phoneauth::users::{
    self, AuditEvent, AuditQuery, EventCount, ImportedUser, ListEntry, NewUser, OutboxMessage,
    Records, RepoError, SharedUserRepo, TokenKey, User, UserChange, UserRepo,
};
use phoneauth::{App, Overrides};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    /// The admin listener (metrics).
    pub admin: Option<String>,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub store: Arc<FlakyStore>,
    pub users: Arc<FlakyUsers>,
    pub sms: Arc<FlakySms>,
    _dir: TempDir,
}

/// A folder removed when the test ends.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "phoneauth-test-{}",
            phoneauth::secret::random_hex(8)
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Settings every test app starts from: embedded mode on a free port, cheap
/// argon2 (the production cost is covered by unit tests), hooks on.
pub fn test_config(dir: &TempDir) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().expect("addr");
    c.server.admin_listen =
        phoneauth::config::AdminListen(Some("127.0.0.1:0".parse().expect("addr")));
    c.database.url = format!("sqlite://{}", dir.0.join("test.db").display());
    c.avatars.store = format!("file://{}", dir.0.join("avatars").display());
    c.dev.expose_secrets = true;
    c.password.argon2_memory_kib = 256;
    c.password.argon2_iterations = 1;
    // Test numbers are sequential, so most share one anti-pumping prefix,
    // and most tests send codes they never use: the adaptive defence is
    // off unless a test (`defence.rs`) turns it on.
    c.defence.mode = phoneauth::config::DefenceMode::Off;
    c.admin.token = ADMIN_TOKEN.into();
    c
}

/// `admin.token` of every test app.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = TempDir::new();
    let mut config = test_config(&dir);
    tweak(&mut config);
    let clock = ManualClock::new();
    let store = MemoryStore::new(clock.clone(), 64 << 20);
    let repo = users::connect(&config.database.url, phoneauth::app::pg_settings(&config))
        .await
        .expect("database");
    spawn_with_parts(config, clock, store, repo, dir).await
}

/// Starts phoneauth on the given store and user repository (wrapped so a
/// test can switch them off). The manual clock drives only what phoneauth
/// itself times; Redis keeps its own clock.
pub async fn spawn_with_parts(
    config: Config,
    clock: Arc<ManualClock>,
    store: SharedStore,
    repo: SharedUserRepo,
    dir: TempDir,
) -> TestApp {
    let store = Arc::new(FlakyStore::new(store));
    let users = Arc::new(FlakyUsers::new(repo));
    let sms = Arc::new(FlakySms::default());
    let config_uses_log_provider = config.sms.provider == "log";
    let app = App::build_with(
        config,
        Overrides {
            clock: Some(clock.clone()),
            store: Some(store.clone()),
            users: Some(users.clone()),
            // A test that configures a real provider (against a mock vendor)
            // gets the real chain; otherwise the switchable development one.
            sms: (config_uses_log_provider).then(|| sms.clone() as Arc<dyn SmsSender>),
        },
    )
    .await
    .expect("app builds");
    let base = format!("http://{}", app.addr());
    let admin = app.admin_addr().map(|a| format!("http://{a}"));
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        base,
        admin,
        client: client(),
        clock,
        store,
        users,
        sms,
        _dir: dir,
    }
}

/// `phoneauth serve` as a process of its own in `dir` (which may hold a
/// `phoneauth.toml`), on a free port, with the development hooks on and
/// `env` on top; its address once it listens. Killed when dropped.
pub async fn serve_process(dir: &TempDir, env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_phoneauth"));
    cmd.arg("serve")
        .current_dir(&dir.0)
        .env("PHONEAUTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("PHONEAUTH_SERVER__ADMIN_LISTEN", "off")
        .env("PHONEAUTH_DEV__EXPOSE_SECRETS", "true")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("RUST_LOG") // would hide the `addr=` line it waits for
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start phoneauth");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("addr=").nth(1) {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        }
        panic!("phoneauth exited before listening");
    })
    .await
    .expect("phoneauth starts within 60 s");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"))
}

/// Whether python3 can `import` each of `modules` (comma-separated), the
/// independent libraries some tests check phoneauth with. In CI a missing
/// one fails the test (`.ci/run` installs them); elsewhere the test says
/// loudly that it did not run.
pub fn python_has(modules: &str, packages: &str) -> bool {
    let have = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{packages} required in CI; .ci/run installs it (pip install {packages})"
        );
        eprintln!(
            "\n*** SKIPPED: python3 lacks {packages} (pip install {packages}); this test did not run ***\n"
        );
    }
    have
}

/// The TLS provider reqwest needs before any client is built (the app
/// installs the same one; tests may build clients first).
pub fn ensure_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client without a cookie jar, like curl.
pub fn plain_client() -> reqwest::Client {
    ensure_tls();
    reqwest::Client::new()
}

/// A client with its own cookie jar, like one browser.
pub fn client() -> reqwest::Client {
    ensure_tls();
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn new_captcha_id() -> String {
    phoneauth::secret::random_hex(16)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        json_of(self.get(path).await).await
    }

    /// Any JSON document (not an envelope), e.g. the OpenAPI document.
    pub async fn get_json_any(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("JSON")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request");
        json_of(resp).await
    }

    /// GET /api/v1.0/image_codes/{id}
    pub async fn image_code(&self, id: &str) -> reqwest::Response {
        self.get(&format!("/api/v1.0/image_codes/{id}")).await
    }

    /// A fresh captcha and its answer (from the development hook).
    pub async fn captcha(&self) -> (String, String) {
        let id = new_captcha_id();
        let resp = self.image_code(&id).await;
        assert_eq!(resp.status(), 200, "captcha should be issued");
        (
            id.clone(),
            self.dev_captcha(&id).await.expect("answer is exposed"),
        )
    }

    pub async fn dev_captcha(&self, id: &str) -> Option<String> {
        let v = self.get_json(&format!("/dev/captcha/{id}")).await;
        v["data"]["text"].as_str().map(str::to_owned)
    }

    pub async fn dev_sms(&self, mobile: &str) -> Option<String> {
        let v = self
            .get_json(&format!("/dev/sms/{}", urlencode(mobile)))
            .await;
        v["data"]["code"].as_str().map(str::to_owned)
    }

    /// GET /api/v1.0/sms_codes/{mobile}?image_code=…&image_code_id=…
    pub async fn sms_code(&self, mobile: &str, answer: &str, id: &str) -> Value {
        json_of(self.sms_code_response(mobile, answer, id).await).await
    }

    pub async fn sms_code_response(
        &self,
        mobile: &str,
        answer: &str,
        id: &str,
    ) -> reqwest::Response {
        self.client
            .get(self.url(&format!(
                "/api/v1.0/sms_codes/{}?image_code={}&image_code_id={}",
                urlencode(mobile),
                urlencode(answer),
                urlencode(id)
            )))
            .send()
            .await
            .expect("request")
    }

    /// Captcha, then a code to `mobile`; returns the code.
    pub async fn send_code(&self, mobile: &str) -> String {
        let (id, answer) = self.captcha().await;
        let v = self.sms_code(mobile, &answer, &id).await;
        assert_eq!(v["errno"], "0", "sending a code should succeed: {v}");
        self.dev_sms(mobile).await.expect("code is exposed")
    }

    /// POST /api/v1.0/users
    pub async fn register(&self, mobile: &str, code: &str, password: &str) -> Value {
        self.post_json(
            "/api/v1.0/users",
            &json!({ "mobile": mobile, "sms_code": code, "password": password, "password2": password }),
        )
        .await
    }

    /// The whole sign-up; returns the answer of POST /users.
    pub async fn sign_up(&self, mobile: &str, password: &str) -> Value {
        let code = self.send_code(mobile).await;
        self.register(mobile, &code, password).await
    }

    /// POST /api/v1.0/sessions
    pub async fn login(&self, mobile: &str, password: &str) -> Value {
        self.post_json(
            "/api/v1.0/sessions",
            &json!({ "mobile": mobile, "password": password }),
        )
        .await
    }

    /// GET /api/v1.0/session
    pub async fn session(&self) -> Value {
        self.get_json("/api/v1.0/session").await
    }

    /// DELETE /api/v1.0/session
    pub async fn logout(&self) -> Value {
        json_of(
            self.client
                .delete(self.url("/api/v1.0/session"))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// GET /api/v1.0/user
    pub async fn user(&self) -> Value {
        self.get_json("/api/v1.0/user").await
    }
}

/// Parses a JSON answer, checking the envelope rules that hold for all of them.
pub async fn json_of(resp: reqwest::Response) -> Value {
    let status = resp.status();
    // 503 is the documented answer of an image request while the store is down.
    assert!(
        status.as_u16() < 500 || status.as_u16() == 503,
        "no answer may be a server error, got {status}"
    );
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/json", "JSON answers say so");
    let v: Value = resp.json().await.expect("JSON body");
    assert!(
        v["errno"].is_string() || (v.get("errno").is_none() && v["code"].is_i64()),
        "errno is always a string (the steps set answers an integer code instead): {v}"
    );
    v
}

pub fn retry_after(h: &HeaderMap) -> Option<u64> {
    h.get("retry-after")?.to_str().ok()?.parse().ok()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A mobile number no other test uses.
pub fn fresh_mobile() -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("139{:08}", (std::process::id() % 1000) * 100_000 + n)
}

// ---- ports that fail on demand ------------------------------------------------

pub struct FlakyStore {
    inner: SharedStore,
    down: AtomicBool,
}

impl FlakyStore {
    fn new(inner: SharedStore) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl KvStore for FlakyStore {
    async fn set(&self, k: &str, v: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set(k, v, ttl).await
    }
    async fn set_nx(
        &self,
        k: &str,
        v: &[u8],
        ttl: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        self.check()?;
        self.inner.set_nx(k, v, ttl).await
    }
    async fn replace(&self, k: &str, v: &[u8]) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.replace(k, v).await
    }
    async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.get(k).await
    }
    async fn take(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.take(k).await
    }
    async fn delete(&self, k: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete(k).await
    }
    async fn delete_all(&self, ks: &[String]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete_all(ks).await
    }
    async fn pump_send(&self, keys: &PumpKeys<'_>) -> Result<PumpCounts, StoreError> {
        self.check()?;
        self.inner.pump_send(keys).await
    }
    async fn pump_verified(&self, keys: [&str; 4]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.pump_verified(keys).await
    }
    async fn incr_window(&self, k: &str, w: Duration) -> Result<Counter, StoreError> {
        self.check()?;
        self.inner.incr_window(k, w).await
    }
    async fn decr(&self, k: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.decr(k).await
    }
    async fn peek_counter(&self, k: &str) -> Result<Counter, StoreError> {
        self.check()?;
        self.inner.peek_counter(k).await
    }
    async fn put_code(&self, k: &str, mac: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_code(k, mac, ttl).await
    }
    async fn verify_code(&self, k: &str, c: &[u8], max: u32) -> Result<CodeCheck, StoreError> {
        self.check()?;
        self.inner.verify_code(k, c, max).await
    }
    async fn claim_code(&self, k: &str, claim: CodeClaim<'_>) -> Result<CodeCheck, StoreError> {
        self.check()?;
        self.inner.claim_code(k, claim).await
    }
    async fn release_code(&self, k: &str, holder: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.release_code(k, holder).await
    }
    async fn index_add(&self, k: &str, add: IndexAdd<'_>) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.inner.index_add(k, add).await
    }
    async fn index_remove(&self, k: &str, member: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.index_remove(k, member).await
    }
    async fn index_members(&self, k: &str) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.inner.index_members(k).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn ready(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ready().await
    }
    fn fullness(&self) -> Option<f64> {
        self.inner.fullness()
    }
}

pub struct FlakyUsers {
    inner: SharedUserRepo,
    down: AtomicBool,
}

impl FlakyUsers {
    fn new(inner: SharedUserRepo) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), RepoError> {
        if self.down.load(Ordering::SeqCst) {
            Err(RepoError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Records for FlakyUsers {
    async fn enqueue_webhook(&self, m: &OutboxMessage, next_ms: i64) -> Result<(), RepoError> {
        self.check()?;
        self.inner.enqueue_webhook(m, next_ms).await
    }
    async fn claim_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        self.check()?;
        self.inner.claim_webhooks(now_ms, lease_ms, limit).await
    }
    async fn settle_webhook(
        &self,
        id: i64,
        next_ms: i64,
        done_ms: Option<i64>,
    ) -> Result<(), RepoError> {
        self.check()?;
        self.inner.settle_webhook(id, next_ms, done_ms).await
    }
    async fn token_keys(&self) -> Result<Vec<TokenKey>, RepoError> {
        self.check()?;
        self.inner.token_keys().await
    }
    async fn add_token_key(&self, k: &TokenKey) -> Result<(), RepoError> {
        self.check()?;
        self.inner.add_token_key(k).await
    }
    async fn list_signature(&self) -> Result<(i64, i64), RepoError> {
        self.check()?;
        self.inner.list_signature().await
    }
    async fn list_entries(&self) -> Result<Vec<ListEntry>, RepoError> {
        self.check()?;
        self.inner.list_entries().await
    }
    async fn add_list_entry(&self, e: &ListEntry, at_ms: i64) -> Result<bool, RepoError> {
        self.check()?;
        self.inner.add_list_entry(e, at_ms).await
    }
    async fn remove_list_entry(&self, e: &ListEntry) -> Result<bool, RepoError> {
        self.check()?;
        self.inner.remove_list_entry(e).await
    }
    async fn append_audit(&self, e: &AuditEvent) -> Result<(), RepoError> {
        self.check()?;
        self.inner.append_audit(e).await
    }
    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, RepoError> {
        self.check()?;
        self.inner.audit(q).await
    }
    async fn audit_counts(&self, since_ms: i64) -> Result<Vec<EventCount>, RepoError> {
        self.check()?;
        self.inner.audit_counts(since_ms).await
    }
    async fn prune_audit(&self, before_ms: i64) -> Result<u64, RepoError> {
        self.check()?;
        self.inner.prune_audit(before_ms).await
    }
}

#[async_trait]
impl UserRepo for FlakyUsers {
    async fn create(&self, new: &NewUser) -> Result<User, RepoError> {
        self.check()?;
        self.inner.create(new).await
    }
    async fn by_mobile(&self, m: &Mobile) -> Result<Option<User>, RepoError> {
        self.check()?;
        self.inner.by_mobile(m).await
    }
    async fn by_id(&self, id: i64) -> Result<Option<User>, RepoError> {
        self.check()?;
        self.inner.by_id(id).await
    }
    async fn by_ids(&self, ids: &[i64]) -> Result<Vec<User>, RepoError> {
        self.check()?;
        self.inner.by_ids(ids).await
    }
    async fn import(&self, batch: &[ImportedUser]) -> Result<u64, RepoError> {
        self.check()?;
        self.inner.import(batch).await
    }
    async fn reserve_ids(&self, through: i64) -> Result<(), RepoError> {
        self.check()?;
        self.inner.reserve_ids(through).await
    }
    async fn update(&self, id: i64, change: UserChange<'_>) -> Result<bool, RepoError> {
        self.check()?;
        self.inner.update(id, change).await
    }
    async fn delete(&self, id: i64) -> Result<Option<User>, RepoError> {
        self.check()?;
        self.inner.delete(id).await
    }
    async fn ping(&self) -> Result<(), RepoError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn migrate(&self) -> Result<(), RepoError> {
        self.check()?;
        self.inner.migrate().await
    }
}

/// The development provider, or a vendor outage when switched off.
#[derive(Default)]
pub struct FlakySms {
    down: AtomicBool,
    pub sent: std::sync::atomic::AtomicUsize,
}

impl FlakySms {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[async_trait]
impl SmsSender for FlakySms {
    fn name(&self) -> &'static str {
        "flaky"
    }
    async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SmsError {
                provider: "flaky",
                kind: SmsErrorKind::Transient,
                detail: "switched off by the test".into(),
            });
        }
        self.sent.fetch_add(1, Ordering::SeqCst);
        LogSender.send(msg).await
    }
}
