//! Users in SQLite: the embedded default. WAL mode and a busy timeout let
//! readers proceed while one writer works.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::format_description::well_known::Rfc3339;

use super::records;
use super::rows::Bind;
use super::rows::{self, unavailable, user_columns};
use super::{NewUser, RepoError, User, UserChange, UserRepo};
use crate::domain::Mobile;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteUserRepo {
    pool: SqlitePool,
}

impl SqliteUserRepo {
    pub async fn connect(url: &str) -> Result<Self, RepoError> {
        let opts = SqliteConnectOptions::from_str(url).map_err(unavailable)?;
        create_private(opts.get_filename()).map_err(unavailable)?;
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await
            .map_err(unavailable)?;
        Ok(Self { pool })
    }
}

/// Creates a new database file readable by its owner only (it holds
/// password hashes); SQLite gives its `-wal`/`-shm`/`-journal` files the same
/// mode. An existing file is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

const BY_MOBILE: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE mobile = ?1");
const BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?1");
const INSERT: &str = concat!(
    "INSERT INTO users (mobile, name, password_hash, created_at) \
     VALUES (?1, ?2, ?3, ?4) RETURNING ",
    user_columns!()
);

#[async_trait]
impl UserRepo for SqliteUserRepo {
    async fn create(&self, new: &NewUser) -> Result<User, RepoError> {
        // Stored as RFC 3339 text, which sorts and reads back exactly.
        let created = new
            .created_at
            .format(&Rfc3339)
            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
        let row = sqlx::query_as(INSERT)
            .bind(new.mobile.e164())
            .bind(&new.name)
            .bind(&new.password_hash)
            .bind(created)
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

records::records_impl!(SqliteUserRepo);
