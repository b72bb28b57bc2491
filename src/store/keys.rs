//! Every key the flow writes. Keys about one mobile number share the hash tag
//! `{<E.164>}` so that, on Redis Cluster, they live in one slot.

use crate::domain::{CaptchaId, Mobile, Purpose};

pub fn captcha(id: &CaptchaId) -> String {
    format!("captcha:{{{}}}", id.as_str())
}

/// The live code of one purpose (SPEC §9: the purpose is in the key).
pub fn sms_code(m: &Mobile, purpose: Purpose) -> String {
    format!("sms:{{{}}}:code:{purpose}", m.e164())
}

/// The "someone tried to register your number" notice of the
/// enumeration-safe mode: at most one a day.
pub fn taken_notice(m: &Mobile) -> String {
    format!("sms:{{{}}}:notice", m.e164())
}

pub fn sms_cooldown(m: &Mobile) -> String {
    format!("sms:{{{}}}:cooldown", m.e164())
}

pub fn sms_daily(m: &Mobile) -> String {
    format!("sms:{{{}}}:day", m.e164())
}

pub fn login_failures_mobile(m: &Mobile) -> String {
    format!("login:{{{}}}:fail", m.e164())
}

/// Logins of this number whose password is being checked right now.
pub fn login_in_flight_mobile(m: &Mobile) -> String {
    format!("login:{{{}}}:inflight", m.e164())
}

pub fn login_failures_ip(ip: &str) -> String {
    format!("login:ip:{{{ip}}}:fail")
}

pub fn captcha_per_ip(ip: &str) -> String {
    format!("rl:captcha:{{{ip}}}")
}

pub fn sms_requests_per_ip(ip: &str) -> String {
    format!("rl:smsreq:{{{ip}}}")
}

pub fn sms_sent_per_ip(ip: &str) -> String {
    format!("rl:smssent:{{{ip}}}")
}

pub fn sms_budget() -> String {
    "rl:smsbudget".to_owned()
}

/// Sessions are keyed by a hash of the id, so a store dump holds no usable id.
pub fn session(id_hash: &str) -> String {
    format!("session:{id_hash}")
}

/// The index of one user's sessions (hashes of their ids), in the user's
/// own slot.
pub fn user_sessions(user_id: i64) -> String {
    format!("user:{{{user_id}}}:sessions")
}

/// The four-step flow: which client verified the number (step 2).
pub fn steps_verified(m: &Mobile) -> String {
    format!("steps:{{{}}}:verified", m.e164())
}

/// The four-step flow: the password hash set in step 3.
pub fn steps_password(m: &Mobile) -> String {
    format!("steps:{{{}}}:password", m.e164())
}

/// Refusals of the defence for one reason in the current hour or day, for
/// the statistics.
pub fn refusals(reason: &str, period: &str) -> String {
    format!("stats:{{refusals}}:{reason}:{period}")
}

/// A sent message awaiting its delivery receipt, by the vendor's id.
pub fn sms_receipt(provider: &str, message_id: &str) -> String {
    format!("receipt:{{{provider}:{message_id}}}")
}

pub fn dev_captcha(id: &CaptchaId) -> String {
    format!("dev:captcha:{{{}}}", id.as_str())
}

pub fn dev_sms(m: &Mobile) -> String {
    format!("dev:sms:{{{}}}", m.e164())
}
