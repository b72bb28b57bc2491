//! The sign-up and sign-in flow: issue a captcha, send a code, verify it,
//! register, log in, sessions. Every route set calls this; it knows nothing
//! of HTTP. Inputs arrive as domain types; outcomes leave as [`FlowError`],
//! which the HTTP layer maps to the wire envelope once.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::captcha::CaptchaRenderer;
use crate::clock::SharedClock;
use crate::domain::{
    CaptchaAnswer, CaptchaId, Errno, Lang, Mobile, MobilePolicy, Password, PasswordPolicy, SmsCode,
};
use crate::limits::{ClientKey, LimitError, Limits, Refusal, Scope};
use crate::meter;
use crate::passwords::{HashError, PasswordHasher};
use crate::secret::{self, ServerSecret};
use crate::sms::{SmsChain, SmsError, SmsErrorKind, SmsMessage};
use crate::store::{CodeCheck, SharedStore, StoreError, keys};
use crate::users::{NewUser, RepoError, SharedUserRepo, User};

/// Durations and policies of the flow, from the configuration.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub captcha_ttl: Duration,
    pub code_ttl: Duration,
    pub max_guesses: u32,
    pub session_ttl: Duration,
    /// Live sessions per user; a new one ends the oldest beyond it.
    pub max_sessions_per_user: usize,
    /// `compat.steps_require_token`: steps 3 and 4 must present the token.
    pub steps_require_token: bool,
    pub expose_secrets: bool,
    pub mobile_policy: MobilePolicy,
    pub password_policy: PasswordPolicy,
}

/// A step of the four-step registration that must come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Step 2: the SMS code, from this client.
    Verified,
    /// Step 3: the password.
    Password,
}

/// Why a request was malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    Missing(&'static str),
    Mobile,
    CaptchaId,
    Code,
    PasswordPolicy { min: usize, max: usize },
    PasswordMismatch,
    Body,
    Nickname,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("bad parameter: {0:?}")]
    Param(ParamError),
    #[error("rate limited ({})", .0.scope.as_str())]
    Limited(Refusal),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Database(#[from] RepoError),
    #[error("captcha missing or expired")]
    CaptchaMissing,
    #[error("captcha answer wrong")]
    CaptchaWrong,
    #[error("SMS code missing or expired")]
    CodeMissing,
    #[error("SMS code wrong ({remaining} guesses left)")]
    CodeWrong { remaining: u32 },
    #[error("mobile already registered")]
    MobileTaken,
    #[error("wrong mobile or password")]
    BadCredentials,
    #[error("user disabled")]
    UserDisabled,
    #[error("user not found")]
    UserMissing,
    #[error("not logged in")]
    NotLoggedIn,
    #[error("SMS provider: {0}")]
    Sms(#[from] SmsError),
    #[error("password hashing busy")]
    Busy,
    #[error("registration step missing: {0:?}")]
    StepMissing(Step),
    #[error("step token missing or wrong")]
    StepToken,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<LimitError> for FlowError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::Refused(r) => FlowError::Limited(r),
            LimitError::Store(s) => FlowError::Store(s),
        }
    }
}

impl From<HashError> for FlowError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => FlowError::Busy,
            HashError::Internal(m) => FlowError::Internal(m),
        }
    }
}

impl FlowError {
    pub fn errno(&self) -> Errno {
        match self {
            FlowError::Param(_) => Errno::ParamErr,
            FlowError::Limited(_) | FlowError::Busy => Errno::ReqErr,
            FlowError::Store(_) | FlowError::Database(_) => Errno::DbErr,
            FlowError::CaptchaMissing | FlowError::CodeMissing | FlowError::StepMissing(_) => {
                Errno::NoData
            }
            FlowError::CaptchaWrong
            | FlowError::CodeWrong { .. }
            | FlowError::BadCredentials
            | FlowError::StepToken => Errno::DataErr,
            FlowError::MobileTaken => Errno::DataExist,
            FlowError::UserDisabled | FlowError::UserMissing => Errno::UserErr,
            FlowError::NotLoggedIn => Errno::SessionErr,
            FlowError::Sms(_) => Errno::ThirdErr,
            FlowError::Internal(_) => Errno::ServerErr,
        }
    }

