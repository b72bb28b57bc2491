//! SMS codes: sent in the order of SPEC §3 (client rate, captcha, already
//! registered, send limits, code, delivery), stored as a MAC with a guess
//! count, consumed by the first right guess.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CodeRequest, Flow, FlowError};
use crate::domain::{Lang, Mobile, SmsCode};
use crate::limits::ClientKey;
use crate::meter;
use crate::secret;
use crate::sms::{SmsErrorKind, SmsMessage};
use crate::store::{CodeCheck, CodeClaim, StoreError, keys};

/// How long a registration holds a right code while it commits the account;
/// after a crash, the code is usable again when this ends (SPEC §7: within
/// 15 s).
pub const CODE_HOLD: Duration = Duration::from_secs(15);

/// What `/dev/sms/{mobile}` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevSms {
    pub code: String,
    pub message: String,
}

impl Flow {
    /// Sends a fresh code to the requested number.
    pub async fn request_code(
        &self,
        req: &CodeRequest,
        client: &ClientKey,
        lang: Lang,
    ) -> Result<(), FlowError> {
        let mobile = &req.mobile;
        self.limits.sms_request(client).await?;
        if let Some(proof) = &req.captcha {
            self.check_captcha(proof).await?;
        }
        // Registration checks again, so a database that is down or slow must
        // not stop codes: the look-up gets a short bound of its own and
        // leaves the rest of the request's budget to the store.
        match super::optional_lookup(self.users.by_mobile(mobile)).await {
            Some(Some(_)) => return Err(FlowError::MobileTaken),
            Some(None) => {}
            None => tracing::warn!("user lookup failed before sending a code; continuing"),
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
        let check = self
            .store
            .verify_code(&keys::sms_code(mobile), &mac, self.settings.max_guesses)
            .await?;
        counted(check)?;
        if self.settings.expose_secrets {
            let _ = self.store.delete(&keys::dev_sms(mobile)).await;
        }
        Ok(())
    }

    /// Checks a typed code like [`Flow::verify_code`], but a match holds the
    /// code for [`CODE_HOLD`] instead of consuming it; returns the token of
    /// this hold, which releases it.
    pub(super) async fn claim_code(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
    ) -> Result<[u8; 16], FlowError> {
        let mac = self.code_mac(mobile, code.expose());
        let mut holder = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut holder);
        let claim = CodeClaim {
            candidate: &mac,
            holder: &holder,
            max_guesses: self.settings.max_guesses,
            lease: CODE_HOLD,
        };
        counted(
            self.store
                .claim_code(&keys::sms_code(mobile), claim)
                .await?,
        )?;
        Ok(holder)
    }

    /// The held code did its work: consume it (outside the request's
    /// budget; a failure is logged, and the code stays unusable until its
    /// hold ends).
    pub(super) async fn consume_claimed_code(&self, mobile: &Mobile) {
        let store = self.store.clone();
        let (code, dev) = (keys::sms_code(mobile), keys::dev_sms(mobile));
        let dev = self.settings.expose_secrets.then_some(dev);
        crate::budget::cleanup(async move {
            if let Err(e) = store.delete(&code).await {
                tracing::warn!(error = %e, "could not consume a used code");
            }
            if let Some(dev) = dev {
                let _ = store.delete(&dev).await;
            }
        })
        .await;
    }

    /// The held code could not be used: give it back for another try
    /// (outside the request's budget: the usual reason is that it was spent
    /// on a failing database).
    pub(super) async fn release_claimed_code(&self, mobile: &Mobile, holder: [u8; 16]) {
        let (store, key) = (self.store.clone(), keys::sms_code(mobile));
        crate::budget::cleanup(async move {
            if let Err(e) = store.release_code(&key, &holder).await {
                tracing::warn!(error = %e, "could not release a held code; it is usable again when the hold ends");
            }
        })
        .await;
    }

    pub async fn dev_sms(&self, mobile: &Mobile) -> Result<Option<DevSms>, FlowError> {
        let v = self.store.get(&keys::dev_sms(mobile)).await?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn code_mac(&self, mobile: &Mobile, code: &str) -> [u8; 32] {
        self.secret
            .mac("sms-code", &[mobile.e164().as_bytes(), code.as_bytes()])
    }
}

/// A code check's outcome as the flow's, counted.
fn counted(check: CodeCheck) -> Result<(), FlowError> {
    match check {
        CodeCheck::Match => {
            meter::code_verification("ok");
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
