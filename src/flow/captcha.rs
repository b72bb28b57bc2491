//! Image captchas: drawn, stored as a MAC of the answer under the client's
//! id, and taken in one step when checked (one image, one guess).

use subtle::ConstantTimeEq;

use super::{CaptchaProof, Flow, FlowError};
use crate::domain::CaptchaId;
use crate::limits::ClientKey;
use crate::meter;
use crate::store::keys;

impl Flow {
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
    pub async fn check_captcha(&self, proof: &CaptchaProof) -> Result<(), FlowError> {
        let id = &proof.id;
        let stored = self.store.take(&keys::captcha(id)).await?;
        if self.settings.expose_secrets {
            let _ = self.store.delete(&keys::dev_captcha(id)).await;
        }
        let stored = stored.ok_or(FlowError::CaptchaMissing)?;
        let given = self.captcha_mac(id, &proof.answer.normalised());
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
}