    /// When the client may try again, for `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FlowError::Limited(r) => Some(r.retry_after),
            FlowError::Busy => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// The text a person sees. Internal details never reach it.
    pub fn message(&self, lang: Lang) -> Cow<'static, str> {
        let zh = lang == Lang::Zh;
        let pick = |z: &'static str, e: &'static str| Cow::Borrowed(if zh { z } else { e });
        match self {
            FlowError::Param(p) => match p {
                ParamError::Missing(_) => pick("参数不完整", "Missing parameter"),
                ParamError::Mobile => pick("手机号格式错误", "Invalid mobile number"),
                ParamError::CaptchaId => pick("图片验证码编号无效", "Invalid captcha id"),
                ParamError::Code => pick("短信验证码格式错误", "The SMS code must be 6 digits"),
                ParamError::PasswordPolicy { min, max } => Cow::Owned(if zh {
                    format!("密码长度须为{min}到{max}个字符，且不含控制字符")
                } else {
                    format!(
                        "The password must be {min} to {max} characters, without control characters"
                    )
                }),
                ParamError::PasswordMismatch => {
                    pick("两次密码不一致", "The passwords do not match")
                }
                ParamError::Body => pick("请求数据格式错误", "Malformed request body"),
                ParamError::Nickname => pick(
                    "昵称须为1到32个字符，且不含控制字符",
                    "The nickname must be 1 to 32 characters, without control characters",
                ),
            },
            FlowError::Limited(r) => match r.scope {
                Scope::Cooldown => pick(
                    "发送过于频繁，请稍后再试",
                    "Please wait before requesting another code",
                ),
                Scope::DailyPerMobile => pick(
                    "该手机号今日短信已达上限",
                    "This number has had too many codes today",
                ),
                Scope::Budget => pick(
                    "短信服务繁忙，请稍后再试",
                    "SMS sending is paused, please try later",
                ),
                Scope::Login => pick(
                    "登录失败次数过多，请稍后再试",
                    "Too many failed logins, please try later",
                ),
                _ => pick(
                    "请求过于频繁，请稍后再试",
                    "Too many requests, please slow down",
                ),
            },
            FlowError::Store(_) | FlowError::Database(_) => pick("数据库异常", "Database error"),
            FlowError::CaptchaMissing => pick("图片验证码已过期", "The captcha has expired"),
            FlowError::CaptchaWrong => pick("图片验证码错误", "Wrong captcha answer"),
            FlowError::CodeMissing => pick("短信验证码已过期", "The SMS code has expired"),
            FlowError::CodeWrong { remaining: 0 } => pick(
                "短信验证码错误次数过多，请重新获取",
                "Too many wrong codes, please request a new one",
            ),
            FlowError::CodeWrong { .. } => pick("短信验证码错误", "Wrong SMS code"),
            FlowError::MobileTaken => {
                pick("手机号已注册", "This mobile number is already registered")
            }
            FlowError::BadCredentials => {
                pick("用户名或密码错误", "Wrong mobile number or password")
            }
            FlowError::UserDisabled => pick("用户已被禁用", "This account is disabled"),
            FlowError::UserMissing => pick("用户不存在", "User not found"),
            FlowError::NotLoggedIn => pick("用户未登录", "Not logged in"),
            FlowError::Sms(_) => pick("短信发送失败", "The SMS could not be sent"),
            FlowError::Busy => pick("服务器繁忙，请稍后再试", "The server is busy, please retry"),
            FlowError::StepMissing(Step::Verified) => pick(
                "请先完成短信验证（第二步），验证在120秒内有效",
                "Verify the SMS code first (step 2); it holds for 120 seconds",
            ),
            FlowError::StepMissing(Step::Password) => pick(
                "请先设置密码（第三步），密码在120秒内有效",
                "Set the password first (step 3); it holds for 120 seconds",
            ),
            FlowError::StepToken => pick(
                "步骤令牌缺失或错误，请使用第二步返回的 step_token",
                "The step token is missing or wrong: send the step_token from step 2",
            ),
            FlowError::Internal(_) => pick("内部错误", "Internal error"),
        }
    }
}

