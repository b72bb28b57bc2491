//! Signed webhooks of the audit events (SPEC §11), in the Standard Webhooks
//! format: `webhook-id`, `webhook-timestamp` and `webhook-signature`
//! (`v1,` + Base64 HMAC-SHA256 of `id.timestamp.body` under the endpoint's
//! `whsec_` key).
//!
//! Each audit event is queued in the database outbox for each endpoint that
//! wants it — in the background, never delaying the request — and every
//! instance runs a sender that claims due messages with a lease (so one
//! instance sends each), posts them, and retries failures with a delay that
//! doubles from `webhooks.retry_initial_ms` (at most an hour) for 24 hours.
//! The outbox survives restarts: what was queued is sent when an instance
//! runs again.

use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::clock::SharedClock;
use crate::config::WebhookEndpoint;
use crate::secret;
use crate::users::{AuditEvent, OutboxMessage, SharedUserRepo};

/// How long a claimed message is this instance's to send: longer than a
/// whole batch can take (20 messages × 13 s at worst), so no other instance
/// takes a message this one is still sending.
const LEASE_MS: i64 = 300_000;
/// Messages claimed at once.
const BATCH: i64 = 20;
/// How often the sender looks for due messages.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two tries, and how long a message is tried.
const MAX_DELAY_MS: i64 = 3_600_000;
const GIVE_UP_AFTER_MS: i64 = 24 * 3_600_000;

pub struct Webhooks {
    endpoints: Arc<Vec<WebhookEndpoint>>,
    users: SharedUserRepo,
    clock: SharedClock,
    retry_initial_ms: i64,
    http: reqwest::Client,
}

impl Webhooks {
    pub fn new(
        endpoints: Vec<WebhookEndpoint>,
        retry_initial_ms: u64,
        users: SharedUserRepo,
        clock: SharedClock,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| format!("webhook HTTP client: {e}"))?;
        Ok(Self {
            endpoints: Arc::new(endpoints),
            users,
            clock,
            retry_initial_ms: retry_initial_ms as i64,
            http,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Queues `event` for every endpoint that wants it (called in the
    /// background by the audit log).
    pub async fn enqueue(&self, event: &AuditEvent) {
        let wanted: Vec<&WebhookEndpoint> = self
            .endpoints
            .iter()
            .filter(|e| e.wants(&event.event))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let payload = json!({
            "type": event.event,
            "timestamp": event.at_ms,
            "data": {
                "user_id": event.user_id,
                "mobile": event.mobile,
                "country": event.country,
                "client_net": event.client_net,
                "request_id": event.request_id,
                "detail": event.detail,
            },
        })
        .to_string();
        let now = self.now_ms();
        for endpoint in wanted {
            let m = OutboxMessage {
                id: 0,
                msg_id: format!("msg_{}", secret::random_hex(16)),
                endpoint: endpoint.url.clone(),
                event: event.event.clone(),
                payload: payload.clone(),
                created_ms: now,
                attempts: 0,
            };
            if let Err(e) = self.users.enqueue_webhook(&m, now).await {
                tracing::warn!(error = %e, event = %event.event, "could not queue a webhook");
            }
        }
    }

    /// Sends due messages for as long as the webhooks live.
    pub fn run_sender(self: &Arc<Self>) {
        if self.is_empty() {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(w) = weak.upgrade() else { return };
                let sent = w.send_due().await;
                drop(w);
                if sent == 0 {
                    tokio::time::sleep(POLL).await;
                }
            }
        });
    }

    /// Claims and sends one batch; how many were claimed.
    async fn send_due(&self) -> usize {
        let now = self.now_ms();
        let due = match self.users.claim_webhooks(now, LEASE_MS, BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the webhook outbox");
                return 0;
            }
        };
        for m in &due {
            let delivered = self.send(m).await;
            let now = self.now_ms();
            let (next, done) = if delivered {
                (now, Some(now))
            } else if now - m.created_ms >= GIVE_UP_AFTER_MS {
                tracing::warn!(msg_id = %m.msg_id, event = %m.event, attempts = m.attempts + 1,
                    "webhook given up after 24 hours");
                (now, Some(now))
            } else {
                let doubling = 1i64 << m.attempts.clamp(0, 20);
                let delay = self
                    .retry_initial_ms
                    .saturating_mul(doubling)
                    .min(MAX_DELAY_MS);
                (now + delay, None)
            };
            if let Err(e) = self.users.settle_webhook(m.id, next, done).await {
                tracing::warn!(error = %e, "could not record a webhook attempt; it is tried again when its lease ends");
            }
        }
        due.len()
    }

    /// One attempt; `true` on a 2xx answer.
    async fn send(&self, m: &OutboxMessage) -> bool {
        let Some(endpoint) = self.endpoints.iter().find(|e| e.url == m.endpoint) else {
            tracing::warn!(msg_id = %m.msg_id, "webhook endpoint no longer configured; dropped");
            return true;
        };
        let Some(key) = endpoint.key() else {
            return true;
        };
        let timestamp = self.clock.now().unix_timestamp();
        let signature = sign(&key, &m.msg_id, timestamp, &m.payload);
        let sent = self
            .http
            .post(&m.endpoint)
            .header("content-type", "application/json")
            .header("webhook-id", &m.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(m.payload.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::info!(msg_id = %m.msg_id, status = r.status().as_u16(), "webhook refused; retrying later");
                false
            }
            Err(e) => {
                // Without the URL: a receiver's address may carry its secret.
                let e = e.without_url();
                tracing::info!(msg_id = %m.msg_id, error = %e, "webhook not delivered; retrying later");
                false
            }
        }
    }
}

/// The Standard Webhooks signature of one message.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries (`MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, message
    /// `msg_p5jXN8AQM9LWM0D4loKWxJek`, timestamp 1614265330).
    #[test]
    fn signatures_match_the_reference_example() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("key");
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
