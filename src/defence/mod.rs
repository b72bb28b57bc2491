//! Abuse defence (SPEC §10): the operator's lists, adaptive anti-pumping,
//! and test numbers.
//!
//! - The lists live in the database and are compiled in memory
//!   ([`lists::ListSet`]); each instance looks for a change every
//!   `defence.list_refresh_ms` in the background, so a send costs no
//!   database round trip and a change is effective everywhere within 5 s.
//! - Anti-pumping counts, per prefix (E.164 less its last 4 digits) and per
//!   country, the codes sent and verified in the last hour and day
//!   ([`crate::store::KvStore::pump_send`]: one round trip per send). A
//!   scope whose unverified sends in the hour pass its threshold — a floor,
//!   or a share of the codes it saw verified today, whichever is higher — is
//!   blocked for `defence.block_initial_secs`, doubled on each repeat within
//!   a day up to `defence.block_max_secs`. Numbers on the safe list are
//!   never judged. `shadow` counts what it would refuse and refuses nothing.

pub mod lists;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use crate::clock::SharedClock;
use crate::config::{DefenceConfig, DefenceMode, TestNumber};
use crate::domain::{Mobile, MobilePolicy};
use crate::meter;
use crate::store::{PumpCounts, PumpKeys, SharedStore, StoreError};
use crate::users::{ListEntry, RepoError, SharedUserRepo};

pub use lists::{ListSet, parse_entry};

/// How long the claim to place a block lasts: shorter than any block, so
/// the next trip after a block ends is not missed.
const TRIP_CLAIM: Duration = Duration::from_secs(5);

/// What the adaptive defence says of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Refused(Refusal),
    /// Shadow mode: it would have been refused; it goes out.
    WouldRefuse(Refusal),
}

/// Why the defence refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The number, a prefix of it or its country is on the block list.
    Listed,
    /// The client's network is on the block list.
    Network,
    /// Sends into the prefix or country outran verifications.
    Pumping {
        scope: PumpScope,
        retry_after: Duration,
    },
}

impl Refusal {
    /// Every [`Refusal::reason`].
    pub const REASONS: [&'static str; 4] = [
        "block_list",
        "blocked_network",
        "pumping_prefix",
        "pumping_country",
    ];

    /// The metric and audit label.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Listed => "block_list",
            Refusal::Network => "blocked_network",
            Refusal::Pumping {
                scope: PumpScope::Prefix,
                ..
            } => "pumping_prefix",
            Refusal::Pumping {
                scope: PumpScope::Country,
                ..
            } => "pumping_country",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpScope {
    Prefix,
    Country,
}

impl PumpScope {
    fn of(index: usize) -> Self {
        if index == 0 {
            PumpScope::Prefix
        } else {
            PumpScope::Country
        }
    }
}

/// A test number's fixed code and its last day.
#[derive(Debug, Clone)]
struct TestCode {
    code: String,
    expires: time::Date,
}

pub struct Defence {
    cfg: DefenceConfig,
    store: SharedStore,
    users: SharedUserRepo,
    clock: SharedClock,
    policy: MobilePolicy,
    lists: RwLock<Arc<ListSet>>,
    signature: Mutex<Option<(i64, i64)>>,
    test_numbers: HashMap<String, TestCode>,
}

impl Defence {
    /// Checks the test numbers against the mobile rules (a bad one names
    /// its place in `sms.test_numbers`).
    pub fn new(
        cfg: DefenceConfig,
        test_numbers: &[TestNumber],
        store: SharedStore,
        users: SharedUserRepo,
        clock: SharedClock,
        policy: MobilePolicy,
    ) -> Result<Self, String> {
        let mut tests = HashMap::new();
        for (i, t) in test_numbers.iter().enumerate() {
            let m = Mobile::parse(&t.mobile, &policy)
                .map_err(|e| format!("sms.test_numbers[{i}].mobile: {e}"))?;
            let code = TestCode {
                code: t.code.expose().to_owned(),
                expires: t.expires.0,
            };
            tests.insert(m.e164().to_owned(), code);
        }
        Ok(Self {
            cfg,
            store,
            users,
            clock,
            policy,
            lists: RwLock::new(Arc::new(ListSet::default())),
            signature: Mutex::new(None),
            test_numbers: tests,
        })
    }

