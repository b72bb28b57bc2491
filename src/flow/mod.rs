//! The sign-up and sign-in flow that every route set calls, one file per
//! concern: [`captcha`], [`codes`] (SMS codes), [`accounts`] (registration
//! and login), [`sessions`] and [`steps`] (the four-step registration).
//! Inputs arrive typed ([`input`]); outcomes leave as [`FlowError`], which
//! says what happened and nothing about the wire: errno, HTTP status and
//! words are the HTTP layer's (`http::error`, `http::messages`).

mod account;
mod accounts;
mod admin;
mod captcha;
mod codes;
mod error;
pub mod input;
mod profile;
mod receipts;
mod sessions;
mod steps;

use std::sync::Arc;
use std::time::Duration;

pub use account::Proof;
pub use admin::{Period, Stats};
pub use codes::DevSms;
pub use error::{FlowError, ParamError, Step};
pub use input::{
    CaptchaProof, CodeRequest, CodeRequestFields, CredentialFields, Credentials, InputRules,
    Registration, RegistrationFields,
};
pub use sessions::{SessionData, SessionOrigin, SessionView, is_handle_shaped};
pub use steps::{STEP_TTL, StepsClient};

use crate::audit::{Audit, Record};
use crate::avatars::Avatars;
use crate::captcha::CaptchaRenderer;
use crate::clock::SharedClock;
use crate::defence::Defence;
use crate::limits::Limits;
use crate::meter;
use crate::passwords::PasswordHasher;
use crate::secret::ServerSecret;
use crate::sms::SmsChain;
use crate::store::{SharedStore, StoreError};
use crate::tokens::Tokens;
use crate::users::{RepoError, SharedUserRepo};

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
    /// `accounts.sign_up_by_code`.
    pub sign_up_by_code: bool,
    /// `accounts.hide_registered`: the enumeration-safe mode.
    pub hide_registered: bool,
    pub expose_secrets: bool,
    pub inputs: InputRules,
    /// The providers whose delivery receipts are configured: only their
    /// sends are recorded to await one.
    pub receipts_from: Vec<&'static str>,
}

/// How long a database look-up that a request can do without may take.
const OPTIONAL_LOOKUP_BOUND: Duration = Duration::from_millis(300);

/// A database look-up the request goes on without when the database is
/// down or slow (`None`, logged): bounded by [`OPTIONAL_LOOKUP_BOUND`] so the
/// rest of the request's budget stays for the store.
async fn optional_lookup<T>(
    lookup: impl std::future::Future<Output = Result<T, RepoError>>,
) -> Option<T> {
    match tokio::time::timeout(OPTIONAL_LOOKUP_BOUND, lookup).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database look-up failed");
            None
        }
        Err(_) => {
            tracing::warn!("database look-up timed out");
            None
        }
    }
}

/// The share of a bounded store's room at which this instance stops
/// calling itself ready.
pub const READY_FULLNESS: f64 = 0.9;

pub struct Flow {
    store: SharedStore,
    users: SharedUserRepo,
    sms: Arc<SmsChain>,
    clock: SharedClock,
    secret: ServerSecret,
    captcha: Arc<CaptchaRenderer>,
    hasher: Arc<PasswordHasher>,
    limits: Limits,
    avatars: Arc<Avatars>,
    defence: Arc<Defence>,
    audit: Arc<Audit>,
    tokens: Arc<Tokens>,
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
    pub avatars: Arc<Avatars>,
    pub defence: Arc<Defence>,
    pub audit: Arc<Audit>,
    pub tokens: Arc<Tokens>,
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
            avatars: p.avatars,
            defence: p.defence,
            audit: p.audit,
            tokens: p.tokens,
            settings: p.settings,
        }
    }

    /// The abuse defence: lists, anti-pumping, test numbers.
    pub fn defence(&self) -> &Arc<Defence> {
        &self.defence
    }

    /// The JWT issuer of SPEC §11.
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// The audit log.
    pub fn audit(&self) -> &Arc<Audit> {
        &self.audit
    }

    /// Records an audit event in the background.
    fn record(&self, r: Record<'_>) {
        self.audit.record(r);
    }

    /// What a valid input is, for the route sets that parse them.
    pub fn inputs(&self) -> &InputRules {
        &self.settings.inputs
    }

    /// Readiness of the store (SPEC §7): it can serve every key now, and a
    /// bounded store has room — it turns unready at [`READY_FULLNESS`],
    /// before it refuses writes.
    pub async fn store_ready(&self) -> Result<(), StoreError> {
        if let Some(full) = self.store.fullness() {
            meter::store_fullness(full);
            if full >= READY_FULLNESS {
                return Err(StoreError::Full);
            }
        }
        self.store.ready().await
    }

    /// Readiness of the database: it answers a query.
    pub async fn database_ready(&self) -> Result<(), RepoError> {
        self.users.ping().await
    }
}
