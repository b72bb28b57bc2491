//! Users in MySQL or MariaDB, where the tutorial sites keep theirs. The same
//! statements as the other adapters (read with `?` placeholders), except
//! where MySQL has no `RETURNING`: a new user is read back by its id, a
//! deletion reads the row first in the same transaction, and webhook
//! messages are claimed with a mark and then read by it.

use std::str::FromStr;

use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use time::OffsetDateTime;

use super::records::{self, OutboxMessage};
use super::rows::{self, Dialect, unavailable};
use super::{NewUser, PoolSettings, RepoError, User, UserRepo};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

pub struct MySqlUserRepo {
    pool: MySqlPool,
}

impl MySqlUserRepo {
    /// Connects lazily, like PostgreSQL: a database that is down costs
    /// DBERR answers until it is back. Sessions speak utf8mb4 in UTC.
    pub fn connect(url: &str, settings: PoolSettings) -> Result<Self, RepoError> {
        let opts = MySqlConnectOptions::from_str(url)
            .map_err(unavailable)?
            .charset("utf8mb4")
            .timezone(Some("+00:00".to_owned()));
        let pool = MySqlPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }

    async fn insert_row(
        &self,
        new: &NewUser,
        created_at: OffsetDateTime,
    ) -> Result<User, RepoError> {
        let done = sqlx::query(rows::MySql::sql(rows::INSERT))
            .bind(new.mobile.e164())
            .bind(&new.name)
            .bind(&new.password_hash)
            .bind(created_at)
            .execute(&self.pool)
            .await
            .map_err(rows::map_err)?;
        let id = i64::try_from(done.last_insert_id()).map_err(unavailable)?;
        self.by_id(id)
            .await?
            .ok_or_else(|| RepoError::Unavailable("the new user went away".into()))
    }

    async fn delete_row(&self, id: i64) -> Result<Option<User>, RepoError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let row: Option<rows::UserRow> = sqlx::query_as(rows::BY_ID_LOCKED)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(rows::map_err)?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(rows::map_err)?;
        tx.commit().await.map_err(unavailable)?;
        User::try_from(row).map(Some)
    }

    /// Moves `AUTO_INCREMENT` to at least `through + 1`. InnoDB never lets
    /// it below `MAX(id) + 1`, but would let it go back to there, so it is
    /// changed only when it is lower.
    async fn reserve_rows(&self, through: i64) -> Result<(), RepoError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        // MySQL 8 caches table statistics for a day unless told not to
        // (MariaDB has no such setting, and no such cache).
        let _ = sqlx::query("SET SESSION information_schema_stats_expiry = 0")
            .execute(&mut *conn)
            .await;
        let next: Option<u64> = sqlx::query_scalar(
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'",
        )
        .fetch_optional(&mut *conn)
        .await
        .map_err(rows::map_err)?
        .flatten();
        let wanted = through.saturating_add(1);
        if next.is_some_and(|n| i64::try_from(n).unwrap_or(i64::MAX) >= wanted) {
            return Ok(());
        }
        // DDL takes no placeholders; `wanted` is a number.
        let sql = format!("ALTER TABLE users AUTO_INCREMENT = {wanted}");
        rows::done(
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await,
        )
    }

    /// Marks up to `limit` due messages with a fresh claim, then reads the
    /// marked ones: the `UPDATE` takes them whole, so two instances never
    /// share one.
    async fn claim_rows(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        let claim = crate::secret::random_hex(16);
        let done = sqlx::query(
            "UPDATE webhook_outbox SET locked_ms = ?, claim = ? \
             WHERE done_ms IS NULL AND next_ms <= ? AND locked_ms <= ? ORDER BY id LIMIT ?",
        )
        .bind(now_ms.saturating_add(lease_ms))
        .bind(&claim)
        .bind(now_ms)
        .bind(now_ms)
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(rows::map_err)?;
        if done.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        sqlx::query_as(
            "SELECT id, msg_id, endpoint, event, payload, created_ms, attempts \
             FROM webhook_outbox WHERE claim = ? ORDER BY id",
        )
        .bind(&claim)
        .fetch_all(&self.pool)
        .await
        .map_err(rows::map_err)
    }
}

rows::user_repo_impl!(
    MySqlUserRepo,
    created_at: |t| t,
    dialect: rows::MySql,
    migrator: MIGRATOR
);

records::records_impl!(MySqlUserRepo, dialect: rows::MySql);
