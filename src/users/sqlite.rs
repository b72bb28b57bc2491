//! Users in SQLite: the embedded default. WAL mode and a busy timeout let
//! readers proceed while one writer works.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::format_description::well_known::Rfc3339;

use super::RepoError;
use super::records;
use super::rows::{self, unavailable};

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

// Stored as RFC 3339 text, which sorts and reads back exactly.
rows::user_repo_impl!(
    SqliteUserRepo,
    created_at: |t| t
        .format(&Rfc3339)
        .map_err(|e| RepoError::Corrupt(e.to_string()))?,
    dialect: rows::Sqlite,
    migrator: MIGRATOR
);
rows::returning_impl!(SqliteUserRepo, String, dialect: rows::Sqlite);

records::records_impl!(SqliteUserRepo, dialect: rows::Sqlite);
