//! Abuse limits, kept in the store so every instance shares them.
//!
//! Each limit is a fixed-window counter that opens on its first hit (the
//! store's clock decides when it closes). A send of an SMS reserves a place in
//! four limits in turn; when a later one refuses, or the send fails, the
//! places already taken are given back, so a refused request never eats a
//! quota.
//!
//! Per-client limits are checked before anything keyed by what the client
//! chose (a mobile number, a captcha id) is written: a client that is itself
//! refused leaves no state behind and cannot lock anyone out.
//!
//! Login failures and the lockout they lead to: [`lockout`].

use std::net::IpAddr;
use std::time::Duration;

mod lockout;

pub use lockout::LoginTicket;

use crate::config::LimitsConfig;
use crate::domain::Mobile;
use crate::store::{SharedStore, StoreError, keys};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

/// Which limit refused a request (also the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    CaptchaPerIp,
    SmsRequestsPerIp,
    Cooldown,
    DailyPerMobile,
    SentPerIp,
    Budget,
    Login,
    LoginPerIp,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CaptchaPerIp => "captcha_ip",
            Scope::SmsRequestsPerIp => "sms_request_ip",
            Scope::Cooldown => "cooldown",
            Scope::DailyPerMobile => "daily",
            Scope::SentPerIp => "ip",
            Scope::Budget => "budget",
            Scope::Login => "login",
            Scope::LoginPerIp => "login_ip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub scope: Scope,
    pub retry_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("refused by the {} limit", .0.scope.as_str())]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key a client is limited under: the address for IPv4, the /64 for IPv6
/// (one subscriber usually holds a whole /64).
#[derive(Debug, Clone)]
pub struct ClientKey {
    key: String,
    ip: IpAddr,
}

/// Two clients are the same client when they are limited as one (one /64).
impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for ClientKey {}

