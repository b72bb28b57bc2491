//! SMS codes: sent in the order of SPEC §3 (client rate, captcha, whether
//! the number may have a code of this purpose, send limits, code, delivery),
//! stored as a MAC with a guess count under a key of their purpose (§9),
//! consumed by the first right guess or held while the work they pay for is
//! committed.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CodeRequest, Flow, FlowError, SessionData};
use crate::audit::Record;
use crate::defence::{Admission, Refusal};
use crate::domain::{Lang, Mobile, Purpose, SmsCode};
use crate::limits::{ClientKey, SendReservation};
use crate::meter;
use crate::secret;
use crate::sms::{SmsErrorKind, SmsMessage};
use crate::store::{CodeCheck, CodeClaim, StoreError, keys};
use crate::users::User;

/// How long a registration holds a right code while it commits the account;
/// after a crash, the code is usable again when this ends (SPEC §7: within
/// 15 s).
pub const CODE_HOLD: Duration = Duration::from_secs(15);

/// How often a taken number's owner is told that someone tried to register
/// it (the enumeration-safe mode).
const NOTICE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// What `/dev/sms/{mobile}` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevSms {
    pub code: String,
    pub message: String,
}

/// What a code request ends in for the number asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// A code that can be used.
    Code,
    /// Enumeration-safe mode, `register` on a taken number: the owner is
    /// told (once a day) instead.
    TakenNotice,
    /// Enumeration-safe mode, a code nobody could use: nothing is sent.
    Nothing,
    /// A test number: its fixed code, never sent (SPEC §10).
    Test,
}

/// A right code, held while the work it pays for is committed
/// ([`Flow::settle_code`] consumes or releases it).
#[must_use]
pub(super) struct HeldCode {
    key: String,
    mobile: Mobile,
    holder: [u8; 16],
}

