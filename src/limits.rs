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
//! Logins count failures, never successes. Per number the count is strict: a
//! password check starts only while failures plus checks in flight stay
//! within `login_failures`, so parallel guesses cannot slip past it; an
//! attempt that finds the places taken by checks in flight waits for them
//! (briefly) instead of being refused, so the owner's own concurrent logins
//! never refuse each other.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::LimitsConfig;
use crate::domain::Mobile;
use crate::store::{SharedStore, StoreError, keys};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);
/// A password check in flight holds its place at most this long (a crashed
/// instance's places come back by themselves).
const LOGIN_IN_FLIGHT_TTL: Duration = Duration::from_secs(30);
/// How long a login waits for checks in flight on the same number to finish.
const LOGIN_QUEUE_WAIT: Duration = Duration::from_secs(3);
const LOGIN_QUEUE_POLL: Duration = Duration::from_millis(20);

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey(String);

impl ClientKey {
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(v4.to_string()),
                None => {
                    let s = v6.segments();
                    Self(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
                }
            },
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password check's place among a number's login attempts; give it back
/// with [`Limits::login_failed`], [`Limits::login_succeeded`] or
/// [`Limits::login_abandoned`].
#[derive(Debug)]
#[must_use]
pub struct LoginTicket {
    in_flight: String,
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
    pub async fn reserve_send(
        &self,
        mobile: &Mobile,
        client: &ClientKey,
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
        if let Some(key) = r.cooldown
            && let Err(e) = self.store.delete(&key).await
        {
            tracing::warn!(error = %e, "could not release an SMS cooldown");
        }
        for key in r.counters {
            if let Err(e) = self.store.decr(&key).await {
                tracing::warn!(error = %e, "could not release an SMS limit place");
            }
        }
    }

    /// Admits a password check for `mobile` from `client`, or refuses it:
    /// first by the client's own failures (then nothing about the number is
    /// written), then by the number's failures plus the checks in flight.
    pub async fn login_attempt(
        &self,
        mobile: &Mobile,
        client: &ClientKey,
    ) -> Result<LoginTicket, LimitError> {
        let by_client = self
            .store
            .peek_counter(&keys::login_failures_ip(client.as_str()))
            .await?;
        if by_client.count >= self.cfg.login_failures_per_ip {
            return Err(LimitError::Refused(Refusal {
                scope: Scope::LoginPerIp,
                retry_after: by_client.resets_in,
            }));
        }
        let failures = keys::login_failures_mobile(mobile);
        let in_flight = keys::login_in_flight_mobile(mobile);
        let limit = self.cfg.login_failures;
        let give_up = tokio::time::Instant::now() + LOGIN_QUEUE_WAIT;
        loop {
            let failed = self.store.peek_counter(&failures).await?;
            if failed.count >= limit {
                return Err(LimitError::Refused(Refusal {
                    scope: Scope::Login,
                    retry_after: failed.resets_in,
                }));
            }
            let checking = self
                .store
                .incr_window(&in_flight, LOGIN_IN_FLIGHT_TTL)
                .await?;
            // Read again after taking the place: a check that failed
            // meanwhile counted its failure before giving its place back.
            let failed = self.store.peek_counter(&failures).await?;
            if failed.count + checking.count <= limit {
                return Ok(LoginTicket { in_flight });
            }
            self.store.decr(&in_flight).await?;
            if tokio::time::Instant::now() >= give_up {
                return Err(LimitError::Refused(Refusal {
                    scope: Scope::Login,
                    retry_after: Duration::from_secs(1),
                }));
            }
            tokio::time::sleep(LOGIN_QUEUE_POLL).await;
        }
    }

    /// The password was wrong (or the number unknown): one failure for the
    /// number and one for the client.
    pub async fn login_failed(
        &self,
        ticket: LoginTicket,
        mobile: &Mobile,
        client: &ClientKey,
    ) -> Result<(), StoreError> {
        let window = Duration::from_secs(self.cfg.login_window_secs);
        let counted = async {
            self.store
                .incr_window(&keys::login_failures_mobile(mobile), window)
                .await?;
            self.store
                .incr_window(&keys::login_failures_ip(client.as_str()), window)
                .await
        }
        .await;
        self.release_login(ticket).await;
        counted.map(|_| ())
    }

    /// The password was right: the number's failures are cleared (the
    /// client's are not: one right password must not reset a client that is
    /// guessing many numbers).
    pub async fn login_succeeded(&self, ticket: LoginTicket, mobile: &Mobile) {
        self.release_login(ticket).await;
        if let Err(e) = self
            .store
            .delete(&keys::login_failures_mobile(mobile))
            .await
        {
            tracing::warn!(error = %e, "could not clear a number's login failures");
        }
    }

    /// The check did not finish (store, database or hashing trouble):
    /// neither a failure nor a success.
    pub async fn login_abandoned(&self, ticket: LoginTicket) {
        self.release_login(ticket).await;
    }

