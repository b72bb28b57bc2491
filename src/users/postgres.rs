//! Users in PostgreSQL: production mode, shared by every instance. The pool
//! connects lazily, so a database that is down at a given moment costs DBERR
//! answers, not a crash, and the pool recovers when it returns.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use super::{NewUser, RepoError, User, UserRepo};
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

macro_rules! columns {
    () => {
        "id, mobile, name, password_hash, avatar_url, disabled, created_at"
    };
}

fn unavailable(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(e.to_string())
}

fn map_err(e: sqlx::Error) -> RepoError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => RepoError::Duplicate,
        _ => unavailable(e),
    }
}

fn row_to_user(row: &PgRow) -> Result<User, RepoError> {
    let mobile: String = row.try_get("mobile").map_err(map_err)?;
    Ok(User {
        id: row.try_get("id").map_err(map_err)?,
        mobile: Mobile::from_e164(&mobile).map_err(|e| RepoError::Corrupt(e.to_string()))?,
        name: row.try_get("name").map_err(map_err)?,
        password_hash: row.try_get("password_hash").map_err(map_err)?,
        avatar_url: row.try_get("avatar_url").map_err(map_err)?,
        disabled: row.try_get("disabled").map_err(map_err)?,
        created_at: row
            .try_get::<OffsetDateTime, _>("created_at")
            .map_err(map_err)?,
    })
}

#[async_trait]
impl UserRepo for PgUserRepo {
    async fn create(&self, new: &NewUser) -> Result<User, RepoError> {
        let row = sqlx::query(concat!(
            "INSERT INTO users (mobile, name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING ",
            columns!()
        ))
        .bind(new.mobile.e164())
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        row_to_user(&row)
    }

    async fn by_mobile(&self, mobile: &Mobile) -> Result<Option<User>, RepoError> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE mobile = $1"
        ))
        .bind(mobile.e164())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(row_to_user)
        .transpose()
    }

    async fn by_id(&self, id: i64) -> Result<Option<User>, RepoError> {
        sqlx::query(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(row_to_user)
            .transpose()
    }

    async fn ping(&self) -> Result<(), RepoError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn migrate(&self) -> Result<(), RepoError> {
        MIGRATOR.run(&self.pool).await.map_err(unavailable)
    }

    async fn shared_secret(&self, candidate: &[u8]) -> Result<Option<Vec<u8>>, RepoError> {
        // First writer wins; every instance then reads the same row.
        sqlx::query(
            "INSERT INTO server_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let secret: Vec<u8> = sqlx::query_scalar("SELECT secret FROM server_secret WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(Some(secret))
    }
}
