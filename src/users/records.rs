//! What the database keeps besides users (SPEC §10): the operator's block
//! and safe lists, and the append-only audit log. One SQL text serves both
//! databases (`$n` placeholders, which MySQL reads as `?`; times as Unix
//! milliseconds), and [`records_impl!`] writes the one implementation into
//! each adapter.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::FromRow;

use super::RepoError;

/// An entry of a list as stored: `list` is `block` or `safe`, `kind` one of
/// `number`, `prefix`, `country`, `network`, `value` in its canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct ListEntry {
    pub list: String,
    pub kind: String,
    pub value: String,
}

/// An audit event. Numbers are masked and addresses are networks before
/// they get here; `id` and `at_ms` are set when it is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub at_ms: i64,
    pub event: String,
    pub user_id: Option<i64>,
    pub mobile: Option<String>,
    pub country: Option<String>,
    pub client_net: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

/// Which audit events to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since_ms: i64,
    pub user_id: Option<i64>,
    pub event: Option<String>,
    pub limit: i64,
}

/// How many events of one kind (and country and detail) there were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct EventCount {
    pub event: String,
    pub country: Option<String>,
    pub detail: Option<String>,
    pub count: i64,
}

/// A webhook message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub msg_id: String,
    pub endpoint: String,
    pub event: String,
    pub payload: String,
    pub created_ms: i64,
    pub attempts: i32,
}

/// A token signing key as stored: the private half sealed.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TokenKey {
    pub kid: String,
    pub sealed: String,
    pub created_ms: i64,
}

#[async_trait]
pub trait Records: Send + Sync + 'static {
    /// Queues one message (its `id` and `attempts` are ignored).
    async fn enqueue_webhook(&self, m: &OutboxMessage, next_ms: i64) -> Result<(), RepoError>;
    /// Claims up to `limit` messages due at `now_ms` for `lease_ms`: no
    /// other instance takes them meanwhile.
    async fn claim_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, RepoError>;
    /// After an attempt: `done_ms` set when delivered or given up, else the
    /// next try at `next_ms`.
    async fn settle_webhook(
        &self,
        id: i64,
        next_ms: i64,
        done_ms: Option<i64>,
    ) -> Result<(), RepoError>;
    /// The token signing keys, newest first.
    async fn token_keys(&self) -> Result<Vec<TokenKey>, RepoError>;
    async fn add_token_key(&self, key: &TokenKey) -> Result<(), RepoError>;
    /// Changes whenever the lists change: their size and their highest
    /// sequence number (which only grows).
    async fn list_signature(&self) -> Result<(i64, i64), RepoError>;
    async fn list_entries(&self) -> Result<Vec<ListEntry>, RepoError>;
    /// `false`: it was there already.
    async fn add_list_entry(&self, entry: &ListEntry, at_ms: i64) -> Result<bool, RepoError>;
    /// `false`: it was not there.
    async fn remove_list_entry(&self, entry: &ListEntry) -> Result<bool, RepoError>;
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), RepoError>;
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, RepoError>;
    /// Events since `since_ms`, counted by event, country and detail.
    async fn audit_counts(&self, since_ms: i64) -> Result<Vec<EventCount>, RepoError>;
    /// Deletes events older than `before_ms`; how many.
    async fn prune_audit(&self, before_ms: i64) -> Result<u64, RepoError>;
}

pub(super) const LIST_SIGNATURE: &str = "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM list_entries";
pub(super) const LIST_ENTRIES: &str = "SELECT list, kind, value FROM list_entries ORDER BY seq";
pub(super) const ADD_LIST_ENTRY: &str = "INSERT INTO list_entries (list, kind, value, created_ms) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (list, kind, value) DO NOTHING";
pub(super) const REMOVE_LIST_ENTRY: &str =
    "DELETE FROM list_entries WHERE list = $1 AND kind = $2 AND value = $3";
pub(super) const APPEND_AUDIT: &str = "INSERT INTO audit_events \
     (at_ms, event, user_id, mobile, country, client_net, request_id, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