/// What a session remembers; stored as JSON under a hash of its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub user_id: i64,
    pub name: String,
    pub mobile: String,
}

/// What `/dev/sms/{mobile}` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevSms {
    pub code: String,
    pub message: String,
}

pub struct Flow {
    store: SharedStore,
    users: SharedUserRepo,
    sms: Arc<SmsChain>,
    clock: SharedClock,
    secret: ServerSecret,
    captcha: Arc<CaptchaRenderer>,
    hasher: Arc<PasswordHasher>,
    limits: Limits,
    settings: FlowSettings,
}

/// The ports and policies the flow works with.
pub struct FlowParts {
    pub store: SharedStore,
    pub users: SharedUserRepo,
    pub sms: Arc<SmsChain>,
    pub clock: SharedClock,
    pub secret: ServerSecret,
    pub captcha: Arc<CaptchaRenderer>,
    pub hasher: Arc<PasswordHasher>,
    pub limits: Limits,
    pub settings: FlowSettings,
}

impl Flow {
    pub fn new(p: FlowParts) -> Self {
        Self {
            store: p.store,
            users: p.users,
            sms: p.sms,
            clock: p.clock,
            secret: p.secret,
            captcha: p.captcha,
            hasher: p.hasher,
            limits: p.limits,
            settings: p.settings,
        }
    }

    // ---- parsing helpers shared by every route set --------------------------

    pub fn parse_mobile(&self, raw: Option<&str>) -> Result<Mobile, FlowError> {
        let raw = present(raw, "mobile")?;
        Mobile::parse(raw, &self.settings.mobile_policy)
            .map_err(|_| FlowError::Param(ParamError::Mobile))
    }

    pub fn parse_new_password(
        &self,
        raw: Option<&str>,
        confirm: Option<&str>,
    ) -> Result<Password, FlowError> {
        let raw = present(raw, "password")?;
        if let Some(c) = confirm
            && c != raw
        {
            return Err(FlowError::Param(ParamError::PasswordMismatch));
        }
        let policy = self.settings.password_policy;
        Password::parse(raw, &policy).map_err(|_| {
            FlowError::Param(ParamError::PasswordPolicy {
                min: policy.min_len,
                max: policy.max_len,
            })
        })
    }

    pub fn parse_login_password(&self, raw: Option<&str>) -> Result<Password, FlowError> {
        let raw = present(raw, "password")?;
        Password::for_login(raw, &self.settings.password_policy)
            .ok_or(FlowError::Param(ParamError::Missing("password")))
    }

    // ---- captcha -----------------------------------------------------------

    /// Draws a captcha for `id`, replacing any earlier one, and returns its JPEG.
    pub async fn issue_captcha(
        &self,
        id: &CaptchaId,
        client: &ClientKey,
    ) -> Result<Vec<u8>, FlowError> {
        self.limits.captcha(client).await?;
        let captcha = self
            .captcha
            .generate()
            .map_err(|e| FlowError::Internal(e.to_string()))?;
        let mac = self.captcha_mac(id, &captcha.text);
        let ttl = self.settings.captcha_ttl;
        self.store.set(&keys::captcha(id), &mac, ttl).await?;
        if self.settings.expose_secrets {
            self.store
                .set(&keys::dev_captcha(id), captcha.text.as_bytes(), ttl)
                .await?;
        }
        meter::captcha_issued();
        Ok(captcha.jpeg)
    }

    /// Deletes a captcha that a page replaced (the news site's `pre_code_id`).
    pub async fn discard_captcha(&self, id: &CaptchaId) -> Result<(), FlowError> {
        self.store.delete(&keys::captcha(id)).await?;
        Ok(())
    }

