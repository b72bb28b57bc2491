//! Users in SQLite: the embedded default. WAL mode and a busy timeout let
//! readers proceed while one writer works.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{NewUser, RepoError, User, UserRepo};
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

/// The selected columns, as a macro so each query stays a string literal.
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

fn row_to_user(row: &sqlx::sqlite::SqliteRow) -> Result<User, RepoError> {
    let corrupt = |e: &dyn std::fmt::Display| RepoError::Corrupt(e.to_string());
    let mobile: String = row.try_get("mobile").map_err(map_err)?;
    let created: String = row.try_get("created_at").map_err(map_err)?;
    Ok(User {
        id: row.try_get("id").map_err(map_err)?,
        mobile: Mobile::from_e164(&mobile).map_err(|e| corrupt(&e))?,
        name: row.try_get("name").map_err(map_err)?,
        password_hash: row.try_get("password_hash").map_err(map_err)?,
        avatar_url: row.try_get("avatar_url").map_err(map_err)?,
        disabled: row.try_get::<i64, _>("disabled").map_err(map_err)? != 0,
        created_at: OffsetDateTime::parse(&created, &Rfc3339).map_err(|e| corrupt(&e))?,
    })
}

#[async_trait]
impl UserRepo for SqliteUserRepo {
    async fn create(&self, new: &NewUser) -> Result<User, RepoError> {
        let created = new
            .created_at
            .format(&Rfc3339)
            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
        let row = sqlx::query(concat!(
            "INSERT INTO users (mobile, name, password_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4) RETURNING ",
            columns!()
        ))
        .bind(new.mobile.e164())
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(created)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        row_to_user(&row)
    }

    async fn by_mobile(&self, mobile: &Mobile) -> Result<Option<User>, RepoError> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE mobile = ?1"
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
        sqlx::query(concat!("SELECT ", columns!(), " FROM users WHERE id = ?1"))
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
}
