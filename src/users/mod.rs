//! The user repository port and its SQL implementations, chosen once at start
//! from `database.url`. The adapters share their row mapping (`rows`).

pub mod mysql;
pub mod postgres;
pub mod records;
mod rows;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::Mobile;
pub use records::{
    AuditEvent, AuditQuery, EventCount, ListEntry, OutboxMessage, Records, TokenKey,
};

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub mobile: Mobile,
    pub name: String,
    pub password_hash: String,
    pub avatar_url: Option<String>,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
    pub real_name: Option<String>,
    /// The ID number as it may be shown (`110105********1234`).
    pub id_card_masked: Option<String>,
}

impl User {
    /// The user as an operator sees it (admin API, CLI): the whole number,
    /// never the password hash or the sealed ID number.
    pub fn operator_view(&self) -> serde_json::Value {
        use time::format_description::well_known::Rfc3339;
        serde_json::json!({
            "user_id": self.id,
            "mobile": self.mobile.e164(),
            "name": self.name,
            "disabled": self.disabled,
            "avatar": self.avatar_url,
            "real_name": self.real_name,
            "id_card": self.id_card_masked,
            "create_time": self.created_at.format(&Rfc3339).unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub mobile: Mobile,
    pub name: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

/// A user of the old site as `phoneauth import-users` brings it: its id
/// kept, so the old site's other tables still point at it, and its password
/// hash as the old site made it (verified at login, then replaced).
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub id: i64,
    pub mobile: Mobile,
    pub name: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

/// One change to a user row ([`UserRepo::update`]).
#[derive(Debug, Clone, Copy)]
pub enum UserChange<'a> {
    Password(&'a str),
    /// The hash `from` becomes `to`, unless it changed meanwhile (an
    /// imported hash upgraded at login must not undo a reset).
    ReplaceHash {
        from: &'a str,
        to: &'a str,
    },
    /// A new number; with `rename: Some((old, new))` the name follows the
    /// number when it is still `old` (the default name, the old number).
    Mobile {
        mobile: &'a Mobile,
        rename: Option<(&'a str, &'a str)>,
    },
    Name(&'a str),
    Avatar(Option<&'a str>),
    /// An operator disables or enables the account.
    Disabled(bool),
    /// Recorded once: a user that has a real name already is not changed.
    Identity {
        real_name: &'a str,
        /// The ID number encrypted under the server secret.
        sealed: &'a str,
        masked: &'a str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("a user with this mobile number exists")]
    Duplicate,
    #[error("a user with this name exists")]
    NameTaken,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait UserRepo: Records {
    /// Inserts a user; the unique mobile constraint answers `Duplicate`, also
    /// when two registrations race.
    async fn create(&self, new: &NewUser) -> Result<User, RepoError>;
    async fn by_mobile(&self, mobile: &Mobile) -> Result<Option<User>, RepoError>;
    async fn by_id(&self, id: i64) -> Result<Option<User>, RepoError>;
    /// The users of these ids that exist, in no particular order.
    async fn by_ids(&self, ids: &[i64]) -> Result<Vec<User>, RepoError>;
    /// Inserts imported users with their ids in one transaction, leaving
    /// out each row whose id, number or name is taken; how many went in.
    async fn import(&self, batch: &[ImportedUser]) -> Result<u64, RepoError>;
    /// Moves the id counter so that new users get ids above `through` (an
    /// import reserves the old site's ids before it runs); never back.
    async fn reserve_ids(&self, through: i64) -> Result<(), RepoError>;
    /// Applies one change; `Ok(false)` when no row changed (no such user, or
    /// an identity recorded already). Unique constraints answer `Duplicate`
    /// (mobile) and `NameTaken`, also under races.
    async fn update(&self, id: i64, change: UserChange<'_>) -> Result<bool, RepoError>;
    /// Deletes the user; the row as it was, or `None` when there was none.
    async fn delete(&self, id: i64) -> Result<Option<User>, RepoError>;
    async fn ping(&self) -> Result<(), RepoError>;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), RepoError>;
}

pub type SharedUserRepo = Arc<dyn UserRepo>;

/// Pool settings of `database.*` (PostgreSQL and MySQL).
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(3),
        }
    }
}

/// Opens the repository named by `url` (`sqlite://…`, `postgres://…` or
/// `mysql://…`).
pub async fn connect(url: &str, pg: PoolSettings) -> Result<SharedUserRepo, RepoError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteUserRepo::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgUserRepo::connect(url, pg)?))
    } else if url.starts_with("mysql://") {
        Ok(Arc::new(mysql::MySqlUserRepo::connect(url, pg)?))
    } else {
        Err(RepoError::Unavailable(format!(
            "unsupported database URL scheme in {:?}",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
