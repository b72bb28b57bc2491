//! The audit log (SPEC §10): an append-only table of what happened to whom,
//! with the time, the masked number, the user id, the client's network and
//! the request id, kept for `audit.retention_days`.
//!
//! Events are written in the background: a request never waits on its
//! audit record, and a database outage costs the records of that time (a
//! warning is logged for each), never the request.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::domain::Mobile;
use crate::users::{AuditEvent, SharedUserRepo};
use crate::webhooks::Webhooks;

/// What a request's audit records carry about it.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    /// Masked as logged: `203.0.113.0/24`.
    pub client_net: String,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Runs `f` as the request `ctx` (the HTTP layer does this for every request).
pub async fn in_request<F: Future>(ctx: RequestContext, f: F) -> F::Output {
    CONTEXT.scope(ctx, f).await
}

/// One event to record.
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    pub event: &'static str,
    pub user_id: Option<i64>,
    pub mobile: Option<&'a Mobile>,
    pub detail: Option<String>,
}

impl<'a> Record<'a> {
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            ..Self::default()
        }
    }

    pub fn user(mut self, id: i64) -> Self {
        self.user_id = Some(id);
        self
    }

    pub fn mobile(mut self, m: &'a Mobile) -> Self {
        self.mobile = Some(m);
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

pub struct Audit {
    users: SharedUserRepo,
    clock: SharedClock,
    /// Where the events also go, signed (SPEC §11).
    webhooks: Option<Arc<Webhooks>>,
    /// Records being written, for [`Audit::flush`].
    pending: Arc<(AtomicUsize, Notify)>,
}

impl Audit {
    pub fn new(users: SharedUserRepo, clock: SharedClock, webhooks: Option<Arc<Webhooks>>) -> Self {
        Self {
            users,
            clock,
            webhooks,
            pending: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }

    /// Waits (at most `bound`) for the records still being written: a
    /// command that exits right after an action keeps its record.
    pub async fn flush(&self, bound: Duration) {
        let (count, done) = &*self.pending;
        let _ = tokio::time::timeout(bound, async {
            while count.load(Ordering::SeqCst) > 0 {
                let notified = done.notified();
                if count.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
        })
        .await;
    }

    /// Appends `r` in the background.
    pub fn record(&self, r: Record<'_>) {
        let ctx = CONTEXT.try_with(Clone::clone).unwrap_or_default();
        let event = AuditEvent {
            id: 0,
            at_ms: self.now_ms(),
            event: r.event.to_owned(),
            user_id: r.user_id,
            mobile: r.mobile.map(Mobile::masked),
            country: r.mobile.map(|m| m.country().to_owned()),
            client_net: (!ctx.client_net.is_empty()).then_some(ctx.client_net),
            request_id: (!ctx.request_id.is_empty()).then_some(ctx.request_id),
            detail: r.detail,
        };
        let (users, pending) = (self.users.clone(), self.pending.clone());
        let webhooks = self.webhooks.clone();
        pending.0.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Err(e) = users.append_audit(&event).await {
                tracing::warn!(error = %e, event = event.event, "could not write an audit record");
            }
            if let Some(w) = webhooks {
                w.enqueue(&event).await;
            }
            pending.0.fetch_sub(1, Ordering::SeqCst);
            pending.1.notify_waiters();
        });
    }

    pub fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Deletes records older than `retention_days`, hourly, for as long as
    /// the audit log lives.
    pub fn keep_for(self: &Arc<Self>, retention_days: u64) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let keep_ms = retention_days.saturating_mul(86_400_000) as i64;
        tokio::spawn(async move {
            loop {
                let Some(audit) = weak.upgrade() else { return };
                let before = audit.now_ms() - keep_ms;
                match audit.users.prune_audit(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "old audit records deleted"),
                    Err(e) => tracing::warn!(error = %e, "could not delete old audit records"),
                }
                drop(audit);
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
    }
}
