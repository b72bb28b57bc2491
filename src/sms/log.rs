//! The development provider: writes the message to the log instead of sending
//! it. Its `[dev-sms]` line is the only log line that may hold a code.

use async_trait::async_trait;

use super::{SmsError, SmsMessage, SmsReceipt, SmsSender};

pub struct LogSender;

#[async_trait]
impl SmsSender for LogSender {
    fn name(&self) -> &'static str {
        crate::config::ProviderKind::Log.name()
    }

    async fn send(&self, msg: &SmsMessage<'_>) -> Result<SmsReceipt, SmsError> {
        tracing::warn!(
            target: "phoneauth::sms::dev",
            "[dev-sms] to {} (development provider, nothing was sent): {}",
            msg.mobile.masked(),
            msg.text()
        );
        Ok(SmsReceipt {
            provider: crate::config::ProviderKind::Log.name(),
            message_id: None,
            vendor_answer: "written to the log".into(),
        })
    }
}
