//! One budget per request for waiting on the store and the database
//! (SPEC §7: while a part is down, a request answers DBERR within 2 s — the
//! whole request, not each operation).
//!
//! The router runs every request inside [`scope`]; every call that can wait
//! on a backend goes through [`bound`] — each Redis operation
//! (`store::redis`) and each database call ([`BoundedUsers`]; the memory
//! store never waits) — which gives it only what is left of the request's
//! budget and charges what it took. Time spent elsewhere — hashing a password, waiting
//! for an SMS vendor — is not charged: a slow hash must not make a healthy
//! database look down. Outside a request (start-up, background work) calls
//! are bounded only by their own timeouts.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::Mobile;
use crate::users::{
    AuditEvent, AuditQuery, EventCount, ImportedUser, ListEntry, NewUser, OutboxMessage, Records,
    RepoError, SharedUserRepo, TokenKey, User, UserChange, UserRepo,
};

struct Budget {
    limit: Duration,
    spent: Cell<Duration>,
}

tokio::task_local! {
    static BUDGET: Budget;
}

/// Runs `fut` (a request) with `limit` to spend on the store and database.
pub async fn scope<F: Future>(limit: Duration, fut: F) -> F::Output {
    let budget = Budget {
        limit,
        spent: Cell::new(Duration::ZERO),
    };
    BUDGET.scope(budget, fut).await
}

/// What the current request may still spend (`None` outside a request).
fn remaining() -> Option<Duration> {
    BUDGET
        .try_with(|b| b.limit.saturating_sub(b.spent.get()))
        .ok()
}

fn charge(took: Duration) {
    let _ = BUDGET.try_with(|b| b.spent.set(b.spent.get() + took));
}

/// How long a request waits for its clean-up (see [`cleanup`]).
const CLEANUP_WAIT: Duration = Duration::from_millis(150);

/// Runs a compensation — giving back a limit place, releasing a held code
/// — outside the request: it is not cut short by a spent budget (the usual
/// reason for a compensation is that a backend just failed), nor by the
/// request being dropped. The request waits for it at most
/// [`CLEANUP_WAIT`], so its answer still comes in time; past that the
/// clean-up finishes on its own, bounded by the store's own timeouts.
pub async fn cleanup(fut: impl Future<Output = ()> + Send + 'static) {
    let task = tokio::spawn(fut);
    let _ = tokio::time::timeout(CLEANUP_WAIT, task).await;
}

/// Why a call was cut short.
#[derive(Debug, Clone, Copy)]
pub struct Exhausted;

/// Runs one store or database call within what is left of the budget.
pub async fn bound<T>(fut: impl Future<Output = T>) -> Result<T, Exhausted> {
    let Some(left) = remaining() else {
        return Ok(fut.await);
    };
    if left.is_zero() {
        return Err(Exhausted);
    }
    let started = Instant::now();
    let out = tokio::time::timeout(left, fut).await;
    charge(started.elapsed());
    out.map_err(|_| Exhausted)
}

fn repo_exhausted(_: Exhausted) -> RepoError {
    RepoError::Unavailable("the request's time for the store and database ran out".into())
}

/// The user repository, each call within the request's budget.
pub struct BoundedUsers(pub SharedUserRepo);

impl BoundedUsers {
    pub fn wrap(users: SharedUserRepo) -> SharedUserRepo {
        Arc::new(Self(users))
    }
}

#[async_trait]
impl UserRepo for BoundedUsers {
    async fn create(&self, new: &NewUser) -> Result<User, RepoError> {
        bound(self.0.create(new)).await.map_err(repo_exhausted)?
    }

    async fn by_mobile(&self, mobile: &Mobile) -> Result<Option<User>, RepoError> {
        bound(self.0.by_mobile(mobile))
            .await
            .map_err(repo_exhausted)?
    }

    async fn by_id(&self, id: i64) -> Result<Option<User>, RepoError> {
        bound(self.0.by_id(id)).await.map_err(repo_exhausted)?
    }

    async fn by_ids(&self, ids: &[i64]) -> Result<Vec<User>, RepoError> {
        bound(self.0.by_ids(ids)).await.map_err(repo_exhausted)?
    }

    async fn import(&self, batch: &[ImportedUser]) -> Result<u64, RepoError> {
        bound(self.0.import(batch)).await.map_err(repo_exhausted)?
    }

