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
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            // PostgreSQL names the constraint, MySQL names it in the message
            // and SQLite names the column.
            let m = db.message();
            if db.constraint() == Some("users_name_key")
                || m.contains("users_name_key")
                || m.contains("users.name")
            {
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

/// The statement of one [`UserChange`] and its values. Its placeholders
/// are numbered in the order of the values and each is used once, so the
/// text also reads as MySQL's `?` (see [`positional`]); the user id is
/// always the last.
pub(super) fn change<'a>(id: i64, c: &UserChange<'a>) -> (&'static str, Vec<Bind<'a>>) {
    use Bind::{Int, Text};
    match *c {
        UserChange::Password(hash) => (
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            vec![Text(hash), Int(id)],
        ),
        UserChange::ReplaceHash { from, to } => (
            "UPDATE users SET password_hash = $1 WHERE password_hash = $2 AND id = $3",
            vec![Text(to), Text(from), Int(id)],
        ),
        UserChange::Mobile { mobile, rename } => {
            let (from, to) = rename.unwrap_or(("", ""));
            (
                "UPDATE users SET mobile = $1, \
                 name = CASE WHEN name = $2 THEN $3 ELSE name END WHERE id = $4",
                vec![Text(mobile.e164()), Text(from), Text(to), Int(id)],
            )
        }
        UserChange::Name(name) => (
            "UPDATE users SET name = $1 WHERE id = $2",
            vec![Text(name), Int(id)],
        ),
        UserChange::Avatar(avatar) => match avatar {
            Some(a) => (
                "UPDATE users SET avatar_url = $1 WHERE id = $2",
                vec![Text(a), Int(id)],
            ),
            None => (
                "UPDATE users SET avatar_url = NULL WHERE id = $1",
                vec![Int(id)],
            ),
        },
        UserChange::Disabled(disabled) => (
            "UPDATE users SET disabled = $1 WHERE id = $2",
            vec![Bind::Bool(disabled), Int(id)],
        ),
        UserChange::Identity {
            real_name,
            sealed,
            masked,
        } => (
            "UPDATE users SET real_name = $1, id_card_sealed = $2, id_card_masked = $3 \
             WHERE real_name IS NULL AND id = $4",
            vec![Text(real_name), Text(sealed), Text(masked), Int(id)],
        ),
    }
}

/// What differs between the SQL of the databases, beyond what each
/// adapter's own methods do.
pub(super) trait Dialect {
    /// A shared statement as this database reads it.
    fn sql(shared: &'static str) -> &'static str;
    /// The `n`th placeholder (from 1) of a statement built at run time.
    fn param(n: usize) -> String;
    /// Inserts users with their ids, leaving out any row that breaks a
    /// unique constraint: the text before the `VALUES` rows and after them.
    const IMPORT: (&'static str, &'static str);
    /// Rows in one such statement (SQLite parses long ones slowly).
    const IMPORT_ROWS: usize = 1000;
    /// Statements that move the id counter to at least `$1`, never back
    /// (MySQL's is DDL: see `mysql.rs`).
    const RESERVE_IDS: &'static [&'static str] = &[];
    /// Taken first in a transaction that moves the id counter, so that no
    /// registration draws an id between the counter's read and its write.
    const RESERVE_LOCK: &'static [&'static str] = &[];
    /// Adds a list entry unless it is there ([`super::records::ADD_LIST_ENTRY`]).
    const ADD_LIST_ENTRY: &'static str = super::records::ADD_LIST_ENTRY;
}

pub(super) struct Sqlite;
pub(super) struct Postgres;
pub(super) struct MySql;

impl Dialect for Sqlite {
    fn sql(shared: &'static str) -> &'static str {
        shared
    }
    fn param(n: usize) -> String {
        format!("${n}")
    }
    const IMPORT: (&'static str, &'static str) = (
        "INSERT INTO users (id, mobile, name, password_hash, created_at)",
        " ON CONFLICT DO NOTHING",
    );
    const IMPORT_ROWS: usize = 200;
    // AUTOINCREMENT keeps its counter in `sqlite_sequence`, which may be
    // written like any table.
    const RESERVE_IDS: &'static [&'static str] = &[
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'users', $1 \
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users')",
        "UPDATE sqlite_sequence SET seq = $1 WHERE name = 'users' AND seq < $1",
    ];
}

