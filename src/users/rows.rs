//! What the SQL adapters share: the user row as selected, its mapping to
//! [`User`], and the mapping of driver errors. Each adapter keeps only its
//! SQL (placeholders and column types differ) and its pool.

use sqlx::FromRow;
use time::OffsetDateTime;

use super::{RepoError, User, UserChange};
use crate::domain::Mobile;

/// The columns every query selects, in [`UserRow`]'s order.
macro_rules! user_columns {
    () => {
        "id, mobile, name, password_hash, avatar_url, disabled, created_at, real_name, id_card_masked"
    };
}

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
    real_name: Option<String>,
    id_card_masked: Option<String>,
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
            real_name: r.real_name,
            id_card_masked: r.id_card_masked,
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
        // PostgreSQL names the constraint; SQLite names the column.
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            if db.constraint() == Some("users_name_key") || db.message().contains("users.name") {
                RepoError::NameTaken
            } else {
                RepoError::Duplicate
            }
        }
        _ => unavailable(e),
    }
}

/// A value bound to a statement of [`change`].
pub(super) enum Bind<'a> {
    Int(i64),
    Text(&'a str),
    Bool(bool),
}

/// The statement of one [`UserChange`] and its values, in `$n` placeholders
/// (which SQLite reads as well as PostgreSQL). `$1` is always the user id.
pub(super) fn change<'a>(id: i64, c: &UserChange<'a>) -> (&'static str, Vec<Bind<'a>>) {
    use Bind::{Int, Text};
    match *c {
        UserChange::Password(hash) => (
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            vec![Int(id), Text(hash)],
        ),
        UserChange::ReplaceHash { from, to } => (
            "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
            vec![Int(id), Text(from), Text(to)],
        ),
        UserChange::Mobile { mobile, rename } => {
            let (from, to) = rename.unwrap_or(("", ""));
            (
                "UPDATE users SET mobile = $2, \
                 name = CASE WHEN name = $3 THEN $4 ELSE name END WHERE id = $1",
                vec![Int(id), Text(mobile.e164()), Text(from), Text(to)],
            )
        }
        UserChange::Name(name) => (
            "UPDATE users SET name = $2 WHERE id = $1",
            vec![Int(id), Text(name)],
        ),
        UserChange::Avatar(avatar) => match avatar {
            Some(a) => (
                "UPDATE users SET avatar_url = $2 WHERE id = $1",
                vec![Int(id), Text(a)],
            ),
            None => (
                "UPDATE users SET avatar_url = NULL WHERE id = $1",
                vec![Int(id)],
            ),
        },
        UserChange::Disabled(disabled) => (
            "UPDATE users SET disabled = $2 WHERE id = $1",
            vec![Int(id), Bind::Bool(disabled)],
        ),
        UserChange::Identity {
            real_name,
            sealed,
            masked,
        } => (
            "UPDATE users SET real_name = $2, id_card_sealed = $3, id_card_masked = $4 \
             WHERE id = $1 AND real_name IS NULL",
            vec![Int(id), Text(real_name), Text(sealed), Text(masked)],
        ),
    }
}

/// Deletes a user and returns the row as it was.
pub(super) const DELETE: &str = concat!(
    "DELETE FROM users WHERE id = $1 RETURNING ",
    user_columns!()
);

pub(super) fn unavailable(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(e.to_string())
}

/// The user queries, in `$n` placeholders (SQLite reads them as well as
/// PostgreSQL).
pub(super) const BY_MOBILE: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE mobile = $1");
pub(super) const BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
pub(super) const INSERT: &str = concat!(
    "INSERT INTO users (mobile, name, password_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING ",
    user_columns!()
);

/// The one implementation of [`super::UserRepo`] for an adapter with a
/// `pool`: the adapters differ only in how `created_at` is bound (`|t|` an
/// expression of the time, which may use `?`) and in their migrations.
macro_rules! user_repo_impl {
    ($adapter:ty, created_at: |$t:ident| $created:expr, migrator: $migrator:expr) => {
        #[async_trait::async_trait]
        impl $crate::users::UserRepo for $adapter {
            async fn create(
                &self,
                new: &$crate::users::NewUser,
            ) -> Result<$crate::users::User, $crate::users::RepoError> {
                let $t = new.created_at;
                let row = sqlx::query_as(rows::INSERT)
                    .bind(new.mobile.e164())
                    .bind(&new.name)
                    .bind(&new.password_hash)
                    .bind($created)
                    .fetch_one(&self.pool)
                    .await;
                match rows::one(row) {
                    // Both constraints may fail at once (a default name is
                    // the number): a taken number is what the caller must
                    // hear.
                    Err($crate::users::RepoError::NameTaken)
                        if self.by_mobile(&new.mobile).await?.is_some() =>
                    {
                        Err($crate::users::RepoError::Duplicate)
                    }
                    other => other,
                }
            }

            async fn by_mobile(
                &self,
                mobile: &$crate::domain::Mobile,
            ) -> Result<Option<$crate::users::User>, $crate::users::RepoError> {
                let q = sqlx::query_as(rows::BY_MOBILE).bind(mobile.e164());
                rows::optional(q.fetch_optional(&self.pool).await)
            }

            async fn by_id(
                &self,
                id: i64,
            ) -> Result<Option<$crate::users::User>, $crate::users::RepoError> {
                let q = sqlx::query_as(rows::BY_ID).bind(id);
                rows::optional(q.fetch_optional(&self.pool).await)
            }

            async fn update(
                &self,
                id: i64,
                change: $crate::users::UserChange<'_>,
            ) -> Result<bool, $crate::users::RepoError> {
                let (sql, binds) = rows::change(id, &change);
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = match b {
                        rows::Bind::Int(i) => q.bind(i),
                        rows::Bind::Text(t) => q.bind(t),
                        rows::Bind::Bool(b) => q.bind(b),
                    };
                }
                let done = q.execute(&self.pool).await.map_err(rows::map_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete(
                &self,
                id: i64,
            ) -> Result<Option<$crate::users::User>, $crate::users::RepoError> {
                let q = sqlx::query_as(rows::DELETE).bind(id);
                rows::optional(q.fetch_optional(&self.pool).await)
            }

            async fn ping(&self) -> Result<(), $crate::users::RepoError> {
                rows::done(sqlx::query("SELECT 1").execute(&self.pool).await)
            }

            async fn migrate(&self) -> Result<(), $crate::users::RepoError> {
                $migrator.run(&self.pool).await.map_err(rows::unavailable)
            }
        }
    };
}
pub(super) use user_repo_impl;
