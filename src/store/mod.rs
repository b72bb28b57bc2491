//! The key-value port: the few atomic operations the flow needs, and nothing
//! general-purpose. Every check-and-consume is one operation here, so each
//! backend can make it atomic (a lock in memory, one command or script in Redis).

pub mod keys;
pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use memory::MemoryStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store is full")]
    Full,
}

/// State of a fixed-window counter after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: u64,
    /// Time until the window closes and the count starts again from zero.
    pub resets_in: Duration,
}

/// Outcome of checking a guess against a stored SMS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// No code stored, or it expired.
    Missing,
    /// The guess matched; the code is consumed and no other caller can match it.
    Match,
    /// The guess was wrong; `remaining` more guesses are allowed (0: the code
    /// was withdrawn).
    Wrong { remaining: u32 },
}

/// A guess at a code that holds the code when right ([`KvStore::claim_code`]).
#[derive(Debug, Clone, Copy)]
pub struct CodeClaim<'a> {
    pub candidate: &'a [u8],
    /// Who holds the code when the guess is right: a token of the claim,
    /// given again to [`KvStore::release_code`].
    pub holder: &'a [u8],
    pub max_guesses: u32,
    pub lease: Duration,
}

/// One addition to an ordered index ([`KvStore::index_add`]).
#[derive(Debug, Clone, Copy)]
pub struct IndexAdd<'a> {
    pub member: &'a str,
    /// The most members the index keeps.
    pub max: usize,
    pub ttl: Duration,
}