macro_rules! audit_select {
    () => {
        "SELECT id, at_ms, event, user_id, mobile, country, client_net, request_id, detail \
         FROM audit_events WHERE at_ms >= $1"
    };
}

/// The audit query for the filters given (each placeholder used once, in
/// order, so MySQL reads it too).
pub(super) fn audit_sql(by_user: bool, by_event: bool) -> &'static str {
    match (by_user, by_event) {
        (false, false) => concat!(audit_select!(), " ORDER BY id DESC LIMIT $2"),
        (true, false) => concat!(
            audit_select!(),
            " AND user_id = $2 ORDER BY id DESC LIMIT $3"
        ),
        (false, true) => concat!(audit_select!(), " AND event = $2 ORDER BY id DESC LIMIT $3"),
        (true, true) => concat!(
            audit_select!(),
            " AND user_id = $2 AND event = $3 ORDER BY id DESC LIMIT $4"
        ),
    }
}
pub(super) const AUDIT_COUNTS: &str = "SELECT event, country, detail, COUNT(*) AS count \
     FROM audit_events WHERE at_ms >= $1 GROUP BY event, country, detail";
pub(super) const PRUNE_AUDIT: &str = "DELETE FROM audit_events WHERE at_ms < $1";
pub(super) const ENQUEUE_WEBHOOK: &str = "INSERT INTO webhook_outbox \
     (msg_id, endpoint, event, payload, created_ms, next_ms) VALUES ($1, $2, $3, $4, $5, $6)";
/// PostgreSQL and SQLite claim in one statement; MySQL has no `RETURNING`
/// on `UPDATE` (see `mysql.rs`).
pub(super) const CLAIM_WEBHOOKS_RETURNING: &str = "UPDATE webhook_outbox SET locked_ms = $1 + $2 \
     WHERE done_ms IS NULL AND next_ms <= $1 AND locked_ms <= $1 AND id IN \
     (SELECT id FROM webhook_outbox WHERE done_ms IS NULL AND next_ms <= $1 AND locked_ms <= $1 \
      ORDER BY id LIMIT $3) \
     RETURNING id, msg_id, endpoint, event, payload, created_ms, attempts";
pub(super) const SETTLE_WEBHOOK: &str = "UPDATE webhook_outbox SET attempts = attempts + 1, \
     next_ms = $1, locked_ms = 0, done_ms = $2 WHERE id = $3";
pub(super) const TOKEN_KEYS: &str =
    "SELECT kid, sealed, created_ms FROM token_keys ORDER BY created_ms DESC LIMIT 10";
pub(super) const ADD_TOKEN_KEY: &str =
    "INSERT INTO token_keys (kid, sealed, created_ms) VALUES ($1, $2, $3)";

