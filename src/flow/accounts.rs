//! Accounts: registration with a verified code, and login with a password
//! under the lockout rules of `limits::lockout`.

use super::{Credentials, Flow, FlowError, Registration};
use crate::audit::Record;
use crate::domain::{Mobile, Purpose};
use crate::limits::{ClientKey, LimitError};
use crate::meter;
use crate::users::{NewUser, RepoError, User};

impl Flow {
    /// Registers a number after its code checks out. The code is checked
    /// before the (costly) password hash, so guessing costs us no hashing.
    ///
    /// A right code is held, not consumed, until the account is committed
    /// (SPEC §7: a crash must not cost the user their code): it is consumed
    /// once the account exists (or the number turns out to be taken), given
    /// back when the database or the hashing queue fails, and — if this
    /// instance dies in between — usable again when the hold ends
    /// ([`super::codes::CODE_HOLD`]). While held it is missing to everyone
    /// else, so one code still makes at most one account.
    pub async fn register(
        &self,
        r: &Registration,
        name: Option<String>,
    ) -> Result<User, FlowError> {
        let held = self
            .claim_code(&r.mobile, Purpose::Register, &r.code)
            .await?;
        let created = async {
            let password_hash = self.hasher.hash(&r.password).await?;
            self.create_user(&r.mobile, password_hash, name).await
        }
        .await;
        // A taken number cannot use the code either: it is consumed.
        let used = matches!(created, Ok(_) | Err(FlowError::MobileTaken));
        self.settle_code(held, used).await;
        created
    }

    /// Creates the user row; the unique constraint decides races.
    pub async fn create_user(
        &self,
        mobile: &Mobile,
        password_hash: String,
        name: Option<String>,
    ) -> Result<User, FlowError> {
        let chosen = name.is_some();
        let mut new = NewUser {
            mobile: mobile.clone(),
            name: name.unwrap_or_else(|| mobile.display()),
            password_hash,
            created_at: self.clock.now(),
        };
        let mut created = self.users.create(&new).await;
        if matches!(created, Err(RepoError::NameTaken)) && !chosen {
            // Someone chose this number's display form as their name: the
            // default gets a random tail instead.
            new.name = format!("{}-{}", new.name, crate::secret::random_hex(2));
            created = self.users.create(&new).await;
        }
        match created {
            Ok(user) => {
                meter::registration();
                self.record(Record::new("registered").user(user.id).mobile(mobile));
                tracing::info!(user_id = user.id, mobile = %mobile, "user registered");
                Ok(user)
            }
            Err(RepoError::Duplicate) => Err(FlowError::MobileTaken),
            Err(RepoError::NameTaken) => Err(FlowError::NameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks credentials. Unknown numbers and wrong passwords look the same
    /// and cost the same (a dummy hash is verified). Only failures count
    /// toward the login limits.
    pub async fn login(&self, c: &Credentials, client: &ClientKey) -> Result<User, FlowError> {
        let user = self.check_password(c, client).await?;
        meter::login("ok");
        tracing::info!(user_id = user.id, "login succeeded");
        self.record(
            Record::new("logged_in")
                .user(user.id)
                .mobile(&c.mobile)
                .detail("password"),
        );
        Ok(user)
    }

    /// The password check of a login, under its limits and counted as a
    /// login attempt (a wrong password is a failed login), without the
    /// login itself: for sensitive actions that ask for the password.
    pub(super) async fn check_password(
        &self,
        c: &Credentials,
        client: &ClientKey,
    ) -> Result<User, FlowError> {
        let mobile = &c.mobile;
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
                .verify(&c.password, user.as_ref().map(|u| u.password_hash.as_str()))
                .await?;
            Ok::<_, FlowError>(user.filter(|_| ok))
        }
        .await;
        match checked {
            Ok(Some(user)) => {
                self.limits.login_succeeded(ticket, mobile).await;
                if crate::passwords::is_legacy(&user.password_hash) {
                    self.upgrade_hash(&user, &c.password).await;
                }
                if user.disabled {
                    meter::login("disabled");
                    return Err(FlowError::UserDisabled);
                }
                Ok(user)
            }
            Ok(None) => {
                let counted = self.limits.login_failed(ticket, mobile, client).await;
                meter::login("bad_credentials");
                tracing::info!(mobile = %mobile, "login failed");
                self.record(Record::new("login_failed").mobile(mobile));
                counted?;
                Err(FlowError::BadCredentials)
            }
            Err(e) => {
                self.limits.login_abandoned(ticket).await;
                Err(e)
            }
        }
    }

    /// Replaces an imported site's hash with argon2id after the first
    /// login that proved the password; a failure is logged, and the next
    /// login tries again.
    async fn upgrade_hash(&self, user: &User, password: &crate::domain::Password) {
        let upgraded = async {
            let hash = self.hasher.hash(password).await?;
            let change = crate::users::UserChange::ReplaceHash {
                from: &user.password_hash,
                to: &hash,
            };
            self.users.update(user.id, change).await?;
            Ok::<_, FlowError>(())
        }
        .await;
        match upgraded {
            Ok(()) => tracing::info!(
                user_id = user.id,
                "imported password hash replaced by argon2id"
            ),
            Err(e) => {
                tracing::warn!(user_id = user.id, error = %e, "could not replace an imported password hash")
            }
        }
    }

    pub async fn user(&self, user_id: i64) -> Result<User, FlowError> {
        self.users
            .by_id(user_id)
            .await?
            .ok_or(FlowError::UserMissing)
    }
}