impl Flow {
    /// Sends a fresh code of `req.purpose`. `session` is the requester's
    /// session, which `change_mobile` and `confirm` need.
    pub async fn request_code(
        self: &Arc<Self>,
        req: &CodeRequest,
        session: Option<&SessionData>,
        client: &ClientKey,
        lang: Lang,
    ) -> Result<(), FlowError> {
        let purpose = req.purpose;
        let session = match (purpose.needs_session(), session) {
            (true, None) => return Err(FlowError::NotLoggedIn),
            (_, s) => s,
        };
        if self.defence.lists().blocks_address(client.ip()) {
            return Err(self.refused(Refusal::Network, None).await);
        }
        self.limits.sms_request(client).await?;
        if let Some(proof) = &req.captcha {
            self.check_captcha(proof).await?;
        }
        let (mobile, delivery) = match (purpose, session) {
            // The code goes to the account's own number, whatever was asked
            // (the session's, which the session check just read).
            (Purpose::Confirm, Some(s)) => {
                let mobile = match Mobile::from_e164(&s.e164) {
                    Ok(m) => m,
                    Err(_) => self.user(s.user_id).await?.mobile,
                };
                (mobile, Delivery::Code)
            }
            _ => {
                let mobile = req
                    .mobile
                    .clone()
                    .ok_or(super::ParamError::Missing("mobile"))?;
                // The code is checked again where it is used, so a database
                // that is down or slow must not stop codes: the look-up gets
                // a short bound of its own.
                let account = super::optional_lookup(self.users.by_mobile(&mobile)).await;
                if account.is_none() {
                    tracing::warn!("user lookup failed before sending a code; continuing");
                }
                let delivery = self.delivery(purpose, account)?;
                (mobile, delivery)
            }
        };
        // A blocked number takes no cooldown or count: it is refused first.
        if self.defence.lists().blocks_number(&mobile) {
            return Err(self.refused(Refusal::Listed, Some(&mobile)).await);
        }
        // The same limits whatever is delivered: the enumeration-safe mode
        // must not show in the cooldown or the caps either. A test number's
        // code is fixed and never sent, nor counted in the budget; the
        // cooldown and the guess cap still hold.
        let test_code = self.defence.test_code(&mobile).map(str::to_owned);
        let reservation = self
            .limits
            .reserve_send(&mobile, client, test_code.is_none())
            .await?;
        if test_code.is_none() {
            let admitted = match self.defence.admit_send(&mobile).await {
                Ok(a) => a,
                Err(e) => {
                    self.limits.release_send(reservation).await;
                    return Err(e.into());
                }
            };
            match admitted {
                Admission::Allowed => {}
                Admission::WouldRefuse(refusal) => {
                    self.note_refusal(refusal, Some(&mobile), true).await;
                }
                Admission::Refused(refusal) => {
                    self.limits.release_send(reservation).await;
                    return Err(self.refused(refusal, Some(&mobile)).await);
                }
            }
        }
        // A test number is never sent anything, not even the notice.
        let delivery = match (&test_code, delivery) {
            (Some(_), Delivery::Code) => Delivery::Test,
            (Some(_), Delivery::TakenNotice) => Delivery::Nothing,
            (_, d) => d,
        };
        let code = test_code.unwrap_or_else(secret::random_code);
        let send_id = secret::random_hex(16);
        let msg = SmsMessage {
            mobile: &mobile,
            code: &code,
            ttl_minutes: self.settings.code_ttl.as_secs().div_ceil(60),
            lang,
            notice: delivery == Delivery::TakenNotice,
            purpose,
            send_id: &send_id,
        };
        // A code nobody is sent still takes the code's place, so every path
        // writes the same.
        let mac = match delivery {
            Delivery::Code | Delivery::Test => self.code_mac(&mobile, purpose, &code),
            _ => secret::random_bytes32(),
        };
        if let Err(e) = self.store_code(&msg, purpose, &mac, delivery).await {
            self.limits.release_send(reservation).await;
            return Err(e.into());
        }
        meter::code_requested(purpose.as_str());
        tracing::info!(purpose = %purpose, mobile = %mobile, "code requested");
        if !self.settings.hide_registered {
            return self.deliver(purpose, delivery, &msg, reservation).await;
        }
        // The answer must not wait on (and so show) what is delivered: the
        // outcome is the background's business, and the answer is OK.
        let (flow, mobile, code) = (Arc::clone(self), mobile.clone(), code.clone());
        let notice = msg.notice;
        tokio::spawn(async move {
            let msg = SmsMessage {
                mobile: &mobile,
                code: &code,
                ttl_minutes: flow.settings.code_ttl.as_secs().div_ceil(60),
                lang,
                notice,
                purpose,
                send_id: &send_id,
            };
            if let Err(e) = flow.deliver(purpose, delivery, &msg, reservation).await {
                tracing::warn!(error = %e, "a code was not delivered");
            }
        });
        Ok(())
    }

    /// Whether a number gets a code of `purpose`, from its account as the
    /// database told (`None`: it could not tell; the code is checked again
    /// where it is used).
    fn delivery(
        &self,
        purpose: Purpose,
        account: Option<Option<User>>,
    ) -> Result<Delivery, FlowError> {
        let Some(account) = account else {
            return Ok(Delivery::Code);
        };
        let hide = self.settings.hide_registered;
        let refuse = |e: FlowError| if hide { Ok(Delivery::Nothing) } else { Err(e) };
        match (purpose, account) {
            (Purpose::Register, Some(_)) if hide => Ok(Delivery::TakenNotice),
            (Purpose::Register | Purpose::ChangeMobile, Some(_)) => Err(FlowError::MobileTaken),
            (Purpose::Login | Purpose::Reset, Some(u)) if u.disabled => {
                refuse(FlowError::UserDisabled)
            }
            (Purpose::Login, None) if self.settings.sign_up_by_code => Ok(Delivery::Code),
            (Purpose::Login | Purpose::Reset, None) => refuse(FlowError::UserMissing),
            _ => Ok(Delivery::Code),
        }
    }

