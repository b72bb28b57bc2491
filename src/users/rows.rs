//! What the SQL adapters share: the user row as selected, its mapping to
//! [`User`], and the mapping of driver errors. Each adapter keeps only its
//! SQL (placeholders and column types differ) and its pool.

use sqlx::FromRow;
use time::OffsetDateTime;

use super::{RepoError, User};
use crate::domain::Mobile;

/// The columns every query selects, in [`UserRow`]'s order.
macro_rules! user_columns {
    () => {
        "id, mobile, name, password_hash, avatar_url, disabled, created_at"
    };
}
pub(super) use user_columns;

/// A `users` row as both databases return it (SQLite's `disabled` integer
/// and RFC 3339 text decode to the same types as PostgreSQL's).
#[derive(FromRow)]
pub(super) struct UserRow {
    id: i64,
    mobile: String,
    name: String,
    password_hash: String,
    avatar_url: Option<String>,
    disabled: bool,
    created_at: OffsetDateTime,
}

impl TryFrom<UserRow> for User {
    type Error = RepoError;

    fn try_from(r: UserRow) -> Result<Self, RepoError> {
        Ok(User {
            id: r.id,
            mobile: Mobile::from_e164(&r.mobile).map_err(|e| RepoError::Corrupt(e.to_string()))?,
            name: r.name,
            password_hash: r.password_hash,
            avatar_url: r.avatar_url,
            disabled: r.disabled,
            created_at: r.created_at,
        })
    }
}

/// A query that returns one user.
pub(super) fn one(r: Result<UserRow, sqlx::Error>) -> Result<User, RepoError> {
    r.map_err(map_err)?.try_into()
}

/// A query that may return a user.
pub(super) fn optional(r: Result<Option<UserRow>, sqlx::Error>) -> Result<Option<User>, RepoError> {
    r.map_err(map_err)?.map(User::try_from).transpose()
}

/// A query whose rows do not matter.
pub(super) fn done<T>(r: Result<T, sqlx::Error>) -> Result<(), RepoError> {
    r.map(|_| ()).map_err(map_err)
}

pub(super) fn map_err(e: sqlx::Error) -> RepoError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => RepoError::Duplicate,
        _ => unavailable(e),
    }
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(e.to_string())
}
