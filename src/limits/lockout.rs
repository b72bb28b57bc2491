//! Login failures and the lockout they lead to (SPEC §5). Only failures
//! count, never successes.
//!
//! - Per number the count is strict: a password check starts only while the
//!   number's failures plus the checks in flight stay within
//!   `limits.login_failures`, so parallel guesses cannot slip past it. An
//!   attempt that finds every place held by checks still in flight waits for
//!   them (at most [`LOGIN_QUEUE_WAIT`]) instead of being refused, so the
//!   owner's own concurrent logins never refuse each other.
//! - Per client the failures are read first, before anything keyed by the
//!   number is written: a client over `limits.login_failures_per_ip` cannot
//!   push anyone into the lockout, nor fill the store with numbers.
//! - A check the client walks away from (it closes the connection, the
//!   request is dropped mid-check) gives its place back and counts as a
//!   failure of the client — never of the number — so hanging up early is
//!   no way around either limit ([`LoginTicket`]'s `Drop`).
//! - The checks in flight are a counter with a window of its own
//!   ([`LOGIN_IN_FLIGHT_TTL`]). Like every fixed window, its end lets a
//!   burst at the boundary through once; a place held by an instance that
//!   died comes back with the window. Places are given back outside the
//!   request's budget (`budget::cleanup`), so a database outage that spent
//!   the budget does not leave them taken.

use std::time::Duration;

use super::{ClientKey, LimitError, Limits, Refusal, Scope};
use crate::domain::Mobile;
use crate::store::{SharedStore, StoreError, keys};

/// The window of the checks-in-flight counter: long enough that a window
/// rarely ends under a check (when it does, that boundary lets one burst
/// through), short enough that a place held by an instance that died comes
/// back soon.
const LOGIN_IN_FLIGHT_TTL: Duration = Duration::from_secs(60);
/// How long a login waits for checks in flight on the same number to finish.
const LOGIN_QUEUE_WAIT: Duration = Duration::from_secs(3);
const LOGIN_QUEUE_POLL: Duration = Duration::from_millis(20);

/// A password check's place among a number's login attempts; give it back
/// with [`Limits::login_failed`], [`Limits::login_succeeded`] or
/// [`Limits::login_abandoned`]. Dropped without that, it gives the place back
/// by itself and, once admitted, counts a failure against the client.
#[must_use]
pub struct LoginTicket {
    store: SharedStore,
    in_flight: String,
    client_failures: String,
    window: Duration,
    /// Admitted to a check: walking away from it now costs the client.
    admitted: bool,
    settled: bool,
}

impl Drop for LoginTicket {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store.clone();
        let in_flight = std::mem::take(&mut self.in_flight);
        let client = self
            .admitted
            .then(|| std::mem::take(&mut self.client_failures));
        let window = self.window;
        runtime.spawn(async move {
            if let Err(e) = store.decr(&in_flight).await {
                tracing::warn!(error = %e, "could not release a login place; it expires by itself");
            }
            if let Some(client) = client
                && let Err(e) = store.incr_window(&client, window).await
            {
                tracing::warn!(error = %e, "could not count an abandoned login");
            }
        });
    }
}

impl Limits {
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
        let window = Duration::from_secs(self.cfg.login_window_secs);
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
            // From here the place is held: any way out gives it back.
            let mut ticket = LoginTicket {
                store: self.store.clone(),
                in_flight: in_flight.clone(),
                client_failures: keys::login_failures_ip(client.as_str()),
                window,
                admitted: false,
                settled: false,
            };
            // Read again after taking the place: a check that failed
            // meanwhile counted its failure before giving its place back.
            let failed = self.store.peek_counter(&failures).await?;
            if failed.count + checking.count <= limit {
                ticket.admitted = true;
                return Ok(ticket);
            }
            self.release_login(ticket).await;
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
        self.clear_login_failures(mobile).await;
    }

    /// The owner proved the number another way (a right SMS code): its
    /// failed logins are forgotten. A failure is logged; the count then
    /// ends with its window.
    pub async fn clear_login_failures(&self, mobile: &Mobile) {
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

    async fn release_login(&self, mut ticket: LoginTicket) {
        ticket.settled = true;
        let (store, key) = (self.store.clone(), std::mem::take(&mut ticket.in_flight));
        crate::budget::cleanup(async move {
            if let Err(e) = store.decr(&key).await {
                tracing::warn!(error = %e, "could not release a login place; it expires by itself");
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ip, mobile, setup};
    use super::*;
    use crate::config::LimitsConfig;

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
    async fn a_check_walked_away_from_gives_its_place_back_and_costs_the_client() {
        let (l, _, store) = setup(LimitsConfig::default());
        let m = mobile("13800000008");
        let c = ip("10.0.0.8");
        let ticket = l.login_attempt(&m, &c).await.expect("admitted");
        drop(ticket);
        // The release runs on the runtime; give it a moment.
        for _ in 0..50 {
            let counted = store
                .peek_counter(&keys::login_failures_ip(c.as_str()))
                .await
                .expect("peek")
                .count;
            if counted == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let peek = |k: String| {
            let store = store.clone();
            async move { store.peek_counter(&k).await.expect("peek").count }
        };
        assert_eq!(peek(keys::login_in_flight_mobile(&m)).await, 0);
        assert_eq!(peek(keys::login_failures_ip(c.as_str())).await, 1);
        assert_eq!(
            peek(keys::login_failures_mobile(&m)).await,
            0,
            "not the number's"
        );
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
}