    /// Keeps the lists fresh in the background for as long as the defence
    /// lives.
    pub fn watch_lists(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let every = Duration::from_millis(self.cfg.list_refresh_ms);
        tokio::spawn(async move {
            loop {
                let Some(d) = weak.upgrade() else { return };
                if let Err(e) = d.refresh_lists().await {
                    tracing::warn!(error = %e, "could not read the block and safe lists; keeping the last ones");
                }
                drop(d);
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Reads the lists again when they changed; `true` when they did.
    pub async fn refresh_lists(&self) -> Result<bool, RepoError> {
        let signature = self.users.list_signature().await?;
        if *lock(&self.signature) == Some(signature) {
            return Ok(false);
        }
        let entries = self.users.list_entries().await?;
        let set = Arc::new(ListSet::new(&entries));
        meter::list_entries(set.len);
        *self.lists.write().unwrap_or_else(|p| p.into_inner()) = set;
        *lock(&self.signature) = Some(signature);
        Ok(true)
    }

    pub fn lists(&self) -> Arc<ListSet> {
        self.lists.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The mobile rules list entries are read with.
    pub fn policy(&self) -> &MobilePolicy {
        &self.policy
    }

    /// Adds an entry and makes it effective here at once (elsewhere within
    /// the refresh time). `false`: it was there already.
    pub async fn add_entry(&self, e: &ListEntry) -> Result<bool, RepoError> {
        let now = self.clock.now().unix_timestamp() * 1000;
        let added = self.users.add_list_entry(e, now).await?;
        self.refresh_lists().await?;
        Ok(added)
    }

    /// Removes an entry, like [`Defence::add_entry`].
    pub async fn remove_entry(&self, e: &ListEntry) -> Result<bool, RepoError> {
        let removed = self.users.remove_list_entry(e).await?;
        self.refresh_lists().await?;
        Ok(removed)
    }

    /// The fixed code of a test number, while it has not expired.
    pub fn test_code(&self, m: &Mobile) -> Option<&str> {
        let t = self.test_numbers.get(m.e164())?;
        (self.clock.now().date() <= t.expires).then_some(t.code.as_str())
    }

    /// Whether a send to `m` may go out by the adaptive defence (the lists
    /// are checked before, [`ListSet::blocks_number`]); counts it when it
    /// may.
    pub async fn admit_send(&self, m: &Mobile) -> Result<Admission, StoreError> {
        if self.cfg.mode == DefenceMode::Off || self.lists().is_safe(m) {
            return Ok(Admission::Allowed);
        }
        let k = ScopeKeys::of(m);
        let counts = self.store.pump_send(&k.pump_keys()).await?;
        let (sent, verified) = match counts {
            PumpCounts::Blocked { scope, remaining } => {
                return Ok(Admission::Refused(Refusal::Pumping {
                    scope: PumpScope::of(scope),
                    retry_after: remaining,
                }));
            }
            PumpCounts::Counted { sent, verified } => (sent, verified),
        };
        let floors = [self.cfg.prefix_floor, self.cfg.country_floor];
        for scope in 0..2 {
            let unverified = sent[scope * 2].saturating_sub(verified[scope * 2]);
            let room = (self.cfg.ratio * verified[scope * 2 + 1] as f64) as u64;
            if unverified <= floors[scope].max(room) {
                continue;
            }
            let refusal = self.trip(&k, scope).await?;
            return Ok(if self.cfg.mode == DefenceMode::Shadow {
                Admission::WouldRefuse(refusal)
            } else {
                Admission::Refused(refusal)
            });
        }
        Ok(Admission::Allowed)
    }

    /// Blocks scope `scope` for a time that doubles with each repeat within
    /// a day (enforce mode only).
    ///
    /// Of concurrent sends that find the scope over its threshold, only the
    /// first places the block and counts a repeat (a short claim in the
    /// store), so a burst does not multiply the block time.
    async fn trip(&self, k: &ScopeKeys, scope: usize) -> Result<Refusal, StoreError> {
        let mut retry_after = Duration::from_secs(self.cfg.block_initial_secs);
        let first = self.cfg.mode == DefenceMode::Enforce
            && self
                .store
                .set_nx(&k.tripping[scope], b"1", TRIP_CLAIM)
                .await?
                .is_none();
        if first {
            let day = Duration::from_secs(86_400);
            let strikes = self.store.incr_window(&k.strikes[scope], day).await?.count;
            let doubled = self
                .cfg
                .block_initial_secs
                .saturating_mul(1u64 << (strikes.saturating_sub(1)).min(20));
            retry_after = Duration::from_secs(doubled.min(self.cfg.block_max_secs));
            self.store
                .incr_window(&k.blocks[scope], retry_after)
                .await?;
            tracing::warn!(
                scope = if scope == 0 { "prefix" } else { "country" },
                block_secs = retry_after.as_secs(),
                strikes,
                "anti-pumping blocked a scope"
            );
        }
        Ok(Refusal::Pumping {
            scope: PumpScope::of(scope),
            retry_after,
        })
    }

    /// A code sent to `m` was verified: its scopes earn room.
    pub async fn verified(&self, m: &Mobile) {
        self.credit(ScopeKeys::of(m)).await;
    }

    /// A send into `prefix` and `country` was not delivered: nobody could
    /// use its code, so it is taken back from the hour's sends. (Counting it
    /// as verified would also raise the day's room, so that sending to
    /// numbers that do not exist would earn an attacker more sends.)
    pub async fn undelivered(&self, prefix: &str, country: &str) {
        if self.cfg.mode == DefenceMode::Off {
            return;
        }
        let k = ScopeKeys::of_scopes(prefix, country);
        for hour in [&k.sent[0], &k.sent[2]] {
            if let Err(e) = self.store.decr(hour).await {
                tracing::warn!(error = %e, "could not take back an undelivered send");
            }
        }
    }

    async fn credit(&self, k: ScopeKeys) {
        if self.cfg.mode == DefenceMode::Off {
            return;
        }
        let keys = [
            k.verified[0].as_str(),
            k.verified[1].as_str(),
            k.verified[2].as_str(),
            k.verified[3].as_str(),
        ];
        if let Err(e) = self.store.pump_verified(keys).await {
            tracing::warn!(error = %e, "could not count a verified code");
        }
    }
}

/// The store keys of a number's two scopes. They share the hash tag
/// `{pump}`, so one script can touch them all on Redis Cluster.
struct ScopeKeys {
    blocks: [String; 2],
    /// Claimed by the one send that places a block.
    tripping: [String; 2],
    strikes: [String; 2],
    sent: [String; 4],
    verified: [String; 4],
}

impl ScopeKeys {
    fn of(m: &Mobile) -> Self {
        Self::of_scopes(m.pumping_prefix(), m.country())
    }

    fn of_scopes(prefix: &str, country: &str) -> Self {
        let scopes = [format!("p:{prefix}"), format!("c:{country}")];
        let key = |what: &str, scope: &str| format!("{{pump}}:{what}:{scope}");
        Self {
            blocks: scopes.clone().map(|s| key("block", &s)),
            tripping: scopes.clone().map(|s| key("tripping", &s)),
            strikes: scopes.clone().map(|s| key("strikes", &s)),
            sent: [
                key("sent:h", &scopes[0]),
                key("sent:d", &scopes[0]),
                key("sent:h", &scopes[1]),
                key("sent:d", &scopes[1]),
            ],
            verified: [
                key("verified:h", &scopes[0]),
                key("verified:d", &scopes[0]),
                key("verified:h", &scopes[1]),
                key("verified:d", &scopes[1]),
            ],
        }
    }

    fn pump_keys(&self) -> PumpKeys<'_> {
        PumpKeys {
            blocks: [&self.blocks[0], &self.blocks[1]],
            sent: [&self.sent[0], &self.sent[1], &self.sent[2], &self.sent[3]],
            verified: [
                &self.verified[0],
                &self.verified[1],
                &self.verified[2],
                &self.verified[3],
            ],
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
