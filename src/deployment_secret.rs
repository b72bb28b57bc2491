//! Where the deployment's MAC key lives when `server.secret` is not set.
//! A small port of one operation, [`SecretStore::agree`]: the first instance
//! offers a fresh key and every instance reads back the one that won. The
//! PostgreSQL and MySQL adapters keep it in the `server_secret` table
//! (created by the users migrations); SQLite keeps none (embedded mode uses
//! the file beside the database, `secret::ServerSecret::load_or_create`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;

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

/// A store on one connection (the key is read once, at start): the first
/// writer's key wins (`$insert` leaves an existing row alone) and every
/// instance reads back the same row.
macro_rules! secret_store {
    ($name:ident, $pool:ty, $options:ty, $pool_options:ty, $insert:literal) => {
        pub struct $name {
            pool: $pool,
        }

        impl $name {
            pub fn connect(url: &str) -> Result<Self, RepoError> {
                let opts = <$options>::from_str(url).map_err(unavailable)?;
                let pool = <$pool_options>::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(opts);
                Ok(Self { pool })
            }
        }

        #[async_trait]
        impl SecretStore for $name {
            async fn agree(&self, candidate: &[u8]) -> Result<Vec<u8>, RepoError> {
                sqlx::query($insert)
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
    };
}

fn unavailable(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(e.to_string())
}

secret_store!(
    PgSecretStore,
    sqlx::PgPool,
    sqlx::postgres::PgConnectOptions,
    sqlx::postgres::PgPoolOptions,
    "INSERT INTO server_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING"
);

secret_store!(
    MySqlSecretStore,
    sqlx::MySqlPool,
    sqlx::mysql::MySqlConnectOptions,
    sqlx::mysql::MySqlPoolOptions,
    "INSERT IGNORE INTO server_secret (id, secret) VALUES (1, ?)"
);
