//! The life of an account after registration (SPEC §9): sign in with a
//! code, password reset and change, mobile change, deletion.
//!
//! Every code that pays for a database change is held, not consumed, until
//! the change is committed (as in registration): consumed once it did its
//! work or can do none, given back when the store, database or hashing
//! failed on the way.

use super::codes::HeldCode;
use super::{Credentials, Flow, FlowError, SessionData};
use crate::audit::Record;
use crate::domain::{Mobile, Password, Purpose, SmsCode};
use crate::limits::ClientKey;
use crate::meter;
use crate::passwords::NO_PASSWORD;
use crate::users::{User, UserChange};

/// Who is asking, for a sensitive action: the password, or a `confirm`
/// code sent to the account's own number.
#[derive(Debug)]
pub enum Proof {
    Password(Password),
    Code(SmsCode),
}

impl FlowError {
    /// Whether the failure was the service's (store, database, hashing),
    /// so that a code spent on it is given back.
    fn is_service_failure(&self) -> bool {
        matches!(
            self,
            FlowError::Store(_) | FlowError::Database(_) | FlowError::Busy | FlowError::Internal(_)
        )
    }
}

/// Whether a held code did its work (or can do none) after `outcome`.
fn spent<T>(outcome: &Result<T, FlowError>) -> bool {
    !matches!(outcome, Err(e) if e.is_service_failure())
}

impl Flow {
    /// Signs in with a `login` code; with `accounts.sign_up_by_code` a
    /// number without an account gets one (`created`). A right code clears
    /// the number's failed logins.
    pub async fn code_login(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
    ) -> Result<(User, bool), FlowError> {
        let held = self.claim_code(mobile, Purpose::Login, code).await?;
        let outcome = self.code_login_account(mobile).await;
        self.settle_code(held, spent(&outcome)).await;
        let (user, created) = outcome?;
        self.limits.clear_login_failures(mobile).await;
        meter::account_event(if created { "code_signup" } else { "code_login" });
        tracing::info!(user_id = user.id, created, "signed in with a code");
        self.record(
            Record::new("logged_in")
                .user(user.id)
                .mobile(mobile)
                .detail("code"),
        );
        Ok((user, created))
    }

    async fn code_login_account(&self, mobile: &Mobile) -> Result<(User, bool), FlowError> {
        match self.users.by_mobile(mobile).await? {
            Some(u) if u.disabled => Err(FlowError::UserDisabled),
            Some(u) => Ok((u, false)),
            None if self.settings.sign_up_by_code => {
                match self.create_user(mobile, NO_PASSWORD.to_owned(), None).await {
                    Ok(u) => Ok((u, true)),
                    // Registered meanwhile: the code still proves the number.
                    Err(FlowError::MobileTaken) => self
                        .users
                        .by_mobile(mobile)
                        .await?
                        .filter(|u| !u.disabled)
                        .map(|u| (u, false))
                        .ok_or(FlowError::UserMissing),
                    Err(e) => Err(e),
                }
            }
            None => Err(FlowError::UserMissing),
        }
    }

    /// Sets a new password with a `reset` code: every session of the user
    /// ends and the number's failed logins are cleared. The caller starts
    /// the new session.
    pub async fn reset_password(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        password: &Password,
    ) -> Result<User, FlowError> {
        let held = self.claim_code(mobile, Purpose::Reset, code).await?;
        let outcome = async {
            let user = match self.users.by_mobile(mobile).await? {
                Some(u) if u.disabled => return Err(FlowError::UserDisabled),
                Some(u) => u,
                None => return Err(FlowError::UserMissing),
            };
            self.set_password(&user, password).await?;
            Ok(user)
        }
        .await;
        self.settle_code(held, spent(&outcome)).await;
        let user = outcome?;
        self.end_user_sessions(user.id).await?;
        self.limits.clear_login_failures(mobile).await;
        meter::account_event("password_reset");
        tracing::info!(user_id = user.id, "password reset");
        self.record(Record::new("password_reset").user(user.id).mobile(mobile));
        Ok(user)
    }

    /// Changes the password after checking the old one (a login attempt,
    /// under the login limits); every other session ends.
    pub async fn change_password(
        &self,
        session: &SessionData,
        session_id: &str,
        old: Password,
        new: &Password,
        client: &ClientKey,
    ) -> Result<(), FlowError> {
        let user = self.user(session.user_id).await?;
        self.prove(&user, Proof::Password(old), client).await?;
        self.set_password(&user, new).await?;
        self.end_other_sessions(user.id, session_id).await?;
        meter::account_event("password_changed");
        tracing::info!(user_id = user.id, "password changed");
        self.record(
            Record::new("password_changed")
                .user(user.id)
                .mobile(&user.mobile),
        );
        Ok(())
    }

