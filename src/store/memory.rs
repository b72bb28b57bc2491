//! The embedded store: an in-process map with per-key expiry, for one
//! instance. Sharded mutexes keep each operation atomic; nothing is held
//! across an `.await`.
//!
//! Memory is bounded: every entry is charged its approximate size, and a write
//! of a new key that would pass the bound first sweeps expired entries, then
//! fails with [`StoreError::Full`]. Nothing live is ever evicted to make room:
//! evicting would let a flood of captchas wipe the counters that enforce the
//! limits. A background sweep frees expired entries and shrinks emptied
//! tables; how much of that the process hands back to the system is up to the
//! allocator (glibc keeps about half, see BENCHMARKS.md).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use super::{CodeCheck, CodeClaim, Counter, IndexAdd, KvStore, StoreError};
use crate::clock::SharedClock;

const SHARDS: usize = 32;
/// Per-entry cost beyond key and value bytes: hash-table slot (with the
/// table's spare capacity), `String` and `Vec` headers, allocator rounding.
/// Measured, not guessed: a million captchas (46-byte key, 32-byte MAC) grow
/// the process by about 246 bytes each (`examples/store_memory.rs`, glibc),
/// so the bound is a bound on real memory.
const ENTRY_OVERHEAD: usize = 168;

#[derive(Debug)]
enum Value {
    Bytes(Vec<u8>),
    Counter(u64),
    /// `held_until_ms`: 0, or when a claim's hold ends; `holder`: whose.
    Code {
        mac: Vec<u8>,
        wrong: u32,
        held_until_ms: u64,
        holder: Vec<u8>,
    },
    /// Oldest first.
    Index(Vec<String>),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at_ms: u64,
}

impl Entry {
    fn cost(key: &str, value: &Value) -> usize {
        let v = match value {
            Value::Bytes(b) => b.len(),
            Value::Counter(_) => 8,
            Value::Code { mac, .. } => mac.len() + 12,
            Value::Index(members) => members.iter().map(|m| m.len() + 24).sum(),
        };
        key.len() + v + ENTRY_OVERHEAD
    }
}

pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<String, Entry>>>,
    hasher: RandomState,
    clock: SharedClock,
    used_bytes: AtomicUsize,
    max_bytes: usize,
    last_emergency_sweep_ms: AtomicU64,
}

