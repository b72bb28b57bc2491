//! Delivery receipts (SPEC §10): each send with a vendor id is recorded as
//! `sent` for three days; a verified receipt turns it `delivered` or
//! `failed` once, counted per provider and country. A failed delivery gives
//! its scope back the room the send took against pumping (nobody could
//! have used that code).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Flow;
use crate::domain::Mobile;
use crate::meter;
use crate::sms::receipts::{Delivery, Receipt};
use crate::store::keys;

/// How long a send waits for its receipt.
const RECEIPT_WAIT: Duration = Duration::from_secs(3 * 86_400);

/// A send as recorded for its receipt.
#[derive(Debug, Serialize, Deserialize)]
struct SentMessage {
    country: String,
    prefix: String,
}

impl Flow {
    /// Records a send for its receipt, when that provider's receipts are
    /// configured; a failure costs only that receipt.
    pub(super) async fn await_receipt(&self, provider: &str, message_id: &str, mobile: &Mobile) {
        if !self.settings.receipts_from.contains(&provider) {
            return;
        }
        let sent = SentMessage {
            country: mobile.country().to_owned(),
            prefix: mobile.pumping_prefix().to_owned(),
        };
        let Ok(json) = serde_json::to_vec(&sent) else {
            return;
        };
        let key = keys::sms_receipt(provider, message_id);
        if let Err(e) = self.store.set(&key, &json, RECEIPT_WAIT).await {
            tracing::debug!(error = %e, "could not record a send for its receipt");
        }
    }

    /// Applies a verified receipt; `false` when the send is unknown or was
    /// settled already (vendors repeat callbacks).
    pub async fn apply_receipt(&self, provider: &'static str, r: &Receipt) -> bool {
        // Taken, so applied once, whoever comes first: vendors repeat
        // callbacks.
        let key = keys::sms_receipt(provider, &r.message_id);
        let Ok(Some(bytes)) = self.store.take(&key).await else {
            return false;
        };
        let Ok(sent) = serde_json::from_slice::<SentMessage>(&bytes) else {
            return false;
        };
        meter::sms_receipt(provider, &sent.country, r.delivery.as_str());
        if r.delivery == Delivery::Failed {
            self.defence.undelivered(&sent.prefix, &sent.country).await;
        }
        true
    }
}