    /// Takes the captcha in one step, whether or not the answer matches: one
    /// image, one guess.
    pub async fn check_captcha(
        &self,
        id: &CaptchaId,
        answer: &CaptchaAnswer,
    ) -> Result<(), FlowError> {
        let stored = self.store.take(&keys::captcha(id)).await?;
        if self.settings.expose_secrets {
            let _ = self.store.delete(&keys::dev_captcha(id)).await;
        }
        let stored = stored.ok_or(FlowError::CaptchaMissing)?;
        let given = self.captcha_mac(id, &answer.normalised());
        if bool::from(stored.as_slice().ct_eq(&given)) {
            Ok(())
        } else {
            Err(FlowError::CaptchaWrong)
        }
    }

    /// The current answer, for the development hook only.
    pub async fn dev_captcha(&self, id: &CaptchaId) -> Result<Option<String>, FlowError> {
        let v = self.store.get(&keys::dev_captcha(id)).await?;
        Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn captcha_mac(&self, id: &CaptchaId, text: &str) -> [u8; 32] {
        self.secret
            .mac("captcha", &[id.as_str().as_bytes(), text.as_bytes()])
    }

    // ---- SMS code ----------------------------------------------------------

    /// Sends a fresh code to `mobile`, in the order of SPEC §3: client request
    /// rate, captcha (when given), already registered, send limits, code,
    /// delivery.
    pub async fn request_code(
        &self,
        mobile: &Mobile,
        captcha: Option<(&CaptchaId, &CaptchaAnswer)>,
        client: &ClientKey,
        lang: Lang,
    ) -> Result<(), FlowError> {
        self.limits.sms_request(client).await?;
        if let Some((id, answer)) = captcha {
            self.check_captcha(id, answer).await?;
        }
        match self.users.by_mobile(mobile).await {
            Ok(Some(_)) => return Err(FlowError::MobileTaken),
            Ok(None) => {}
            // Registration checks again; a database hiccup must not stop codes.
            Err(e) => {
                tracing::warn!(error = %e, "user lookup failed before sending a code; continuing")
            }
        }
        let reservation = self.limits.reserve_send(mobile, client).await?;

        let code = secret::random_code();
        let ttl = self.settings.code_ttl;
        let code_key = keys::sms_code(mobile);
        let msg = SmsMessage {
            mobile,
            code: &code,
            ttl_minutes: ttl.as_secs().div_ceil(60),
            lang,
        };
        let stored = async {
            self.store
                .put_code(&code_key, &self.code_mac(mobile, &code), ttl)
                .await?;
            if self.settings.expose_secrets {
                let dev = DevSms {
                    code: code.clone(),
                    message: msg.text(),
                };
                let json =
                    serde_json::to_vec(&dev).map_err(|e| StoreError::Unavailable(e.to_string()))?;
                self.store.set(&keys::dev_sms(mobile), &json, ttl).await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(e) = stored {
            self.limits.release_send(reservation).await;
            return Err(e.into());
        }

        match self.sms.send(&msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == SmsErrorKind::Unknown => {
                // It may have arrived: keep the code, the cooldown and every
                // counter, as for a message sent (SPEC §5).
                tracing::warn!(provider = e.provider, mobile = %mobile,
                    "SMS outcome unknown; treated as sent");
                Ok(())
            }
            Err(e) => {
                // Withdraw the code: a code nobody received must not be guessable.
                if let Err(se) = self.store.delete(&code_key).await {
                    tracing::error!(error = %se, "could not withdraw an undelivered code");
                }
                if self.settings.expose_secrets {
                    let _ = self.store.delete(&keys::dev_sms(mobile)).await;
                }
                self.limits.release_send(reservation).await;
                Err(e.into())
            }
        }
    }

    /// Checks a typed code; a match consumes it, a miss counts a guess.
    pub async fn verify_code(&self, mobile: &Mobile, code: &SmsCode) -> Result<(), FlowError> {
        let mac = self.code_mac(mobile, code.expose());
        match self
            .store
            .verify_code(&keys::sms_code(mobile), &mac, self.settings.max_guesses)
            .await?
        {
            CodeCheck::Match => {
                meter::code_verification("ok");
                if self.settings.expose_secrets {
                    let _ = self.store.delete(&keys::dev_sms(mobile)).await;
                }
                Ok(())
            }
            CodeCheck::Missing => {
                meter::code_verification("expired");
                Err(FlowError::CodeMissing)
            }
            CodeCheck::Wrong { remaining } => {
                meter::code_verification(if remaining == 0 { "too_many" } else { "wrong" });
                Err(FlowError::CodeWrong { remaining })
            }
        }
    }

    pub async fn dev_sms(&self, mobile: &Mobile) -> Result<Option<DevSms>, FlowError> {
        let v = self.store.get(&keys::dev_sms(mobile)).await?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn code_mac(&self, mobile: &Mobile, code: &str) -> [u8; 32] {
        self.secret
            .mac("sms-code", &[mobile.e164().as_bytes(), code.as_bytes()])
    }

    // ---- accounts ----------------------------------------------------------

    /// Registers `mobile` after its code checks out. The code is verified
    /// before the (costly) password hash, so guessing costs us no hashing.
    pub async fn register(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        password: &Password,
        name: Option<String>,
    ) -> Result<User, FlowError> {
        self.verify_code(mobile, code).await?;
        let password_hash = self.hasher.hash(password).await?;
        self.create_user(mobile, password_hash, name).await
    }

    /// Creates the user row; the unique constraint decides races.
    pub async fn create_user(
        &self,
        mobile: &Mobile,
        password_hash: String,
        name: Option<String>,
    ) -> Result<User, FlowError> {
        let new = NewUser {
            mobile: mobile.clone(),
            name: name.unwrap_or_else(|| mobile.display()),
            password_hash,
            created_at: self.clock.now(),
        };
        match self.users.create(&new).await {
            Ok(user) => {
                meter::registration();
                tracing::info!(user_id = user.id, mobile = %mobile, "user registered");
                Ok(user)
            }
            Err(RepoError::Duplicate) => Err(FlowError::MobileTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks credentials. Unknown numbers and wrong passwords look the same
    /// and cost the same (a dummy hash is verified). Only failures count
    /// toward the login limits (see `limits`).
    pub async fn login(
        &self,
        mobile: &Mobile,
        password: &Password,
        client: &ClientKey,
    ) -> Result<User, FlowError> {
        let ticket = match self.limits.login_attempt(mobile, client).await {
            Ok(t) => t,
            Err(e) => {
                if matches!(e, LimitError::Refused(_)) {
                    meter::login("locked");
                }
                return Err(e.into());
            }
        };
        let checked = async {
            let user = self.users.by_mobile(mobile).await?;
            let ok = self
                .hasher
                .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
                .await?;
            Ok::<_, FlowError>(user.filter(|_| ok))
        }
        .await;
        match checked {
            Ok(Some(user)) => {
                self.limits.login_succeeded(ticket, mobile).await;
                if user.disabled {
                    meter::login("disabled");
                    return Err(FlowError::UserDisabled);
                }
                meter::login("ok");
                tracing::info!(user_id = user.id, "login succeeded");
                Ok(user)
            }
            Ok(None) => {
                let counted = self.limits.login_failed(ticket, mobile, client).await;
                meter::login("bad_credentials");
                tracing::info!(mobile = %mobile, "login failed");
                counted?;
                Err(FlowError::BadCredentials)
            }
            Err(e) => {
                self.limits.login_abandoned(ticket).await;
                Err(e)
            }
        }
    }

    pub async fn user(&self, user_id: i64) -> Result<User, FlowError> {
        self.users
            .by_id(user_id)
            .await?
            .ok_or(FlowError::UserMissing)
    }

    // ---- sessions ----------------------------------------------------------

    /// Starts a session for `user` and returns its id (256 random bits). The
    /// store holds it under a hash of the id, and the user's index lists it;
    /// beyond `max_sessions_per_user` the oldest sessions end.
    pub async fn start_session(&self, user: &User) -> Result<String, FlowError> {
        let id = secret::random_hex(32);
        let hash = secret::sha256_hex(id.as_bytes());
        let data = SessionData {
            user_id: user.id,
            name: user.name.clone(),
            mobile: user.mobile.display(),
        };
        let json = serde_json::to_vec(&data).map_err(|e| FlowError::Internal(e.to_string()))?;
        let ttl = self.settings.session_ttl;
        self.store.set(&keys::session(&hash), &json, ttl).await?;
        let evicted = self
            .store
            .index_add(
                &keys::user_sessions(user.id),
                &hash,
                self.settings.max_sessions_per_user,
                ttl,
            )
            .await;
        let evicted = match evicted {
            Ok(e) => e,
            Err(e) => {
                // Unlisted, it could be neither capped nor ended with the
                // others: do not hand it out.
                let _ = self.store.delete(&keys::session(&hash)).await;
                return Err(e.into());
            }
        };
        for old in evicted {
            self.store.delete(&keys::session(&old)).await?;
            meter::session_evicted();
        }
        Ok(id)
    }

    /// The session's data, while its user exists and is enabled. A session
    /// of a deleted or disabled user is ended on sight, with every other
    /// session of that user. When the database cannot answer, the store's
    /// word stands (sessions keep working through a database outage).
    pub async fn session(&self, id: &str) -> Result<Option<SessionData>, FlowError> {
        if !is_token_shaped(id) {
            return Ok(None);
        }
        let Some(data) = self.stored_session(id).await? else {
            return Ok(None);
        };
        match self.users.by_id(data.user_id).await {
            Ok(Some(user)) if !user.disabled => Ok(Some(data)),
            Ok(_) => {
                tracing::info!(
                    user_id = data.user_id,
                    "session of a disabled or deleted user ended"
                );
                self.end_user_sessions(data.user_id).await?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "user lookup failed while checking a session; trusting the store");
                Ok(Some(data))
            }
        }
    }

    async fn stored_session(&self, id: &str) -> Result<Option<SessionData>, FlowError> {
        let v = self.store.get(&session_key(id)).await?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    pub async fn end_session(&self, id: &str) -> Result<(), FlowError> {
        if !is_token_shaped(id) {
            return Ok(());
        }
        let hash = secret::sha256_hex(id.as_bytes());
        if let Some(data) = self.stored_session(id).await? {
            self.store
                .index_remove(&keys::user_sessions(data.user_id), &hash)
                .await?;
        }
        self.store.delete(&keys::session(&hash)).await?;
        Ok(())
    }

    /// Ends every session of `user_id` (a disabled or deleted account).
    pub async fn end_user_sessions(&self, user_id: i64) -> Result<(), FlowError> {
        let index = keys::user_sessions(user_id);
        for hash in self.store.index_members(&index).await? {
            self.store.delete(&keys::session(&hash)).await?;
        }
        self.store.delete(&index).await?;
        Ok(())
    }

    // ---- the four-step registration (route set `steps`) ----------------------
    //
    // Step 1 is `request_code`. Each later step needs the one before within
    // `STEP_TTL`, from whoever holds step 2's token, or — for clients that
    // send none, unless `compat.steps_require_token` — from the address that
    // verified the number. The password is kept only as its hash.

    /// Step 2: the code checks out; returns the step token (128 random
    /// bits) that binds steps 3 and 4 to this client.
    pub async fn steps_verify(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        client: &ClientKey,
    ) -> Result<String, FlowError> {
        self.verify_code(mobile, code).await?;
        let token = secret::random_hex(16);
        let state = StepsVerified {
            client: client.as_str().to_owned(),
            token_hash: secret::sha256_hex(token.as_bytes()),
        };
        let json = serde_json::to_vec(&state).map_err(|e| FlowError::Internal(e.to_string()))?;
        self.store
            .set(&keys::steps_verified(mobile), &json, STEP_TTL)
            .await?;
        Ok(token)
    }

    /// Step 3: hash and keep the password.
    pub async fn steps_set_password(
        &self,
        mobile: &Mobile,
        password: &Password,
        by: &StepsClient<'_>,
    ) -> Result<(), FlowError> {
        self.steps_require_verified(mobile, by).await?;
        let hash = self.hasher.hash(password).await?;
        self.store
            .set(&keys::steps_password(mobile), hash.as_bytes(), STEP_TTL)
            .await?;
        Ok(())
    }

    /// Step 4: create the user with the kept password (taken once).
    pub async fn steps_finish(
        &self,
        mobile: &Mobile,
        nickname: Option<String>,
        by: &StepsClient<'_>,
    ) -> Result<User, FlowError> {
        self.steps_require_verified(mobile, by).await?;
        let hash = self
            .store
            .take(&keys::steps_password(mobile))
            .await?
            .ok_or(FlowError::StepMissing(Step::Password))?;
        let hash = String::from_utf8(hash).map_err(|e| FlowError::Internal(e.to_string()))?;
        let user = self.create_user(mobile, hash, nickname).await?;
        if let Err(e) = self.store.delete(&keys::steps_verified(mobile)).await {
            tracing::warn!(error = %e, "could not clear a finished registration");
        }
        Ok(user)
    }

    async fn steps_require_verified(
        &self,
        mobile: &Mobile,
        by: &StepsClient<'_>,
    ) -> Result<(), FlowError> {
        let state: Option<StepsVerified> = self
            .store
            .get(&keys::steps_verified(mobile))
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(state) = state else {
            return Err(FlowError::StepMissing(Step::Verified));
        };
        match by.token {
            Some(token) => {
                let given = secret::sha256_hex(token.as_bytes());
                if bool::from(given.as_bytes().ct_eq(state.token_hash.as_bytes())) {
                    Ok(())
                } else {
                    Err(FlowError::StepToken)
                }
            }
            None if self.settings.steps_require_token => Err(FlowError::StepToken),
            None if state.client == by.client.as_str() => Ok(()),
            None => Err(FlowError::StepMissing(Step::Verified)),
        }
    }

    /// Store and database answer, and a bounded store has room: readiness
    /// turns 503 at [`READY_FULLNESS`], before the store refuses writes.
    pub async fn ready(&self) -> Result<(), FlowError> {
        if let Some(full) = self.store.fullness() {
            meter::store_fullness(full);
            if full >= READY_FULLNESS {
                return Err(FlowError::Store(StoreError::Full));
            }
        }
        self.store.ping().await?;
        self.users.ping().await?;
        Ok(())
    }
}

/// Who is taking a step of the four-step registration: its address, and
/// the step token when it sent one.
pub struct StepsClient<'a> {
    pub client: &'a ClientKey,
    pub token: Option<&'a str>,
}

/// What step 2 leaves for steps 3 and 4.
#[derive(Serialize, Deserialize)]
struct StepsVerified {
    client: String,
    /// SHA-256 of the step token: a store dump holds no usable token.
    token_hash: String,
}

/// The share of a bounded store's room at which this instance stops
/// calling itself ready.
pub const READY_FULLNESS: f64 = 0.9;

/// How long each step of the four-step registration waits for the next.
const STEP_TTL: Duration = Duration::from_secs(120);

/// An optional display name: 1–32 characters, no control characters.
pub fn parse_nickname(raw: Option<&str>) -> Result<Option<String>, FlowError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if raw.chars().count() > 32 || raw.chars().any(char::is_control) {
        return Err(FlowError::Param(ParamError::Nickname));
    }
    Ok(Some(raw.to_owned()))
}

fn session_key(id: &str) -> String {
    keys::session(&secret::sha256_hex(id.as_bytes()))
}

fn is_token_shaped(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A required field: absent and empty are the same.
pub fn present<'a>(raw: Option<&'a str>, field: &'static str) -> Result<&'a str, FlowError> {
    match raw {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(FlowError::Param(ParamError::Missing(field))),
    }
}

pub fn parse_captcha_id(raw: Option<&str>, field: &'static str) -> Result<CaptchaId, FlowError> {
    CaptchaId::parse(present(raw, field)?).ok_or(FlowError::Param(ParamError::CaptchaId))
}

pub fn parse_captcha_answer(raw: Option<&str>) -> Result<CaptchaAnswer, FlowError> {
    Ok(CaptchaAnswer::new(present(raw, "image_code")?))
}

pub fn parse_sms_code(raw: Option<&str>) -> Result<SmsCode, FlowError> {
    SmsCode::parse(present(raw, "sms_code")?).ok_or(FlowError::Param(ParamError::Code))
}
