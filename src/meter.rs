//! Prometheus metrics: every name and label is defined here, recorded through
//! the `metrics` facade, and rendered on the admin listener. Labels are route
//! templates and small fixed sets, never raw paths or numbers.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the process-wide recorder once and returns its handle (`None` if
/// another recorder was installed first, e.g. by an embedding program).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            let upkeep = handle.clone();
            // Histograms need periodic upkeep; the thread lives as long as
            // the process, like the recorder.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    // Any token is a valid HTTP method: only the standard ones become labels.
    let method = match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
        _ => "OTHER",
    };
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!("phoneauth_http_requests_total", &labels).increment(1);
    histogram!("phoneauth_http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
}

pub fn captcha_issued() {
    counter!("phoneauth_captchas_issued_total").increment(1);
}

/// `outcome`: `ok`, `transient`, `rate_limited`, `rejected_number`, `config`.
pub fn sms_send(provider: &'static str, outcome: &'static str, elapsed: Duration) {
    counter!("phoneauth_sms_sends_total", "provider" => provider, "outcome" => outcome)
        .increment(1);
    histogram!("phoneauth_sms_send_duration_seconds", "provider" => provider)
        .record(elapsed.as_secs_f64());
}

/// `outcome`: `ok`, `wrong`, `expired` (absent or expired), `too_many` (the
/// guess that used up the code).
pub fn code_verification(outcome: &'static str) {
    counter!("phoneauth_code_verifications_total", "outcome" => outcome).increment(1);
}

/// `scope`: see [`crate::limits::Scope::as_str`].
pub fn limit_refusal(scope: &'static str) {
    counter!("phoneauth_limit_refusals_total", "scope" => scope).increment(1);
}

/// `outcome`: `ok`, `bad_credentials`, `locked`, `disabled`.
pub fn login(outcome: &'static str) {
    counter!("phoneauth_logins_total", "outcome" => outcome).increment(1);
}

/// `backend`: `store` or `database`.
pub fn backend_error(backend: &'static str) {
    counter!("phoneauth_backend_errors_total", "backend" => backend).increment(1);
}

pub fn registration() {
    counter!("phoneauth_registrations_total").increment(1);
}

/// A connection was accepted and admitted.
pub fn connection_opened() {
    counter!("phoneauth_connections_opened_total").increment(1);
}

/// A connection was closed at once because a cap was reached (`total` or
/// `per_ip`).
pub fn connection_refused(cap: &'static str) {
    counter!("phoneauth_connections_refused_total", "cap" => cap).increment(1);
}

/// An idle keep-alive connection was closed.
pub fn connection_idle_closed() {
    counter!("phoneauth_connections_idle_closed_total").increment(1);
}

/// A session ended because its user started more than `sessions.max_per_user`.
pub fn session_evicted() {
    counter!("phoneauth_sessions_evicted_total").increment(1);
}

/// A code was requested for a purpose (`register`, `login`, …), whatever
/// was then delivered.
pub fn code_requested(purpose: &'static str) {
    counter!("phoneauth_code_requests_total", "purpose" => purpose).increment(1);
}

/// Sessions ended by their user or an account change: `one`, `others`, `all`.
pub fn sessions_ended(scope: &'static str) {
    counter!("phoneauth_sessions_ended_total", "scope" => scope).increment(1);
}

/// An account event of SPEC §9: `code_login`, `code_signup`,
/// `password_reset`, `password_changed`, `mobile_changed`, `name_changed`,
/// `avatar_changed`, `identity_recorded`, `account_deleted`.
pub fn account_event(event: &'static str) {
    counter!("phoneauth_account_events_total", "event" => event).increment(1);
}

/// Entries on the block and safe lists, as this instance last read them.
pub fn list_entries(n: usize) {
    gauge!("phoneauth_list_entries").set(n as f64);
}

/// A send the defence refused (or, in `shadow` mode, would have), by
/// reason and country — never by number.
pub fn defence_refusal(reason: &'static str, country: &str, shadow: bool) {
    let name = if shadow {
        "phoneauth_defence_shadow_refusals_total"
    } else {
        "phoneauth_defence_refusals_total"
    };
    counter!(name, "reason" => reason, "country" => country.to_owned()).increment(1);
}

/// A delivery receipt applied (`delivered`, `failed`), by provider and
/// country: with the sends and verifications, the delivery and verification
/// rates.
pub fn sms_receipt(provider: &'static str, country: &str, status: &'static str) {
    let labels = [
        ("provider", provider.to_owned()),
        ("country", country.to_owned()),
        ("status", status.to_owned()),
    ];
    counter!("phoneauth_sms_receipts_total", &labels).increment(1);
}

/// A status callback refused (`unsigned`, `forged`, `malformed`,
/// `not_configured`).
pub fn sms_receipt_refused(provider: &'static str, reason: &'static str) {
    counter!("phoneauth_sms_receipts_refused_total", "provider" => provider, "reason" => reason)
        .increment(1);
}

/// A code verified, by country (with the sends, the verification rate).
pub fn code_verified(country: &str) {
    counter!("phoneauth_codes_verified_total", "country" => country.to_owned()).increment(1);
}

/// How full the memory store is (0 to 1); readiness fails at 0.9.
pub fn store_fullness(ratio: f64) {
    gauge!("phoneauth_store_fullness_ratio").set(ratio);
}