impl ClientKey {
    pub fn from_ip(ip: IpAddr) -> Self {
        let key = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        Self { key, ip }
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The client's address (for the network block list).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

/// Places taken by one SMS send, given back with [`Limits::release_send`].
#[derive(Debug, Default)]
#[must_use]
pub struct SendReservation {
    cooldown: Option<String>,
    counters: Vec<String>,
}

#[derive(Clone)]
pub struct Limits {
    store: SharedStore,
    cfg: LimitsConfig,
}

impl Limits {
    pub fn new(store: SharedStore, cfg: LimitsConfig) -> Self {
        Self { store, cfg }
    }

    pub async fn captcha(&self, client: &ClientKey) -> Result<(), LimitError> {
        self.count(
            &keys::captcha_per_ip(client.as_str()),
            self.cfg.captcha_per_ip_per_minute,
            MINUTE,
            Scope::CaptchaPerIp,
        )
        .await
        .map(|_| ())
    }

    pub async fn sms_request(&self, client: &ClientKey) -> Result<(), LimitError> {
        self.count(
            &keys::sms_requests_per_ip(client.as_str()),
            self.cfg.sms_requests_per_ip_per_minute,
            MINUTE,
            Scope::SmsRequestsPerIp,
        )
        .await
        .map(|_| ())
    }

    /// Takes a place in each send limit, in the documented order: cooldown per
    /// mobile, daily cap per mobile, hourly cap per client, global budget.
    /// `in_budget`: the send counts toward the daily budget (a test
    /// number's does not: it is never sent).
    pub async fn reserve_send(
        &self,
        mobile: &Mobile,
        client: &ClientKey,
        in_budget: bool,
    ) -> Result<SendReservation, LimitError> {
        // The client's own hourly cap first: a refused client writes nothing
        // keyed by the number it chose.
        let sent = self
            .store
            .peek_counter(&keys::sms_sent_per_ip(client.as_str()))
            .await?;
        if sent.count >= self.cfg.sms_sent_per_ip_per_hour {
            return Err(LimitError::Refused(Refusal {
                scope: Scope::SentPerIp,
                retry_after: sent.resets_in,
            }));
        }
        let mut r = SendReservation::default();
        let cooldown = keys::sms_cooldown(mobile);
        let ttl = Duration::from_secs(self.cfg.sms_cooldown_secs);
        if !ttl.is_zero() {
            if let Some(left) = self.store.set_nx(&cooldown, b"1", ttl).await? {
                return Err(LimitError::Refused(Refusal {
                    scope: Scope::Cooldown,
                    retry_after: left,
                }));
            }
            r.cooldown = Some(cooldown);
        }
        let steps = [
            (
                keys::sms_daily(mobile),
                self.cfg.sms_per_mobile_per_day,
                DAY,
                Scope::DailyPerMobile,
            ),
            (
                keys::sms_sent_per_ip(client.as_str()),
                self.cfg.sms_sent_per_ip_per_hour,
                HOUR,
                Scope::SentPerIp,
            ),
            (
                keys::sms_budget(),
                self.cfg.sms_budget_per_day,
                DAY,
                Scope::Budget,
            ),
        ];
        let steps = steps
            .into_iter()
            .filter(|s| in_budget || s.3 != Scope::Budget);
        for (key, limit, window, scope) in steps {
            match self.count(&key, limit, window, scope).await {
                Ok(()) => r.counters.push(key),
                Err(e) => {
                    if matches!(e, LimitError::Refused(_)) {
                        // The over-limit hit itself is taken back too.
                        r.counters.push(key);
                    }
                    self.release_send(r).await;
                    return Err(e);
                }
            }
        }
        Ok(r)
    }

    /// Gives back every place a reservation took. Best effort: a store error
    /// here is logged, and the places expire with their windows anyway.
    pub async fn release_send(&self, r: SendReservation) {
        let store = self.store.clone();
        crate::budget::cleanup(async move {
            if let Some(key) = r.cooldown
                && let Err(e) = store.delete(&key).await
            {
                tracing::warn!(error = %e, "could not release an SMS cooldown");
            }
            for key in r.counters {
                if let Err(e) = store.decr(&key).await {
                    tracing::warn!(error = %e, "could not release an SMS limit place");
                }
            }
        })
        .await;
    }

    async fn count(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        scope: Scope,
    ) -> Result<(), LimitError> {
        let c = self.store.incr_window(key, window).await?;
        if c.count > limit {
            return Err(LimitError::Refused(Refusal {
                scope,
                retry_after: c.resets_in,
            }));
        }
        Ok(())
    }
}

/// Seconds for `Retry-After`: rounded up, never 0.
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// What the limit tests share: limits over a memory store on a manual clock.
#[cfg(test)]
mod test_support {
    use std::sync::Arc;

    use super::{ClientKey, Limits};
    use crate::clock::ManualClock;
    use crate::config::LimitsConfig;
    use crate::domain::{Mobile, MobilePolicy};
    use crate::store::{MemoryStore, SharedStore};

    pub fn setup(cfg: LimitsConfig) -> (Limits, Arc<ManualClock>, SharedStore) {
        let clock = ManualClock::new();
        let store: SharedStore = MemoryStore::new(clock.clone(), 1 << 20);
        (Limits::new(store.clone(), cfg), clock, store)
    }

    pub fn mobile(n: &str) -> Mobile {
        Mobile::parse(n, &MobilePolicy::default()).expect("mobile")
    }

    pub fn ip(s: &str) -> ClientKey {
        ClientKey::from_ip(s.parse().expect("ip"))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{ip, mobile, setup};
    use super::*;

    #[tokio::test]
    async fn cooldown_refuses_a_second_send_until_it_expires() {
        let (l, clock, _) = setup(LimitsConfig::default());
        let m = mobile("13800000001");
        let _ = l
            .reserve_send(&m, &ip("10.0.0.1"), true)
            .await
            .expect("first");
        let Err(LimitError::Refused(r)) = l.reserve_send(&m, &ip("10.0.0.1"), true).await else {
            panic!("second send inside the cooldown must be refused");
        };
        assert_eq!(r.scope, Scope::Cooldown);
        assert_eq!(retry_after_secs(r.retry_after), 60);
        clock.advance(Duration::from_secs(60));
        assert!(l.reserve_send(&m, &ip("10.0.0.1"), true).await.is_ok());
    }

    #[tokio::test]
    async fn a_refusal_at_the_budget_gives_back_earlier_places() {
        let cfg = LimitsConfig {
            sms_budget_per_day: 1,
            ..LimitsConfig::default()
        };
        let (l, _, store) = setup(cfg);
        let _ = l
            .reserve_send(&mobile("13800000001"), &ip("10.0.0.1"), true)
            .await
            .expect("first");
        let second = mobile("13800000002");
        let Err(LimitError::Refused(r)) = l.reserve_send(&second, &ip("10.0.0.2"), true).await
        else {
            panic!("budget of one must refuse the second send");
        };
        assert_eq!(r.scope, Scope::Budget);
        // The refused number keeps no cooldown and no daily count.
        assert_eq!(
            store.get(&keys::sms_cooldown(&second)).await.expect("get"),
            None
        );
        assert_eq!(
            store
                .peek_counter(&keys::sms_daily(&second))
                .await
                .expect("peek")
                .count,
            0
        );
        assert_eq!(
            store
                .peek_counter(&keys::sms_budget())
                .await
                .expect("peek")
                .count,
            1
        );
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        assert_eq!(ip("2001:db8:1:2:3:4:5:6"), ip("2001:db8:1:2:ffff::1"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.1.2.3").as_str(), "10.1.2.3");
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