    async fn reserve_ids(&self, through: i64) -> Result<(), RepoError> {
        bound(self.0.reserve_ids(through))
            .await
            .map_err(repo_exhausted)?
    }

    async fn update(&self, id: i64, change: UserChange<'_>) -> Result<bool, RepoError> {
        bound(self.0.update(id, change))
            .await
            .map_err(repo_exhausted)?
    }

    async fn delete(&self, id: i64) -> Result<Option<User>, RepoError> {
        bound(self.0.delete(id)).await.map_err(repo_exhausted)?
    }

    async fn ping(&self) -> Result<(), RepoError> {
        bound(self.0.ping()).await.map_err(repo_exhausted)?
    }

    async fn migrate(&self) -> Result<(), RepoError> {
        self.0.migrate().await
    }
}

#[async_trait]
impl Records for BoundedUsers {
    async fn enqueue_webhook(&self, m: &OutboxMessage, next_ms: i64) -> Result<(), RepoError> {
        bound(self.0.enqueue_webhook(m, next_ms))
            .await
            .map_err(repo_exhausted)?
    }
    async fn claim_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        bound(self.0.claim_webhooks(now_ms, lease_ms, limit))
            .await
            .map_err(repo_exhausted)?
    }
    async fn settle_webhook(
        &self,
        id: i64,
        next_ms: i64,
        done_ms: Option<i64>,
    ) -> Result<(), RepoError> {
        bound(self.0.settle_webhook(id, next_ms, done_ms))
            .await
            .map_err(repo_exhausted)?
    }
    async fn token_keys(&self) -> Result<Vec<TokenKey>, RepoError> {
        bound(self.0.token_keys()).await.map_err(repo_exhausted)?
    }
    async fn add_token_key(&self, k: &TokenKey) -> Result<(), RepoError> {
        bound(self.0.add_token_key(k))
            .await
            .map_err(repo_exhausted)?
    }
    async fn list_signature(&self) -> Result<(i64, i64), RepoError> {
        bound(self.0.list_signature())
            .await
            .map_err(repo_exhausted)?
    }
    async fn list_entries(&self) -> Result<Vec<ListEntry>, RepoError> {
        bound(self.0.list_entries()).await.map_err(repo_exhausted)?
    }
    async fn add_list_entry(&self, e: &ListEntry, at_ms: i64) -> Result<bool, RepoError> {
        bound(self.0.add_list_entry(e, at_ms))
            .await
            .map_err(repo_exhausted)?
    }
    async fn remove_list_entry(&self, e: &ListEntry) -> Result<bool, RepoError> {
        bound(self.0.remove_list_entry(e))
            .await
            .map_err(repo_exhausted)?
    }
    async fn append_audit(&self, e: &AuditEvent) -> Result<(), RepoError> {
        bound(self.0.append_audit(e))
            .await
            .map_err(repo_exhausted)?
    }
    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, RepoError> {
        bound(self.0.audit(q)).await.map_err(repo_exhausted)?
    }
    async fn audit_counts(&self, since_ms: i64) -> Result<Vec<EventCount>, RepoError> {
        bound(self.0.audit_counts(since_ms))
            .await
            .map_err(repo_exhausted)?
    }
    async fn prune_audit(&self, before_ms: i64) -> Result<u64, RepoError> {
        bound(self.0.prune_audit(before_ms))
            .await
            .map_err(repo_exhausted)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_share_one_budget_and_other_time_is_not_charged() {
        let slow = || tokio::time::sleep(Duration::from_millis(700));
        scope(Duration::from_secs(1), async {
            assert!(bound(slow()).await.is_ok(), "700 ms of 1 s");
            // Time outside the store and database is free.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let started = Instant::now();
            assert!(bound(slow()).await.is_err(), "only 300 ms were left");
            assert_eq!(started.elapsed(), Duration::from_millis(300));
            assert!(bound(async {}).await.is_err(), "nothing is left");
        })
        .await;
        // Outside a request nothing is bounded.
        assert!(bound(slow()).await.is_ok());
    }

    #[tokio::test]
    async fn a_cleanup_runs_even_when_the_budget_is_spent() {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        scope(Duration::ZERO, async move {
            assert!(bound(async {}).await.is_err(), "nothing left for requests");
            cleanup(async move {
                // Not bounded: it runs outside the request.
                assert!(bound(async {}).await.is_ok());
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            })
            .await;
        })
        .await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    }
}
