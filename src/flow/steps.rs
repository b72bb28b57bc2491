//! The four-step registration (route set `steps`). Step 1 is
//! `request_code`. Each later step needs the one before within
//! [`STEP_TTL`], from whoever holds step 2's token, or — for clients that
//! send none, unless `compat.steps_require_token` — from the address that
//! verified the number. The password is kept only as its hash.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{Flow, FlowError, Step};
use crate::domain::{Mobile, Password, SmsCode};
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
}