    async fn set_password(&self, user: &User, password: &Password) -> Result<(), FlowError> {
        let hash = self.hasher.hash(password).await?;
        if !self
            .users
            .update(user.id, UserChange::Password(&hash))
            .await?
        {
            return Err(FlowError::UserMissing);
        }
        Ok(())
    }

    /// Moves the account to `mobile`, proven by a `change_mobile` code sent
    /// there and by `proof` of the owner; every other session ends. The
    /// unique constraint decides a race with a registration of the number.
    pub async fn change_mobile(
        &self,
        session: &SessionData,
        session_id: &str,
        mobile: &Mobile,
        code: &SmsCode,
        proof: Proof,
        client: &ClientKey,
    ) -> Result<User, FlowError> {
        let user = self.user(session.user_id).await?;
        if user.mobile == *mobile {
            return Err(FlowError::MobileTaken);
        }
        let owner = self.prove(&user, proof, client).await?;
        let held = match self.claim_code(mobile, Purpose::ChangeMobile, code).await {
            Ok(h) => h,
            Err(e) => {
                self.settle_proof(owner, false).await;
                return Err(e);
            }
        };
        let outcome = self.move_account(&user, mobile).await;
        // A taken number leaves the owner's proof good for another try.
        let proof_spent = spent(&outcome) && !matches!(outcome, Err(FlowError::MobileTaken));
        self.settle_code(held, spent(&outcome)).await;
        self.settle_proof(owner, proof_spent).await;
        outcome?;
        self.end_other_sessions(user.id, session_id).await?;
        let moved = self.user(user.id).await?;
        self.refresh_sessions(&moved).await;
        meter::account_event("mobile_changed");
        tracing::info!(user_id = user.id, from = %user.mobile, to = %mobile, "mobile changed");
        let from = format!("from {}", user.mobile.masked());
        self.record(
            Record::new("mobile_changed")
                .user(user.id)
                .mobile(mobile)
                .detail(from),
        );
        Ok(moved)
    }

    async fn move_account(&self, user: &User, mobile: &Mobile) -> Result<(), FlowError> {
        let (old, new) = (user.mobile.display(), mobile.display());
        let renamed = UserChange::Mobile {
            mobile,
            rename: Some((&old, &new)),
        };
        let moved = match self.users.update(user.id, renamed).await {
            // The new number's display form is someone's chosen name: the
            // name stays as it was.
            Err(crate::users::RepoError::NameTaken) => {
                let keep = UserChange::Mobile {
                    mobile,
                    rename: None,
                };
                self.users.update(user.id, keep).await
            }
            other => other,
        };
        match moved {
            Ok(true) => Ok(()),
            Ok(false) => Err(FlowError::UserMissing),
            Err(crate::users::RepoError::Duplicate) => Err(FlowError::MobileTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the account: the row with its profile and identity data, the
    /// avatar, and every session. The number is free to register again.
    pub async fn delete_account(
        &self,
        session: &SessionData,
        proof: Proof,
        client: &ClientKey,
    ) -> Result<(), FlowError> {
        let user = self.user(session.user_id).await?;
        let owner = self.prove(&user, proof, client).await?;
        let deleted = self.users.delete(user.id).await.map_err(FlowError::from);
        self.settle_proof(owner, spent(&deleted)).await;
        let deleted = deleted?.ok_or(FlowError::UserMissing)?;
        self.end_user_sessions(user.id).await?;
        if let Some(avatar) = deleted.avatar_url {
            self.discard_avatar(avatar).await;
        }
        meter::account_event("account_deleted");
        tracing::info!(user_id = user.id, mobile = %user.mobile, "account deleted");
        self.record(
            Record::new("account_deleted")
                .user(user.id)
                .mobile(&user.mobile),
        );
        Ok(())
    }

    /// Checks that the owner is asking: the password (counted as a login
    /// attempt) or a `confirm` code, which is held until the action is done.
    async fn prove(
        &self,
        user: &User,
        proof: Proof,
        client: &ClientKey,
    ) -> Result<Option<HeldCode>, FlowError> {
        match proof {
            Proof::Password(password) => {
                let credentials = Credentials {
                    mobile: user.mobile.clone(),
                    password,
                };
                self.check_password(&credentials, client).await?;
                Ok(None)
            }
            Proof::Code(code) => Ok(Some(
                self.claim_code(&user.mobile, Purpose::Confirm, &code)
                    .await?,
            )),
        }
    }

    async fn settle_proof(&self, proof: Option<HeldCode>, used: bool) {
        if let Some(held) = proof {
            self.settle_code(held, used).await;
        }
    }
}