/// The one implementation of [`Records`] for an adapter with a `pool`, its
/// [`super::rows::Dialect`] and an inherent `claim_rows` (written by
/// `rows::returning_impl!` where the database has `RETURNING`).
macro_rules! records_impl {
    ($adapter:ty, dialect: $d:ty) => {
        #[async_trait::async_trait]
        impl $crate::users::records::Records for $adapter {
            async fn enqueue_webhook(
                &self,
                m: &records::OutboxMessage,
                next_ms: i64,
            ) -> Result<(), RepoError> {
                let q = sqlx::query(<$d as rows::Dialect>::sql(records::ENQUEUE_WEBHOOK))
                    .bind(&m.msg_id)
                    .bind(&m.endpoint)
                    .bind(&m.event)
                    .bind(&m.payload)
                    .bind(m.created_ms)
                    .bind(next_ms);
                rows::done(q.execute(&self.pool).await)
            }

            async fn claim_webhooks(
                &self,
                now_ms: i64,
                lease_ms: i64,
                limit: i64,
            ) -> Result<Vec<records::OutboxMessage>, RepoError> {
                self.claim_rows(now_ms, lease_ms, limit).await
            }

            async fn settle_webhook(
                &self,
                id: i64,
                next_ms: i64,
                done_ms: Option<i64>,
            ) -> Result<(), RepoError> {
                let q = sqlx::query(<$d as rows::Dialect>::sql(records::SETTLE_WEBHOOK))
                    .bind(next_ms)
                    .bind(done_ms)
                    .bind(id);
                rows::done(q.execute(&self.pool).await)
            }

            async fn token_keys(&self) -> Result<Vec<records::TokenKey>, RepoError> {
                sqlx::query_as(<$d as rows::Dialect>::sql(records::TOKEN_KEYS))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(rows::map_err)
            }

            async fn add_token_key(&self, k: &records::TokenKey) -> Result<(), RepoError> {
                let q = sqlx::query(<$d as rows::Dialect>::sql(records::ADD_TOKEN_KEY))
                    .bind(&k.kid)
                    .bind(&k.sealed)
                    .bind(k.created_ms);
                rows::done(q.execute(&self.pool).await)
            }

            async fn list_signature(&self) -> Result<(i64, i64), RepoError> {
                sqlx::query_as(<$d as rows::Dialect>::sql(records::LIST_SIGNATURE))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(rows::map_err)
            }

            async fn list_entries(&self) -> Result<Vec<records::ListEntry>, RepoError> {
                sqlx::query_as(<$d as rows::Dialect>::sql(records::LIST_ENTRIES))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(rows::map_err)
            }

            async fn add_list_entry(
                &self,
                e: &records::ListEntry,
                at_ms: i64,
            ) -> Result<bool, RepoError> {
                let q = sqlx::query(<$d as rows::Dialect>::ADD_LIST_ENTRY)
                    .bind(&e.list)
                    .bind(&e.kind)
                    .bind(&e.value)
                    .bind(at_ms);
                let done = q.execute(&self.pool).await.map_err(rows::map_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn remove_list_entry(&self, e: &records::ListEntry) -> Result<bool, RepoError> {
                let q = sqlx::query(<$d as rows::Dialect>::sql(records::REMOVE_LIST_ENTRY))
                    .bind(&e.list)
                    .bind(&e.kind)
                    .bind(&e.value);
                let done = q.execute(&self.pool).await.map_err(rows::map_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn append_audit(&self, e: &records::AuditEvent) -> Result<(), RepoError> {
                let q = sqlx::query(<$d as rows::Dialect>::sql(records::APPEND_AUDIT))
                    .bind(e.at_ms)
                    .bind(&e.event)
                    .bind(e.user_id)
                    .bind(&e.mobile)
                    .bind(&e.country)
                    .bind(&e.client_net)
                    .bind(&e.request_id)
                    .bind(&e.detail);
                rows::done(q.execute(&self.pool).await)
            }

            async fn audit(
                &self,
                q: &records::AuditQuery,
            ) -> Result<Vec<records::AuditEvent>, RepoError> {
                let sql = records::audit_sql(q.user_id.is_some(), q.event.is_some());
                let mut query = sqlx::query_as(<$d as rows::Dialect>::sql(sql)).bind(q.since_ms);
                if let Some(user) = q.user_id {
                    query = query.bind(user);
                }
                if let Some(event) = &q.event {
                    query = query.bind(event);
                }
                query
                    .bind(q.limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(rows::map_err)
            }

            async fn audit_counts(
                &self,
                since_ms: i64,
            ) -> Result<Vec<records::EventCount>, RepoError> {
                sqlx::query_as(<$d as rows::Dialect>::sql(records::AUDIT_COUNTS))
                    .bind(since_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(rows::map_err)
            }

            async fn prune_audit(&self, before_ms: i64) -> Result<u64, RepoError> {
                let q =
                    sqlx::query(<$d as rows::Dialect>::sql(records::PRUNE_AUDIT)).bind(before_ms);
                let done = q.execute(&self.pool).await.map_err(rows::map_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(super) use records_impl;
