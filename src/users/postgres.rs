//! Users in PostgreSQL: production mode, shared by every instance. The pool
//! connects lazily, so a database that is down at a given moment costs DBERR
//! answers, not a crash, and the pool recovers when it returns.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::RepoError;
use super::records;
use super::rows::{self, unavailable};

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

rows::user_repo_impl!(PgUserRepo, created_at: |t| t, migrator: MIGRATOR);

records::records_impl!(PgUserRepo);
