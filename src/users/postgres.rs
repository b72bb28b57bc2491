//! Users in PostgreSQL: production mode, shared by every instance. The pool
//! connects lazily, so a database that is down at a given moment costs DBERR
//! answers, not a crash, and the pool recovers when it returns.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::records;
use super::rows::Bind;
use super::rows::{self, unavailable, user_columns};
use super::{NewUser, RepoError, User, UserChange, UserRepo};
use crate::domain::Mobile;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Pool settings of `database.*`.
#[derive(Debug, Clone, Copy)]
pub struct PgSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

pub struct PgUserRepo {
    pool: PgPool,
}

impl PgUserRepo {
    pub fn connect(url: &str, settings: PgSettings) -> Result<Self, RepoError> {
        let opts = PgConnectOptions::from_str(url).map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }
}

const BY_MOBILE: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE mobile = $1");
const BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
const INSERT: &str = concat!(
    "INSERT INTO users (mobile, name, password_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING ",
    user_columns!()
);

#[async_trait]
impl UserRepo for PgUserRepo {
    async fn create(&self, new: &NewUser) -> Result<User, RepoError> {
        let row = sqlx::query_as(INSERT)
            .bind(new.mobile.e164())
            .bind(&new.name)
            .bind(&new.password_hash)
            .bind(new.created_at)
            .fetch_one(&self.pool)
            .await;
        match rows::one(row) {
            // Both constraints may fail at once (a default name is the
            // number): a taken number is what the caller must hear.
            Err(RepoError::NameTaken) if self.by_mobile(&new.mobile).await?.is_some() => {
                Err(RepoError::Duplicate)
            }
            other => other,
        }
    }

    async fn by_mobile(&self, mobile: &Mobile) -> Result<Option<User>, RepoError> {
        let q = sqlx::query_as(BY_MOBILE).bind(mobile.e164());
        rows::optional(q.fetch_optional(&self.pool).await)
    }

    async fn by_id(&self, id: i64) -> Result<Option<User>, RepoError> {
        rows::optional(
            sqlx::query_as(BY_ID)
                .bind(id)
                .fetch_optional(&self.pool)
                .await,
        )
    }

    async fn update(&self, id: i64, change: UserChange<'_>) -> Result<bool, RepoError> {
        let (sql, binds) = rows::change(id, &change);
        let mut q = sqlx::query(sql);
        for b in binds {
            q = match b {
                Bind::Int(i) => q.bind(i),
                Bind::Text(t) => q.bind(t),
                Bind::Bool(b) => q.bind(b),
            };
        }
        let done = q.execute(&self.pool).await.map_err(rows::map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, id: i64) -> Result<Option<User>, RepoError> {
        let q = sqlx::query_as(rows::DELETE).bind(id);
        rows::optional(q.fetch_optional(&self.pool).await)
    }

    async fn ping(&self) -> Result<(), RepoError> {
        rows::done(sqlx::query("SELECT 1").execute(&self.pool).await)
    }

    async fn migrate(&self) -> Result<(), RepoError> {
        MIGRATOR.run(&self.pool).await.map_err(unavailable)
    }
}

records::records_impl!(PgUserRepo);
