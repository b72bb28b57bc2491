//! Where the deployment's MAC key lives when `server.secret` is not set.
//! A small port of one operation, [`SecretStore::agree`]: the first instance
//! offers a fresh key and every instance reads back the one that won. The
//! PostgreSQL and MySQL adapters keep it in the `server_secret` table
//! (created by the users migrations); SQLite keeps none (embedded mode uses the file beside
//! the database, `secret::ServerSecret::load_or_create`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::users::RepoError;

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores `candidate` unless a key is stored already; returns the stored
    /// key.
    async fn agree(&self, candidate: &[u8]) -> Result<Vec<u8>, RepoError>;
}

/// The store for `database.url`, when that database can keep the key.
pub fn for_database(url: &str) -> Result<Option<Box<dyn SecretStore>>, RepoError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Some(Box::new(PgSecretStore::connect(url)?)))
    } else if url.starts_with("mysql://") {
        Ok(Some(Box::new(MySqlSecretStore::connect(url)?)))
    } else {
        Ok(None)
    }
}

pub struct PgSecretStore {
    pool: PgPool,
}

impl PgSecretStore {
    /// A one-connection pool: the key is read once, at start.
    pub fn connect(url: &str) -> Result<Self, RepoError> {
        let opts =
            PgConnectOptions::from_str(url).map_err(|e| RepoError::Unavailable(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }
}

#[async_trait]
impl SecretStore for PgSecretStore {
    async fn agree(&self, candidate: &[u8]) -> Result<Vec<u8>, RepoError> {
        let unavailable = |e: sqlx::Error| RepoError::Unavailable(e.to_string());
        // First writer wins; every instance then reads the same row.
        sqlx::query(
            "INSERT INTO server_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        sqlx::query_scalar("SELECT secret FROM server_secret WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
    }
}

pub struct MySqlSecretStore {
    pool: sqlx::MySqlPool,
}

impl MySqlSecretStore {
    /// A one-connection pool: the key is read once, at start.
    pub fn connect(url: &str) -> Result<Self, RepoError> {
        let opts = sqlx::mysql::MySqlConnectOptions::from_str(url)
            .map_err(|e| RepoError::Unavailable(e.to_string()))?;
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }
}

#[async_trait]
impl SecretStore for MySqlSecretStore {
    async fn agree(&self, candidate: &[u8]) -> Result<Vec<u8>, RepoError> {
        let unavailable = |e: sqlx::Error| RepoError::Unavailable(e.to_string());
        sqlx::query("INSERT IGNORE INTO server_secret (id, secret) VALUES (1, ?)")
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        sqlx::query_scalar("SELECT secret FROM server_secret WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
    }
}