    /// Stores the code's MAC under its purpose, after withdrawing the
    /// number's codes of every other purpose: one live code per number, so
    /// switching purpose buys no extra guesses.
    async fn store_code(
        &self,
        msg: &SmsMessage<'_>,
        purpose: Purpose,
        mac: &[u8; 32],
        delivery: Delivery,
    ) -> Result<(), StoreError> {
        let mobile = msg.mobile;
        // On every path, whatever is delivered: the enumeration-safe mode
        // must take the same time for a number with or without an account.
        let others: Vec<String> = Purpose::ALL
            .into_iter()
            .filter(|p| *p != purpose)
            .map(|p| keys::sms_code(mobile, p))
            .collect();
        self.store.delete_all(&others).await?;
        let ttl = self.settings.code_ttl;
        self.store
            .put_code(&keys::sms_code(mobile, purpose), mac, ttl)
            .await?;
        if self.settings.expose_secrets && delivery != Delivery::Nothing {
            let dev = DevSms {
                code: if msg.notice {
                    String::new()
                } else {
                    msg.code.to_owned()
                },
                message: msg.text(),
            };
            let json =
                serde_json::to_vec(&dev).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            self.store.set(&keys::dev_sms(mobile), &json, ttl).await?;
        }
        Ok(())
    }

    /// Sends what `delivery` says. A failed send withdraws the code and
    /// gives the send back; an unknown outcome keeps both (it may have
    /// arrived: SPEC §5).
    async fn deliver(
        &self,
        purpose: Purpose,
        delivery: Delivery,
        msg: &SmsMessage<'_>,
        reservation: SendReservation,
    ) -> Result<(), FlowError> {
        match delivery {
            Delivery::Nothing => return Ok(()),
            Delivery::Test => {
                tracing::info!(mobile = %msg.mobile, "code for a test number, not sent");
                let detail = format!("{purpose}/test");
                self.record(Record::new("code_sent").mobile(msg.mobile).detail(detail));
                return Ok(());
            }
            Delivery::TakenNotice => {
                let once = self
                    .store
                    .set_nx(&keys::taken_notice(msg.mobile), b"1", NOTICE_EVERY)
                    .await?;
                if once.is_some() {
                    return Ok(());
                }
            }
            Delivery::Code => {}
        }
        match self.sms.send(msg).await {
            Ok(receipt) => {
                if !msg.notice {
                    let detail = format!("{purpose}/{}", receipt.provider);
                    self.record(Record::new("code_sent").mobile(msg.mobile).detail(detail));
                }
                if let Some(id) = &receipt.message_id {
                    self.await_receipt(receipt.provider, id, msg.mobile).await;
                }
                Ok(())
            }
            Err(e) if e.kind == SmsErrorKind::Unknown => {
                tracing::warn!(provider = e.provider, mobile = %msg.mobile,
                    "SMS outcome unknown; treated as sent");
                Ok(())
            }
            Err(e) if msg.notice => {
                tracing::warn!(error = %e, "the taken-number notice was not sent");
                Ok(())
            }
            Err(e) => {
                // Withdraw the code: a code nobody received must not be guessable.
                let key = keys::sms_code(msg.mobile, purpose);
                if let Err(se) = self.store.delete(&key).await {
                    tracing::error!(error = %se, "could not withdraw an undelivered code");
                }
                if self.settings.expose_secrets {
                    let _ = self.store.delete(&keys::dev_sms(msg.mobile)).await;
                }
                self.limits.release_send(reservation).await;
                Err(e.into())
            }
        }
    }

    /// Checks a typed code; a match consumes it, a miss counts a guess.
    pub async fn verify_code(
        &self,
        mobile: &Mobile,
        purpose: Purpose,
        code: &SmsCode,
    ) -> Result<(), FlowError> {
        let mac = self.code_mac(mobile, purpose, code.expose());
        let check = self
            .store
            .verify_code(
                &keys::sms_code(mobile, purpose),
                &mac,
                self.settings.max_guesses,
            )
            .await?;
        counted(check)?;
        self.code_verified(mobile, purpose).await;
        if self.settings.expose_secrets {
            let _ = self.store.delete(&keys::dev_sms(mobile)).await;
        }
        Ok(())
    }