impl Dialect for Postgres {
    fn sql(shared: &'static str) -> &'static str {
        shared
    }
    fn param(n: usize) -> String {
        format!("${n}")
    }
    // The id column is `GENERATED ALWAYS`: an import gives its own.
    const IMPORT: (&'static str, &'static str) = (
        "INSERT INTO users (id, mobile, name, password_hash, created_at) OVERRIDING SYSTEM VALUE",
        " ON CONFLICT DO NOTHING",
    );
    // Forward only: the sequence may be ahead of MAX(id) (deleted users,
    // registrations not yet committed), and those ids must not come back.
    // Registrations wait for the lock (one batch), so none draws an id
    // between the read of the sequence and `setval`.
    // A lock still waited for would hold up every registration behind it:
    // after 2 s the import gives up (and is run again).
    const RESERVE_LOCK: &'static [&'static str] = &[
        "SET LOCAL lock_timeout = '2s'",
        "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE",
    ];
    const RESERVE_IDS: &'static [&'static str] = &[
        "SELECT setval(pg_get_serial_sequence('users', 'id'), GREATEST($1, \
         (SELECT COALESCE(MAX(id), 1) FROM users), \
         COALESCE(pg_sequence_last_value(pg_get_serial_sequence('users', 'id')::regclass), 1)))",
    ];
}

impl Dialect for MySql {
    fn sql(shared: &'static str) -> &'static str {
        positional(shared)
    }
    fn param(_: usize) -> String {
        "?".into()
    }
    // InnoDB moves AUTO_INCREMENT past the inserted ids by itself.
    const IMPORT: (&'static str, &'static str) = (
        "INSERT IGNORE INTO users (id, mobile, name, password_hash, created_at)",
        "",
    );
    const ADD_LIST_ENTRY: &'static str = "INSERT IGNORE INTO list_entries \
         (list, kind, value, created_ms) VALUES (?, ?, ?, ?)";
}

/// A shared statement as MySQL reads it: each `$n` becomes `?`. The shared
/// statements number their placeholders in order and use each once (the
/// unit test below holds them to it), so positions keep their meaning. The
/// statements are few and fixed: each is translated once and kept.
fn positional(sql: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{LazyLock, RwLock};
    static DONE: LazyLock<RwLock<HashMap<&'static str, &'static str>>> =
        LazyLock::new(Default::default);
    if let Some(done) = DONE.read().unwrap_or_else(|e| e.into_inner()).get(sql) {
        return done;
    }
    let translated: &'static str = Box::leak(question_marks(sql).into_boxed_str());
    DONE.write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sql, translated);
    translated
}

