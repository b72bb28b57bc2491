//! The four-step registration (route set `steps`). Step 1 is
//! `request_code`. Each later step needs the one before within
//! [`STEP_TTL`], from whoever holds step 2's token, or — for clients that
//! send none, unless `compat.steps_require_token` — from the address that
//! verified the number. Once a step has presented the token, steps without
//! it are refused for that number, and step 4 must come from whoever set the
//! password in step 3 (so a neighbour behind the same address cannot swap
//! the password in between). The password is kept only as its hash.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{Flow, FlowError, Step};
use crate::domain::{Mobile, Password, Purpose, SmsCode};
use crate::limits::ClientKey;
use crate::secret;
use crate::store::keys;
use crate::users::User;

/// How long each step of the four-step registration waits for the next.
pub const STEP_TTL: Duration = Duration::from_secs(120);

/// Who is taking a step: its address, and the step token when it sent one.
pub struct StepsClient<'a> {
    pub client: &'a ClientKey,
    pub token: Option<&'a str>,
}

impl<'a> StepsClient<'a> {
    pub fn new(client: &'a ClientKey, token: Option<&'a str>) -> Self {
        Self { client, token }
    }
}

/// What step 2 leaves for steps 3 and 4.
#[derive(Serialize, Deserialize)]
struct StepsVerified {
    client: String,
    /// SHA-256 of the step token: a store dump holds no usable token.
    token_hash: String,
    /// A later step presented the token: steps without it are refused now.
    #[serde(default)]
    token_seen: bool,
}

/// What step 3 leaves for step 4: the password's hash, and who set it.
#[derive(Serialize, Deserialize)]
struct StepsPassword {
    hash: String,
    by: String,
}

impl Flow {
    /// Step 2: the code checks out; returns the step token (128 random
    /// bits) that binds steps 3 and 4 to this client.
    pub async fn steps_verify(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        client: &ClientKey,
    ) -> Result<String, FlowError> {
        self.verify_code(mobile, Purpose::Register, code).await?;
        let token = secret::random_hex(16);
        let state = StepsVerified {
            client: client.as_str().to_owned(),
            token_hash: secret::sha256_hex(token.as_bytes()),
            token_seen: false,
        };
        let json = serde_json::to_vec(&state).map_err(|e| FlowError::Internal(e.to_string()))?;
        self.store
            .set(&keys::steps_verified(mobile), &json, STEP_TTL)
            .await?;
        Ok(token)
    }

    /// Step 3: hash and keep the password, with who set it.
    pub async fn steps_set_password(
        &self,
        mobile: &Mobile,
        password: &Password,
        by: &StepsClient<'_>,
    ) -> Result<(), FlowError> {
        let who = self.steps_require_verified(mobile, by).await?;
        let record = StepsPassword {
            hash: self.hasher.hash(password).await?,
            by: who,
        };
        let json = serde_json::to_vec(&record).map_err(|e| FlowError::Internal(e.to_string()))?;
        self.store
            .set(&keys::steps_password(mobile), &json, STEP_TTL)
            .await?;
        Ok(())
    }

    /// Step 4: create the user with the kept password (taken once), for
    /// whoever set it.
    pub async fn steps_finish(
        &self,
        mobile: &Mobile,
        nickname: Option<String>,
        by: &StepsClient<'_>,
    ) -> Result<User, FlowError> {
        let who = self.steps_require_verified(mobile, by).await?;
        let key = keys::steps_password(mobile);
        let record: StepsPassword = self
            .store
            .get(&key)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(FlowError::StepMissing(Step::Password))?;
        if record.by != who {
            return Err(FlowError::StepMissing(Step::Password));
        }
        // Taken once: of two racing step 4s only one gets it.
        self.store
            .take(&key)
            .await?
            .ok_or(FlowError::StepMissing(Step::Password))?;
        let user = self.create_user(mobile, record.hash, nickname).await?;
        if let Err(e) = self.store.delete(&keys::steps_verified(mobile)).await {
            tracing::warn!(error = %e, "could not clear a finished registration");
        }
        Ok(user)
    }

    /// Checks that step 2 was done for `mobile` by this client and answers
    /// who the client is: its token, or its address.
    async fn steps_require_verified(
        &self,
        mobile: &Mobile,
        by: &StepsClient<'_>,
    ) -> Result<String, FlowError> {
        let key = keys::steps_verified(mobile);
        let state: Option<StepsVerified> = self
            .store
            .get(&key)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(mut state) = state else {
            return Err(FlowError::StepMissing(Step::Verified));
        };
        match by.token {
            Some(token) => {
                let given = secret::sha256_hex(token.as_bytes());
                if !bool::from(given.as_bytes().ct_eq(state.token_hash.as_bytes())) {
                    return Err(FlowError::StepToken);
                }
                if !state.token_seen {
                    state.token_seen = true;
                    let json = serde_json::to_vec(&state)
                        .map_err(|e| FlowError::Internal(e.to_string()))?;
                    self.store.set(&key, &json, STEP_TTL).await?;
                }
                Ok(format!("token:{given}"))
            }
            None if self.settings.steps_require_token || state.token_seen => {
                Err(FlowError::StepToken)
            }
            None if state.client == by.client.as_str() => Ok(format!("addr:{}", state.client)),
            None => Err(FlowError::StepMissing(Step::Verified)),
        }
    }
}