impl MemoryStore {
    pub fn new(clock: SharedClock, max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            clock,
            used_bytes: AtomicUsize::new(0),
            max_bytes,
            last_emergency_sweep_ms: AtomicU64::new(0),
        })
    }

    /// Starts the periodic sweep. It stops by itself when the store is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(store) => store.sweep(),
                    None => break,
                }
            }
        });
    }

    /// Removes every expired entry and shrinks shards that became mostly empty.
    pub fn sweep(&self) {
        let now = self.clock.now_ms();
        for shard in &self.shards {
            let mut map = lock(shard);
            self.sweep_shard(&mut map, now);
            if map.capacity() > 64 && map.len() < map.capacity() / 4 {
                map.shrink_to_fit();
            }
        }
        crate::meter::store_fullness(self.used_bytes() as f64 / self.max_bytes.max(1) as f64);
    }

    /// Approximate bytes held by live and not-yet-swept entries.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sweep_shard(&self, map: &mut HashMap<String, Entry>, now: u64) {
        let mut freed = 0;
        map.retain(|k, e| {
            let keep = e.expires_at_ms > now;
            if !keep {
                freed += Entry::cost(k, &e.value);
            }
            keep
        });
        self.used_bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Entry>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    fn ttl_ms(ttl: Duration) -> u64 {
        u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Runs `f` on the live entry for `key` (expired entries are removed first
    /// and look absent). `f` returns the new value for the key, or `None` to
    /// delete it, plus its own result. A new key that does not fit triggers a
    /// sweep of every shard and one retry.
    fn with_entry<R>(
        &self,
        key: &str,
        f: impl Fn(Option<&mut Entry>, u64) -> (Update, R),
    ) -> Result<R, StoreError> {
        match self.try_with_entry(key, &f) {
            Err(StoreError::Full) if self.claim_emergency_sweep() => {
                self.sweep();
                self.try_with_entry(key, &f)
            }
            other => other,
        }
    }

    /// At most one emergency sweep a second: a store that is full of live
    /// entries must not turn every refused write into a full scan.
    fn claim_emergency_sweep(&self) -> bool {
        let now = self.clock.now_ms();
        let last = self.last_emergency_sweep_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= 1_000
            && self
                .last_emergency_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    fn try_with_entry<R>(
        &self,
        key: &str,
        f: &impl Fn(Option<&mut Entry>, u64) -> (Update, R),
    ) -> Result<R, StoreError> {
        let now = self.clock.now_ms();
        let mut map = self.shard(key);
        if map.get(key).is_some_and(|e| e.expires_at_ms <= now)
            && let Some(old) = map.remove(key)
        {
            self.release(key, &old.value);
        }
        let existing = map.get_mut(key);
        let had = existing.is_some();
        let (update, result) = f(existing, now);
        match update {
            Update::Keep => {}
            Update::Delete => {
                if let Some(old) = map.remove(key) {
                    self.release(key, &old.value);
                }
            }
            Update::Put(entry) => {
                let new_cost = Entry::cost(key, &entry.value);
                let old_cost = map.get(key).map_or(0, |e| Entry::cost(key, &e.value));
                // Only a new key can be refused (it was absent, so `f` changed
                // nothing and the retry sees the same state).
                if !had && self.used_bytes() + new_cost > self.max_bytes {
                    return Err(StoreError::Full);
                }
                self.used_bytes.fetch_add(new_cost, Ordering::Relaxed);
                self.used_bytes.fetch_sub(old_cost, Ordering::Relaxed);
                map.insert(key.to_owned(), entry);
            }
        }
        Ok(result)
    }

    /// One guess at a code: a match consumes it (`hold: None`) or holds it
    /// for the lease; a held code is missing to everyone.
    fn guess_code(
        &self,
        key: &str,
        candidate: &[u8],
        max_guesses: u32,
        hold: Option<(Duration, &[u8])>,
    ) -> Result<CodeCheck, StoreError> {
        self.with_entry(key, |existing, now| {
            let Some(Entry {
                value:
                    Value::Code {
                        mac,
                        wrong,
                        held_until_ms,
                        holder,
                    },
                ..
            }) = existing
            else {
                return (Update::Keep, CodeCheck::Missing);
            };
            if *held_until_ms > now {
                return (Update::Keep, CodeCheck::Missing);
            }
            if bool::from(mac.as_slice().ct_eq(candidate)) {
                return match hold {
                    None => (Update::Delete, CodeCheck::Match),
                    Some((lease, by)) => {
                        *held_until_ms = now + Self::ttl_ms(lease);
                        *holder = by.to_vec();
                        (Update::Keep, CodeCheck::Match)
                    }
                };
            }
            *wrong += 1;
            let remaining = max_guesses.saturating_sub(*wrong);
            let update = if remaining == 0 {
                Update::Delete
            } else {
                Update::Keep
            };
            (update, CodeCheck::Wrong { remaining })
        })
    }

    fn release(&self, key: &str, value: &Value) {
        self.used_bytes
            .fetch_sub(Entry::cost(key, value), Ordering::Relaxed);
    }
}

enum Update {
    Keep,
    Delete,
    Put(Entry),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a shard cannot leave an entry half-written (every
    // update is a single insert or remove), so a poisoned lock is still sound.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn remaining(e: &Entry, now: u64) -> Duration {
    Duration::from_millis(e.expires_at_ms.saturating_sub(now))
}

#[async_trait]
impl KvStore for MemoryStore {
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.with_entry(key, |_, now| {
            let e = Entry {
                value: Value::Bytes(value.to_vec()),
                expires_at_ms: now + Self::ttl_ms(ttl),
            };
            (Update::Put(e), ())
        })
    }

    async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        self.with_entry(key, |existing, now| match existing {
            Some(e) => (Update::Keep, Some(remaining(e, now))),
            None => {
                let e = Entry {
                    value: Value::Bytes(value.to_vec()),
                    expires_at_ms: now + Self::ttl_ms(ttl),
                };
                (Update::Put(e), None)
            }
        })
    }

    async fn replace(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        self.with_entry(key, |existing, _| match existing {
            Some(e) => {
                let e = Entry {
                    value: Value::Bytes(value.to_vec()),
                    expires_at_ms: e.expires_at_ms,
                };
                (Update::Put(e), true)
            }
            None => (Update::Keep, false),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_entry(key, |existing, _| match existing {
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => (Update::Keep, Some(b.clone())),
            _ => (Update::Keep, None),
        })
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_entry(key, |existing, _| match existing {
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => (Update::Delete, Some(b.clone())),
            Some(_) => (Update::Delete, None),
            None => (Update::Keep, None),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.with_entry(key, |_, _| (Update::Delete, ()))
    }

    async fn incr_window(&self, key: &str, window: Duration) -> Result<Counter, StoreError> {
        self.with_entry(key, |existing, now| match existing {
            Some(e) => {
                let count = match &mut e.value {
                    Value::Counter(c) => {
                        *c += 1;
                        *c
                    }
                    other => {
                        *other = Value::Counter(1);
                        1
                    }
                };
                let resets_in = remaining(e, now);
                (Update::Keep, Counter { count, resets_in })
            }
            None => {
                let ms = Self::ttl_ms(window);
                let e = Entry {
                    value: Value::Counter(1),
                    expires_at_ms: now + ms,
                };
                let c = Counter {
                    count: 1,
                    resets_in: Duration::from_millis(ms),
                };
                (Update::Put(e), c)
            }
        })
    }

    async fn decr(&self, key: &str) -> Result<(), StoreError> {
        self.with_entry(key, |existing, _| {
            if let Some(Entry {
                value: Value::Counter(c),
                ..
            }) = existing
            {
                *c = c.saturating_sub(1);
            }
            (Update::Keep, ())
        })
    }

    async fn peek_counter(&self, key: &str) -> Result<Counter, StoreError> {
        self.with_entry(key, |existing, now| {
            let c = match existing {
                Some(e) => Counter {
                    count: match e.value {
                        Value::Counter(c) => c,
                        _ => 0,
                    },
                    resets_in: remaining(e, now),
                },
                None => Counter {
                    count: 0,
                    resets_in: Duration::ZERO,
                },
            };
            (Update::Keep, c)
        })
    }

    async fn put_code(&self, key: &str, mac: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.with_entry(key, |_, now| {
            let e = Entry {
                value: Value::Code {
                    mac: mac.to_vec(),
                    wrong: 0,
                    held_until_ms: 0,
                    holder: Vec::new(),
                },
                expires_at_ms: now + Self::ttl_ms(ttl),
            };
            (Update::Put(e), ())
        })
    }

    async fn verify_code(
        &self,
        key: &str,
        candidate: &[u8],
        max_guesses: u32,
    ) -> Result<CodeCheck, StoreError> {
        self.guess_code(key, candidate, max_guesses, None)
    }

    async fn claim_code(&self, key: &str, claim: CodeClaim<'_>) -> Result<CodeCheck, StoreError> {
        let hold = Some((claim.lease, claim.holder));
        self.guess_code(key, claim.candidate, claim.max_guesses, hold)
    }

    async fn release_code(&self, key: &str, by: &[u8]) -> Result<(), StoreError> {
        self.with_entry(key, |existing, _| {
            if let Some(Entry {
                value:
                    Value::Code {
                        held_until_ms,
                        holder,
                        ..
                    },
                ..
            }) = existing
                && bool::from(holder.as_slice().ct_eq(by))
            {
                *held_until_ms = 0;
                holder.clear();
            }
            (Update::Keep, ())
        })
    }

    async fn index_add(&self, key: &str, add: IndexAdd<'_>) -> Result<Vec<String>, StoreError> {
        let IndexAdd { member, max, ttl } = add;
        self.with_entry(key, |existing, now| {
            let mut members = match existing {
                Some(Entry {
                    value: Value::Index(m),
                    ..
                }) => m.clone(),
                _ => Vec::new(),
            };
            members.retain(|m| m != member);
            members.push(member.to_owned());
            let over = members.len().saturating_sub(max);
            let evicted: Vec<String> = members.drain(..over).collect();
            let e = Entry {
                value: Value::Index(members),
                expires_at_ms: now + Self::ttl_ms(ttl),
            };
            (Update::Put(e), evicted)
        })
    }

    async fn index_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        self.with_entry(key, |existing, _| match existing {
            Some(Entry {
                value: Value::Index(m),
                expires_at_ms,
            }) => {
                let mut members = m.clone();
                members.retain(|x| x != member);
                if members.is_empty() {
                    (Update::Delete, ())
                } else {
                    let e = Entry {
                        value: Value::Index(members),
                        expires_at_ms: *expires_at_ms,
                    };
                    (Update::Put(e), ())
                }
            }
            _ => (Update::Keep, ()),
        })
    }

    async fn index_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.with_entry(key, |existing, _| match existing {
            Some(Entry {
                value: Value::Index(m),
                ..
            }) => (Update::Keep, m.clone()),
            _ => (Update::Keep, Vec::new()),
        })
    }

    fn fullness(&self) -> Option<f64> {
        Some(self.used_bytes() as f64 / self.max_bytes.max(1) as f64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn new_keys_beyond_the_bound_are_refused_but_updates_still_work() {
        let clock = ManualClock::new();
        let store = MemoryStore::new(clock.clone(), 4_096);
        let mut stored = 0;
        let ttl = Duration::from_secs(60);
        loop {
            match store.set(&format!("k{stored}"), &[0u8; 32], ttl).await {
                Ok(()) => stored += 1,
                Err(StoreError::Full) => break,
                Err(e) => panic!("{e}"),
            }
            assert!(stored < 1_000, "the bound must stop growth");
        }
        assert!(store.used_bytes() <= 4_096);
        // Existing keys can still be replaced and counted.
        store
            .set("k0", &[1u8; 32], ttl)
            .await
            .expect("replace in place");
        // Once entries expire, room comes back without waiting for the sweeper.
        clock.advance(ttl);
        store
            .set("fresh", b"x", ttl)
            .await
            .expect("room after expiry");
    }

    #[tokio::test]
    async fn the_sweep_frees_expired_entries_and_their_memory() {
        let clock = ManualClock::new();
        let store = MemoryStore::new(clock.clone(), 64 << 20);
        for i in 0..10_000 {
            store
                .set(
                    &format!("captcha:{i}"),
                    &[0u8; 32],
                    Duration::from_secs(300),
                )
                .await
                .expect("set");
        }
        store
            .incr_window("counter", Duration::from_secs(900))
            .await
            .expect("incr");
        assert_eq!(store.len(), 10_001);
        let full = store.used_bytes();
        clock.advance(Duration::from_secs(300));
        store.sweep();
        assert_eq!(store.len(), 1, "only the live counter stays");
        assert!(
            store.used_bytes() < full / 1000,
            "accounting returns to near zero"
        );
    }

    #[tokio::test]
    async fn accounting_does_not_drift_over_replacements_and_deletes() {
        let clock = ManualClock::new();
        let store = MemoryStore::new(clock, 1 << 20);
        let ttl = Duration::from_secs(60);
        for _ in 0..100 {
            store.set("a", &[0u8; 10], ttl).await.expect("set");
            store.set("a", &[0u8; 50], ttl).await.expect("set");
            store.put_code("c", &[0u8; 32], ttl).await.expect("put");
            store.take("a").await.expect("take");
            store.verify_code("c", &[0u8; 32], 5).await.expect("verify");
        }
        assert_eq!(store.used_bytes(), 0);
        assert!(store.is_empty());
    }
}