/// The anti-pumping keys of one send (SPEC §10) for
/// [`KvStore::pump_send`]: for each scope (prefix, country) its block key,
/// its sent counters (an hour, a day) and its verified counters (an hour,
/// a day).
#[derive(Debug, Clone, Copy)]
pub struct PumpKeys<'a> {
    pub blocks: [&'a str; 2],
    /// Prefix hour, prefix day, country hour, country day.
    pub sent: [&'a str; 4],
    /// In the same order as `sent`.
    pub verified: [&'a str; 4],
}

/// The windows of [`PumpKeys::sent`] and of the verified counters.
pub const PUMP_WINDOWS: [Duration; 4] = [HOUR, DAY, HOUR, DAY];
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// What [`KvStore::pump_send`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpCounts {
    /// Scope `0` (prefix) or `1` (country) is blocked for `remaining`;
    /// nothing was counted.
    Blocked { scope: usize, remaining: Duration },
    /// The send was counted: the counters after it.
    Counted { sent: [u64; 4], verified: [u64; 4] },
}

#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Stores `value` for `ttl`, replacing any earlier value.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// Stores `value` only when the key is absent. `None`: stored. `Some(t)`:
    /// the key exists and expires in `t`.
    async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Duration>, StoreError>;

    /// Replaces the value of a key that exists, keeping its expiry; a
    /// missing key stays missing. `true`: replaced.
    async fn replace(&self, key: &str, value: &[u8]) -> Result<bool, StoreError>;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads and deletes in one step: of concurrent callers at most one gets
    /// the value.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes several keys (of one hash tag, on Redis Cluster); Redis does
    /// it in one command, this default one by one.
    async fn delete_all(&self, keys: &[String]) -> Result<(), StoreError> {
        for k in keys {
            self.delete(k).await?;
        }
        Ok(())
    }

    /// Adds one to a fixed-window counter; the first hit opens a window of
    /// `window`.
    async fn incr_window(&self, key: &str, window: Duration) -> Result<Counter, StoreError>;

    /// Takes one back from a counter (a reservation that was not used). A
    /// missing counter stays missing.
    async fn decr(&self, key: &str) -> Result<(), StoreError>;

    /// Reads a counter without changing it (count 0 when absent).
    async fn peek_counter(&self, key: &str) -> Result<Counter, StoreError>;

    /// Stores the MAC of a fresh SMS code with a zero guess count, replacing
    /// any earlier code.
    async fn put_code(&self, key: &str, mac: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// Checks `candidate` against the stored MAC in constant time, atomically:
    /// a match consumes the code; a miss counts a guess and withdraws the code
    /// at `max_guesses`. A code held by [`KvStore::claim_code`] is `Missing`
    /// to everyone until its hold is released or ends.
    async fn verify_code(
        &self,
        key: &str,
        candidate: &[u8],
        max_guesses: u32,
    ) -> Result<CodeCheck, StoreError>;

    /// Like [`KvStore::verify_code`], but a match holds the code for
    /// `claim.lease` instead of consuming it. While held it is `Missing` to
    /// every caller; [`KvStore::release_code`] frees it for another try,
    /// [`KvStore::delete`] consumes it, and a holder that never comes back (an
    /// instance that died) loses it when the lease ends.
    async fn claim_code(&self, key: &str, claim: CodeClaim<'_>) -> Result<CodeCheck, StoreError>;

    /// Ends the hold on a code, if `holder` still holds it (a hold that ran
    /// out and was taken by another claim is not this holder's to end).
    async fn release_code(&self, key: &str, holder: &[u8]) -> Result<(), StoreError>;

    /// Adds `add.member` to the ordered set at `key` as its newest member
    /// (one already there moves to the end) and keeps the set for `add.ttl`
    /// from now. When it then holds more than `add.max`, the oldest are
    /// removed and returned, oldest first. (A user's sessions: the index that
    /// caps them and lets them be ended together.)
    async fn index_add(&self, key: &str, add: IndexAdd<'_>) -> Result<Vec<String>, StoreError>;

    async fn index_remove(&self, key: &str, member: &str) -> Result<(), StoreError>;

    /// The members, oldest first.
    async fn index_members(&self, key: &str) -> Result<Vec<String>, StoreError>;

    /// Anti-pumping for one send: unless a scope is blocked, counts the
    /// send in `keys.sent` (windows [`PUMP_WINDOWS`]) and reads
    /// `keys.verified`. Redis does it in one script (every key shares one
    /// hash tag); this default, for the in-process store, in several steps.
    async fn pump_send(&self, keys: &PumpKeys<'_>) -> Result<PumpCounts, StoreError> {
        for (scope, block) in keys.blocks.iter().enumerate() {
            let c = self.peek_counter(block).await?;
            if c.count > 0 {
                return Ok(PumpCounts::Blocked {
                    scope,
                    remaining: c.resets_in,
                });
            }
        }
        let (mut sent, mut verified) = ([0; 4], [0; 4]);
        for i in 0..4 {
            sent[i] = self.incr_window(keys.sent[i], PUMP_WINDOWS[i]).await?.count;
            verified[i] = self.peek_counter(keys.verified[i]).await?.count;
        }
        Ok(PumpCounts::Counted { sent, verified })
    }

    /// Counts one verified code in each of `keys` (windows
    /// [`PUMP_WINDOWS`]).
    async fn pump_verified(&self, keys: [&str; 4]) -> Result<(), StoreError> {
        for (key, window) in keys.iter().zip(PUMP_WINDOWS) {
            self.incr_window(key, window).await?;
        }
        Ok(())
    }

    /// Cheap round trip: the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Readiness (SPEC §7): every key the store may be asked for can be
    /// served right now — on Redis Cluster every primary answers and the
    /// cluster says its state is ok, on Sentinel or a single node the node
    /// answers as a primary. A `PING` that some live node answers proves
    /// none of this.
    async fn ready(&self) -> Result<(), StoreError> {
        self.ping().await
    }

    /// How full a bounded store is, 0.0 to 1.0; `None` when the backend
    /// bounds itself (Redis has its own `maxmemory`).
    fn fullness(&self) -> Option<f64> {
        None
    }
}

pub type SharedStore = Arc<dyn KvStore>;