    /// Checks a typed code like [`Flow::verify_code`], but a match holds the
    /// code for [`CODE_HOLD`] instead of consuming it: settle it with
    /// [`Flow::settle_code`] once the work it pays for is done or failed.
    pub(super) async fn claim_code(
        &self,
        mobile: &Mobile,
        purpose: Purpose,
        code: &SmsCode,
    ) -> Result<HeldCode, FlowError> {
        let mac = self.code_mac(mobile, purpose, code.expose());
        let mut holder = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut holder);
        let claim = CodeClaim {
            candidate: &mac,
            holder: &holder,
            max_guesses: self.settings.max_guesses,
            lease: CODE_HOLD,
        };
        let key = keys::sms_code(mobile, purpose);
        counted(self.store.claim_code(&key, claim).await?)?;
        self.code_verified(mobile, purpose).await;
        Ok(HeldCode {
            key,
            mobile: mobile.clone(),
            holder,
        })
    }

    /// Ends a hold, outside the request's budget (the usual reason to give
    /// a code back is a database that spent it). `used`: the code did its
    /// work (or can do none) and is consumed; otherwise it is usable again.
    /// A failure is logged: the hold then ends by itself.
    pub(super) async fn settle_code(&self, held: HeldCode, used: bool) {
        let store = self.store.clone();
        let dev = (used && self.settings.expose_secrets).then(|| keys::dev_sms(&held.mobile));
        crate::budget::cleanup(async move {
            let done = if used {
                store.delete(&held.key).await
            } else {
                store.release_code(&held.key, &held.holder).await
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, used, "could not settle a held code; its hold ends by itself");
            }
            if let Some(dev) = dev {
                let _ = store.delete(&dev).await;
            }
        })
        .await;
    }

    /// A right code: its scopes earn room against pumping, and it is
    /// recorded.
    async fn code_verified(&self, mobile: &Mobile, purpose: Purpose) {
        self.defence.verified(mobile).await;
        meter::code_verified(mobile.country());
        self.record(
            Record::new("code_verified")
                .mobile(mobile)
                .detail(purpose.as_str()),
        );
    }

    /// A refusal of the defence, noted ([`Flow::note_refusal`]).
    async fn refused(&self, refusal: Refusal, mobile: Option<&Mobile>) -> FlowError {
        self.note_refusal(refusal, mobile, false).await;
        FlowError::Refused(refusal)
    }

    /// Counts a refusal (or, in shadow mode, a would-be refusal): a metric,
    /// the hour's and day's count for the statistics, a log line with the
    /// country (never the number), and an audit record — at most one a
    /// minute per reason and prefix (or network), so that an attack cannot
    /// flood the audit log.
    pub(super) async fn note_refusal(
        &self,
        refusal: Refusal,
        mobile: Option<&Mobile>,
        shadow: bool,
    ) {
        let country = mobile.map_or("-", |m| m.country());
        let reason = refusal.reason();
        meter::defence_refusal(reason, country, shadow);
        tracing::info!(
            reason,
            country,
            shadow,
            "code request refused by the defence"
        );
        let label = if shadow {
            format!("shadow/{reason}")
        } else {
            reason.to_owned()
        };
        for (window, name) in [
            (Duration::from_secs(3600), "hour"),
            (Duration::from_secs(86_400), "day"),
        ] {
            if let Err(e) = self
                .store
                .incr_window(&keys::refusals(&label, name), window)
                .await
            {
                tracing::debug!(error = %e, "could not count a refusal");
            }
        }
        let scope = mobile.map_or("network", |m| m.pumping_prefix());
        let once = format!("audit:{{{scope}}}:refused:{label}");
        if let Ok(None) = self
            .store
            .set_nx(&once, b"1", Duration::from_secs(60))
            .await
        {
            let mut r = Record::new("code_refused").detail(label);
            if let Some(m) = mobile {
                r = r.mobile(m);
            }
            self.record(r);
        }
    }

    pub async fn dev_sms(&self, mobile: &Mobile) -> Result<Option<DevSms>, FlowError> {
        let v = self.store.get(&keys::dev_sms(mobile)).await?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn code_mac(&self, mobile: &Mobile, purpose: Purpose, code: &str) -> [u8; 32] {
        self.secret.mac(
            "sms-code",
            &[
                mobile.e164().as_bytes(),
                purpose.as_str().as_bytes(),
                code.as_bytes(),
            ],
        )
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
