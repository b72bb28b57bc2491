//! Users in PostgreSQL: production mode, shared by every instance. The pool
//! connects lazily, so a database that is down at a given moment costs DBERR
//! answers, not a crash, and the pool recovers when it returns.

use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::records;
use super::rows::{self, unavailable};
use super::{PoolSettings, RepoError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgUserRepo {
    pool: PgPool,
}

impl PgUserRepo {
    pub fn connect(url: &str, settings: PoolSettings) -> Result<Self, RepoError> {
        let opts = PgConnectOptions::from_str(url).map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }
}

rows::user_repo_impl!(
    PgUserRepo,
    created_at: |t| t,
    dialect: rows::Postgres,
    migrator: MIGRATOR
);
rows::returning_impl!(PgUserRepo, time::OffsetDateTime, dialect: rows::Postgres);

records::records_impl!(PgUserRepo, dialect: rows::Postgres);