    async fn release_login(&self, ticket: LoginTicket) {
        if let Err(e) = self.store.decr(&ticket.in_flight).await {
            tracing::warn!(error = %e, "could not release a login place; it expires by itself");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::MobilePolicy;
    use crate::store::MemoryStore;
    use std::sync::Arc;

    fn setup(cfg: LimitsConfig) -> (Limits, Arc<ManualClock>, SharedStore) {
        let clock = ManualClock::new();
        let store: SharedStore = MemoryStore::new(clock.clone(), 1 << 20);
        (Limits::new(store.clone(), cfg), clock, store)
    }

    fn mobile(n: &str) -> Mobile {
        Mobile::parse(n, &MobilePolicy::default()).expect("mobile")
    }

    fn ip(s: &str) -> ClientKey {
        ClientKey::from_ip(s.parse().expect("ip"))
    }

    #[tokio::test]
    async fn cooldown_refuses_a_second_send_until_it_expires() {
        let (l, clock, _) = setup(LimitsConfig::default());
        let m = mobile("13800000001");
        let _ = l.reserve_send(&m, &ip("10.0.0.1")).await.expect("first");
        let Err(LimitError::Refused(r)) = l.reserve_send(&m, &ip("10.0.0.1")).await else {
            panic!("second send inside the cooldown must be refused");
        };
        assert_eq!(r.scope, Scope::Cooldown);
        assert_eq!(retry_after_secs(r.retry_after), 60);
        clock.advance(Duration::from_secs(60));
        assert!(l.reserve_send(&m, &ip("10.0.0.1")).await.is_ok());
    }

    #[tokio::test]
    async fn a_refusal_at_the_budget_gives_back_earlier_places() {
        let cfg = LimitsConfig {
            sms_budget_per_day: 1,
            ..LimitsConfig::default()
        };
        let (l, _, store) = setup(cfg);
        let _ = l
            .reserve_send(&mobile("13800000001"), &ip("10.0.0.1"))
            .await
            .expect("first");
        let second = mobile("13800000002");
        let Err(LimitError::Refused(r)) = l.reserve_send(&second, &ip("10.0.0.2")).await else {
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

    #[tokio::test]
    async fn login_lockout_after_the_configured_failures() {
        let (l, clock, _) = setup(LimitsConfig::default());
        let m = mobile("13800000003");
        let c = ip("10.0.0.3");
        for _ in 0..5 {
            let t = l.login_attempt(&m, &c).await.expect("still allowed");
            l.login_failed(t, &m, &c).await.expect("counted");
        }
        assert!(matches!(
            l.login_attempt(&m, &c).await,
            Err(LimitError::Refused(Refusal {
                scope: Scope::Login,
                ..
            }))
        ));
        clock.advance(Duration::from_secs(600));
        let t = l.login_attempt(&m, &c).await.expect("window over");
        l.login_abandoned(t).await;
        // Successes never count: a shared address is not locked out by
        // people who know their passwords.
        for _ in 0..20 {
            let t = l.login_attempt(&m, &c).await.expect("allowed");
            l.login_succeeded(t, &m).await;
        }
    }

    #[tokio::test]
    async fn checks_in_flight_hold_places_and_later_attempts_wait_for_them() {
        let (l, _, _) = setup(LimitsConfig::default());
        let m = mobile("13800000004");
        let c = ip("10.0.0.4");
        let tickets: Vec<_> = {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(l.login_attempt(&m, &c).await.expect("place"));
            }
            v
        };
        // A sixth waits; when the five succeed it gets its place.
        let l2 = l.clone();
        let (m2, c2) = (m.clone(), c.clone());
        let waiting = tokio::spawn(async move { l2.login_attempt(&m2, &c2).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "five checks in flight fill the places"
        );
        for t in tickets {
            l.login_succeeded(t, &m).await;
        }
        let t = waiting
            .await
            .expect("join")
            .expect("admitted after the others");
        l.login_abandoned(t).await;
    }

    #[tokio::test]
    async fn a_client_over_its_own_limit_writes_nothing_about_the_number() {
        let cfg = LimitsConfig {
            login_failures_per_ip: 2,
            ..LimitsConfig::default()
        };
        let (l, _, store) = setup(cfg);
        let c = ip("10.0.0.5");
        for n in ["13800000005", "13800000006"] {
            let m = mobile(n);
            let t = l.login_attempt(&m, &c).await.expect("allowed");
            l.login_failed(t, &m, &c).await.expect("counted");
        }
        let victim = mobile("13800000007");
        assert!(matches!(
            l.login_attempt(&victim, &c).await,
            Err(LimitError::Refused(Refusal {
                scope: Scope::LoginPerIp,
                ..
            }))
        ));
        for key in [
            keys::login_failures_mobile(&victim),
            keys::login_in_flight_mobile(&victim),
        ] {
            assert_eq!(store.peek_counter(&key).await.expect("peek").count, 0);
            assert_eq!(store.get(&key).await.expect("get"), None, "{key}");
        }
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