fn question_marks(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// The numbers of a statement's placeholders, in the order they appear.
#[cfg(test)]
pub(super) fn placeholder_order(sql: &str) -> Vec<u32> {
    sql.split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Deletes a user and returns the row as it was (PostgreSQL and SQLite).
pub(super) const DELETE_RETURNING: &str = concat!(
    "DELETE FROM users WHERE id = $1 RETURNING ",
    user_columns!()
);

pub(super) fn unavailable(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(e.to_string())
}

/// The user queries (numbered in order: see [`positional`]).
pub(super) const BY_MOBILE: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE mobile = $1");
pub(super) const BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
/// [`BY_ID`] locking the row for the transaction (MySQL).
pub(super) const BY_ID_LOCKED: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE id = ? FOR UPDATE"
);
/// Followed by a list of placeholders in parentheses.
pub(super) const BY_IDS: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id IN");
pub(super) const INSERT: &str = "INSERT INTO users (mobile, name, password_hash, created_at) \
     VALUES ($1, $2, $3, $4)";
/// [`INSERT`] returning the row (PostgreSQL and SQLite).
pub(super) const INSERT_RETURNING: &str = concat!(
    "INSERT INTO users (mobile, name, password_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING ",
    user_columns!()
);

/// The one implementation of [`super::UserRepo`] for an adapter with a
/// `pool`. The adapters differ in how `created_at` is bound (`|t|` an
/// expression of the time, which may use `?`), in their [`Dialect`], in
/// their migrations, and in two inherent methods, `insert_row` and
/// `delete_row` (written by [`returning_impl!`] where the database has
/// `RETURNING`).
macro_rules! user_repo_impl {
    (
        $adapter:ty,
        created_at: |$t:ident| $created:expr,
        dialect: $d:ty,
        migrator: $migrator:expr
    ) => {
        #[async_trait::async_trait]
        impl $crate::users::UserRepo for $adapter {
            async fn create(
                &self,
                new: &$crate::users::NewUser,
            ) -> Result<$crate::users::User, $crate::users::RepoError> {
                let $t = new.created_at;
                match self.insert_row(new, $created).await {
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
                let q =
                    sqlx::query_as(<$d as rows::Dialect>::sql(rows::BY_MOBILE)).bind(mobile.e164());
                rows::optional(q.fetch_optional(&self.pool).await)
            }

            async fn by_id(
                &self,
                id: i64,
            ) -> Result<Option<$crate::users::User>, $crate::users::RepoError> {
                let q = sqlx::query_as(<$d as rows::Dialect>::sql(rows::BY_ID)).bind(id);
                rows::optional(q.fetch_optional(&self.pool).await)
            }

            async fn update(
                &self,
                id: i64,
                change: $crate::users::UserChange<'_>,
            ) -> Result<bool, $crate::users::RepoError> {
                let (sql, binds) = rows::change(id, &change);
                let mut q = sqlx::query(<$d as rows::Dialect>::sql(sql));
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
                self.delete_row(id).await
            }

            async fn by_ids(
                &self,
                ids: &[i64],
            ) -> Result<Vec<$crate::users::User>, $crate::users::RepoError> {
                use rows::Dialect as _;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let list: Vec<String> = (1..=ids.len()).map(<$d>::param).collect();
                let sql = format!("{} ({})", rows::BY_IDS, list.join(", "));
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for id in ids {
                    q = q.bind(*id);
                }
                let rows: Vec<rows::UserRow> =
                    q.fetch_all(&self.pool).await.map_err(rows::map_err)?;
                rows.into_iter()
                    .map($crate::users::User::try_from)
                    .collect()
            }

            async fn import(
                &self,
                batch: &[$crate::users::ImportedUser],
            ) -> Result<u64, $crate::users::RepoError> {
                use rows::Dialect as _;
                if batch.is_empty() {
                    return Ok(0);
                }
                // One transaction, so one commit (one flush to disk) a batch,
                // of statements of IMPORT_ROWS rows each; MySQL's counter
                // moves by itself (its RESERVE_IDS is empty).
                let (head, tail) = <$d>::IMPORT;
                let mut tx = self.pool.begin().await.map_err(rows::unavailable)?;
                rows::execute_each!(tx, <$d>::RESERVE_LOCK);
                let mut inserted = 0;
                for chunk in batch.chunks(<$d>::IMPORT_ROWS) {
                    let values: Vec<String> = (0..chunk.len())
                        .map(|i| {
                            let p: Vec<String> = (5 * i + 1..=5 * i + 5).map(<$d>::param).collect();
                            format!("({})", p.join(", "))
                        })
                        .collect();
                    let sql = format!("{head} VALUES {}{tail}", values.join(", "));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for u in chunk {
                        let $t = u.created_at;
                        q = q
                            .bind(u.id)
                            .bind(u.mobile.e164())
                            .bind(&u.name)
                            .bind(&u.password_hash)
                            .bind($created);
                    }
                    inserted += q
                        .execute(&mut *tx)
                        .await
                        .map_err(rows::map_err)?
                        .rows_affected();
                }
                if inserted > 0 {
                    let highest = batch.iter().map(|u| u.id).max().unwrap_or(0);
                    rows::execute_each!(tx, <$d>::RESERVE_IDS, highest);
                }
                tx.commit().await.map_err(rows::unavailable)?;
                Ok(inserted)
            }

            async fn reserve_ids(&self, through: i64) -> Result<(), $crate::users::RepoError> {
                self.reserve_rows(through).await
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

/// Runs fixed statements in a transaction, each with the one value given.
macro_rules! execute_each {
    ($tx:ident, $statements:expr $(, $value:expr)?) => {
        for sql in $statements {
            sqlx::query(*sql)
                $(.bind($value))?
                .execute(&mut *$tx)
                .await
                .map_err(rows::map_err)?;
        }
    };
}
pub(super) use execute_each;

/// `insert_row`, `delete_row` and `claim_rows` with `RETURNING`, and
/// `reserve_rows` with the [`Dialect`]'s statements (PostgreSQL and SQLite).
macro_rules! returning_impl {
    ($adapter:ty, $created:ty, dialect: $d:ty) => {
        impl $adapter {
            async fn reserve_rows(&self, through: i64) -> Result<(), $crate::users::RepoError> {
                use rows::Dialect as _;
                let mut tx = self.pool.begin().await.map_err(rows::unavailable)?;
                rows::execute_each!(tx, <$d>::RESERVE_LOCK);
                rows::execute_each!(tx, <$d>::RESERVE_IDS, through);
                tx.commit().await.map_err(rows::unavailable)
            }

            async fn insert_row(
                &self,
                new: &$crate::users::NewUser,
                created_at: $created,
            ) -> Result<$crate::users::User, $crate::users::RepoError> {
                let row = sqlx::query_as(rows::INSERT_RETURNING)
                    .bind(new.mobile.e164())
                    .bind(&new.name)
                    .bind(&new.password_hash)
                    .bind(created_at)
                    .fetch_one(&self.pool)
                    .await;
                rows::one(row)
            }

            async fn delete_row(
                &self,
                id: i64,
            ) -> Result<Option<$crate::users::User>, $crate::users::RepoError> {
                let q = sqlx::query_as(rows::DELETE_RETURNING).bind(id);
                rows::optional(q.fetch_optional(&self.pool).await)
            }

            async fn claim_rows(
                &self,
                now_ms: i64,
                lease_ms: i64,
                limit: i64,
            ) -> Result<Vec<$crate::users::OutboxMessage>, $crate::users::RepoError> {
                sqlx::query_as($crate::users::records::CLAIM_WEBHOOKS_RETURNING)
                    .bind(now_ms)
                    .bind(lease_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(rows::map_err)
            }
        }
    };
}
pub(super) use returning_impl;

#[cfg(test)]
mod tests {
    use super::super::records;
    use super::*;
    use crate::domain::MobilePolicy;

    /// MySQL reads `$n` as `?` by position: every statement it shares must
    /// number its placeholders 1, 2, 3… in the order they appear.
    #[test]
    fn shared_statements_number_their_placeholders_in_order() {
        let mobile = Mobile::parse("13812345678", &MobilePolicy::default()).expect("mobile");
        let changes = [
            UserChange::Password("h"),
            UserChange::ReplaceHash { from: "a", to: "b" },
            UserChange::Mobile {
                mobile: &mobile,
                rename: Some(("a", "b")),
            },
            UserChange::Name("n"),
            UserChange::Avatar(Some("a")),
            UserChange::Avatar(None),
            UserChange::Disabled(true),
            UserChange::Identity {
                real_name: "r",
                sealed: "s",
                masked: "m",
            },
        ];
        let mut shared = vec![
            BY_MOBILE,
            BY_ID,
            INSERT,
            records::LIST_SIGNATURE,
            records::LIST_ENTRIES,
            records::REMOVE_LIST_ENTRY,
            records::APPEND_AUDIT,
            records::AUDIT_COUNTS,
            records::PRUNE_AUDIT,
            records::ENQUEUE_WEBHOOK,
            records::SETTLE_WEBHOOK,
            records::TOKEN_KEYS,
            records::ADD_TOKEN_KEY,
        ];
        for (user, event) in [(false, false), (true, false), (false, true), (true, true)] {
            shared.push(records::audit_sql(user, event));
        }
        for c in &changes {
            let (sql, binds) = change(7, c);
            assert_eq!(placeholder_order(sql).len(), binds.len(), "{sql}");
            shared.push(sql);
        }
        for sql in shared {
            let order = placeholder_order(sql);
            let expected: Vec<u32> = (1..=u32::try_from(order.len()).expect("few")).collect();
            assert_eq!(order, expected, "{sql}");
            assert!(!MySql::sql(sql).contains('$'), "{sql}");
        }
        assert_eq!(
            MySql::sql("UPDATE t SET a = $1 WHERE b = $2 AND c = $10"),
            "UPDATE t SET a = ? WHERE b = ? AND c = ?"
        );
    }
}
