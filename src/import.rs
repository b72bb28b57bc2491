//! `phoneauth import-users` (SPEC §11): an existing site's users, from a CSV
//! or JSON Lines file or straight from its table in MySQL, PostgreSQL or
//! SQLite, into phoneauth's users database.
//!
//! - Ids are kept, so the old site's other tables still point at the right
//!   people; password hashes are kept as they are (no hashing here: they are
//!   verified at login and then replaced, see `passwords::legacy`).
//! - Idempotent, hence resumable: a row whose id is there with the same
//!   number is counted as present and left alone, so a run that stopped is
//!   simply run again.
//! - A row that cannot be imported goes to the reject file with its place
//!   in the source and the reason; the file holds no number or hash.
//! - Rows move in batches of [`BATCH`]: one look-up of their ids and one
//!   multi-row insert in a transaction (one commit) each.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{Mobile, MobilePolicy};
use crate::users::{ImportedUser, User, UserChange, UserRepo};

/// Rows per round trip.
pub const BATCH: usize = 1000;

/// Where the users come from.
#[derive(Debug, Clone)]
pub enum Source {
    Csv(PathBuf),
    Jsonl(PathBuf),
    /// The old site's table: `url` is `mysql://…`, `postgres://…` or
    /// `sqlite://…`.
    Table {
        url: String,
        table: String,
    },
}

/// Which source column (CSV header, JSON key or table column) holds each
/// field. `created_at` is optional: without it, users are created now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub id: String,
    pub mobile: String,
    pub password: String,
    pub name: String,
    pub created_at: String,
}

impl ColumnMap {
    /// The defaults for a table: the news site's `info_user` calls the name
    /// `nick_name`; everything else follows the iHome `ih_user_profile`.
    pub fn for_table(table: Option<&str>) -> Self {
        let name = match table.map(|t| t.rsplit('.').next().unwrap_or(t)) {
            Some("info_user") => "nick_name",
            _ => "name",
        };
        Self {
            id: "id".into(),
            mobile: "mobile".into(),
            password: "password_hash".into(),
            name: name.into(),
            created_at: "create_time".into(),
        }
    }

    /// Applies `field=column` overrides (`id`, `mobile`, `password`, `name`,
    /// `created_at`; an empty column drops the optional ones).
    pub fn apply(&mut self, overrides: &[String]) -> anyhow::Result<()> {
        for o in overrides {
            let Some((field, column)) = o.split_once('=') else {
                bail!("--map {o:?}: expected field=column");
            };
            let slot = match field.trim() {
                "id" => &mut self.id,
                "mobile" => &mut self.mobile,
                "password" | "password_hash" => &mut self.password,
                "name" => &mut self.name,
                "created_at" | "create_time" => &mut self.created_at,
                other => {
                    bail!("--map {other:?}: not a field (id, mobile, password, name, created_at)")
                }
            };
            column.trim().clone_into(slot);
        }
        for (field, column) in [
            ("id", &self.id),
            ("mobile", &self.mobile),
            ("password", &self.password),
        ] {
            if column.is_empty() {
                bail!("--map: the {field} column is required");
            }
        }
        Ok(())
    }

    fn columns(&self) -> [&str; 5] {
        [
            &self.id,
            &self.mobile,
            &self.password,
            &self.name,
            &self.created_at,
        ]
    }
}

/// What a run did, or would do in a dry run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Rows read from the source.
    pub read: u64,
    /// Users created (in a dry run: that would be).
    pub imported: u64,
    /// Rows whose user is there already with the same number (an earlier
    /// run): left alone.
    pub present: u64,
    /// Present users whose stored hash was still the old site's and
    /// differed from the source's (the password changed on the old site
    /// since the last run): given the source's hash.
    pub updated: u64,
    /// Rows written to the reject file.
    pub rejected: u64,
    /// Imported users whose name could not be used (empty, longer than 32
    /// characters, unprintable) and who got their number as name, as a new
    /// registration does.
    pub renamed: u64,
}

/// One row as read, before it is checked.
#[derive(Debug, Default, Clone)]
struct RawUser {
    /// Where it is in the source: `line 12` or `id 7`.
    at: String,
    id: Option<String>,
    mobile: Option<String>,
    password: Option<String>,
    name: Option<String>,
    created_at: Option<String>,
    /// Why the row could not be read at all.
    unreadable: Option<&'static str>,
}

/// A row that cannot be imported, as written to the reject file.
#[derive(Serialize)]
struct Reject<'a> {
    at: &'a str,
    id: Option<&'a str>,
    reason: String,
}

/// Runs an import into `repo`. `progress` is told the counts and, when the
/// source's size is known, the fraction read, after each batch.
pub async fn run(
    repo: &dyn UserRepo,
    policy: &MobilePolicy,
    source: &Source,
    map: &ColumnMap,
    reject_path: &Path,
    dry_run: bool,
    mut progress: impl FnMut(&Counts, Option<f64>),
) -> anyhow::Result<Counts> {
    let mut reader = Reader::open(source, map).await?;
    // The old site's ids are reserved first: a user who signs up on
    // phoneauth while the import runs gets an id above all of them.
    if let (Reader::Table(t), false) = (&reader, dry_run)
        && let Some(highest) = t.highest
    {
        repo.reserve_ids(highest).await?;
    }
    let mut rejects = RejectFile::create(reject_path)?;
    let mut counts = Counts::default();
    // The ids of this run's rows so far: a second row with one of them is a
    // repeat in the source.
    let mut seen = HashSet::new();
    let now = OffsetDateTime::now_utc();
    loop {
        let raw = reader.next_batch(BATCH).await?;
        if raw.is_empty() {
            break;
        }
        counts.read += raw.len() as u64;
        let mut valid = Vec::with_capacity(raw.len());
        for r in raw {
            match check(&r, policy, now) {
                Ok((user, renamed)) => valid.push(Checked {
                    raw: r,
                    user,
                    renamed,
                }),
                Err(reason) => rejects.write(&mut counts, &r, reason)?,
            }
        }
        store_batch(repo, valid, dry_run, &mut seen, &mut counts, &mut rejects).await?;
        progress(&counts, reader.fraction());
    }
    rejects.finish()?;
    if let Reader::Table(t) = &reader
        && t.read < t.total
    {
        // Rows deleted meanwhile, or an id column whose text order is not
        // its numeric order (which skips rows): worth a look either way.
        tracing::warn!(
            read = t.read,
            counted = t.total,
            "fewer rows were read than the table had at the start"
        );
    }
    Ok(counts)
}

/// Checks one row: the user it makes, and whether its name was replaced.
fn check(
    r: &RawUser,
    policy: &MobilePolicy,
    now: OffsetDateTime,
) -> Result<(ImportedUser, bool), String> {
    if let Some(why) = r.unreadable {
        return Err(why.into());
    }
    let id = r.id.as_deref().map(str::trim).unwrap_or_default();
    let id: i64 = match id.parse() {
        Ok(id) if id > 0 => id,
        _ => return Err("the id is not a positive whole number".into()),
    };
    let mobile = r.mobile.as_deref().map(str::trim).unwrap_or_default();
    let mobile = Mobile::parse(mobile, policy)
        .map_err(|e| format!("the mobile number is not valid ({e})"))?;
    let hash = r.password.as_deref().map(str::trim).unwrap_or_default();
    if hash.is_empty() {
        return Err("no password hash".into());
    }
    if !crate::passwords::is_checkable(hash) {
        return Err("the password hash is of a kind phoneauth cannot check".into());
    }
    // The rules of a name chosen at registration (1–32 characters, none
    // unprintable or invisible).
    let name = crate::flow::input::nickname(r.name.as_deref())
        .ok()
        .flatten();
    let renamed = name.is_none();
    let created_at = r.created_at.as_deref().and_then(parse_time).unwrap_or(now);
    let user = ImportedUser {
        id,
        name: name.unwrap_or_else(|| mobile.display()),
        mobile,
        password_hash: hash.to_owned(),
        created_at,
    };
    Ok((user, renamed))
}

/// A row that passed [`check`].
struct Checked {
    raw: RawUser,
    user: ImportedUser,
    renamed: bool,
}

/// Imports the checked rows of one batch and sorts out the ones that did
/// not go in.
async fn store_batch(
    repo: &dyn UserRepo,
    valid: Vec<Checked>,
    dry_run: bool,
    seen: &mut HashSet<i64>,
    counts: &mut Counts,
    rejects: &mut RejectFile,
) -> anyhow::Result<()> {
    let ids: Vec<i64> = valid.iter().map(|c| c.user.id).collect();
    let before: HashMap<i64, User> = repo
        .by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let mut fresh = Vec::with_capacity(valid.len());
    for c in valid {
        if !seen.insert(c.user.id) {
            let reason = format!("id {} appears twice in the source", c.user.id);
            rejects.write(counts, &c.raw, reason)?;
            continue;
        }
        match before.get(&c.user.id) {
            Some(u) if u.mobile == c.user.mobile => {
                counts.present += 1;
                // The password changed on the old site since the last run,
                // and the user has not logged in here yet: the new hash.
                if u.password_hash != c.user.password_hash
                    && crate::passwords::is_legacy(&u.password_hash)
                {
                    let change = UserChange::ReplaceHash {
                        from: &u.password_hash,
                        to: &c.user.password_hash,
                    };
                    if dry_run || repo.update(u.id, change).await? {
                        counts.updated += 1;
                    }
                }
            }
            Some(_) => rejects.write(
                counts,
                &c.raw,
                format!("id {} belongs to another number in phoneauth", c.user.id),
            )?,
            None => fresh.push(c),
        }
    }
    if dry_run {
        counts.imported += fresh.len() as u64;
        counts.renamed += fresh.iter().filter(|c| c.renamed).count() as u64;
        return Ok(());
    }
    let users: Vec<ImportedUser> = fresh.iter().map(|c| c.user.clone()).collect();
    let inserted = repo.import(&users).await?;
    if inserted == users.len() as u64 {
        counts.imported += inserted;
        counts.renamed += fresh.iter().filter(|c| c.renamed).count() as u64;
        return Ok(());
    }
    // Some rows broke a unique constraint: find out which, and why.
    let after: HashMap<i64, Mobile> = repo
        .by_ids(&users.iter().map(|u| u.id).collect::<Vec<_>>())
        .await?
        .into_iter()
        .map(|u| (u.id, u.mobile))
        .collect();
    for c in fresh {
        let user = &c.user;
        if after.get(&user.id) == Some(&user.mobile) {
            counts.imported += 1;
            counts.renamed += u64::from(c.renamed);
            continue;
        }
        let reason = if after.contains_key(&user.id) {
            format!("id {} belongs to another number in phoneauth", user.id)
        } else if let Some(owner) = repo.by_mobile(&user.mobile).await? {
            format!("the number belongs to user {}", owner.id)
        } else {
            "the name is taken by another user".into()
        };
        rejects.write(counts, &c.raw, reason)?;
    }
    Ok(())
}

/// A time as old sites store it: `2018-05-01 10:00:00[.ffffff]` (read as
/// UTC), with an offset as PostgreSQL writes one (`+08`, `+05:30`), RFC
/// 3339, or Unix seconds.
fn parse_time(raw: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t);
    }
    let naive = raw.get(..19)?.replace('T', " ");
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let local = time::PrimitiveDateTime::parse(&naive, format).ok()?;
    // After the seconds: an optional fraction, then an optional offset.
    let rest = raw[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest.trim() {
        "" | "Z" | "UTC" => time::UtcOffset::UTC,
        zone => {
            let (sign, digits) = match zone.split_at_checked(1)? {
                ("+", d) => (1, d),
                ("-", d) => (-1, d),
                _ => return None,
            };
            let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
            let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
            time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    Some(local.assume_offset(offset))
}

/// The reject file: one JSON object a line, made readable by its owner only
/// and removed again when nothing was rejected.
struct RejectFile {
    path: PathBuf,
    out: std::io::BufWriter<File>,
    any: bool,
    /// A plain file (removed again when nothing was rejected).
    regular: bool,
}

impl RejectFile {
    fn create(path: &Path) -> anyhow::Result<Self> {
        // The path itself, not what a link points to: a plain file (or none
        // yet) is replaced, made owner-only, and removed again when nothing
        // was rejected; anything else (`/dev/null`, `/dev/stdout`) is only
        // written to.
        let regular = std::fs::symlink_metadata(path).map_or(true, |m| m.is_file());
        let mut open = std::fs::OpenOptions::new();
        if regular {
            open.write(true).create(true).truncate(true);
        } else {
            open.append(true);
        }
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let file = open
            .open(path)
            .with_context(|| format!("cannot write the reject file {}", path.display()))?;
        // An older file keeps its mode when opened.
        #[cfg(unix)]
        if regular {
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
        Ok(Self {
            path: path.to_owned(),
            out: std::io::BufWriter::new(file),
            any: false,
            regular,
        })
    }

    fn write(&mut self, counts: &mut Counts, raw: &RawUser, reason: String) -> anyhow::Result<()> {
        counts.rejected += 1;
        self.any = true;
        // The id only when it is one: a shifted row could hold a number or a
        // hash where the id should be.
        let id = raw.id.as_deref().map(str::trim).filter(|id| {
            id.len() <= 19 && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
        });
        let line = serde_json::to_string(&Reject {
            at: &raw.at,
            id,
            reason,
        })?;
        writeln!(self.out, "{line}").context("cannot write the reject file")
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush().context("cannot write the reject file")?;
        if !self.any && self.regular {
            std::fs::remove_file(&self.path).ok();
        }
        Ok(())
    }
}

/// Reads rows from a source, a batch at a time.
enum Reader {
    Csv {
        rows: csv::StringRecordsIntoIter<File>,
        columns: [Option<usize>; 5],
        line: u64,
        size: u64,
        read: u64,
    },
    Jsonl {
        lines: std::io::Split<BufReader<File>>,
        map: ColumnMap,
        line: u64,
        size: u64,
        read: u64,
    },
    Table(Box<TableReader>),
}

impl Reader {
    async fn open(source: &Source, map: &ColumnMap) -> anyhow::Result<Self> {
        match source {
            Source::Csv(path) => {
                let file = open_file(path)?;
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(file);
                let headers = csv
                    .headers()
                    .with_context(|| format!("{}: no header row", path.display()))?
                    .clone();
                let find = |c: &str| headers.iter().position(|h| h.trim() == c);
                let columns = map.columns().map(find);
                for (field, (c, found)) in ["id", "mobile", "password"]
                    .iter()
                    .zip(map.columns().iter().zip(columns))
                {
                    if found.is_none() {
                        bail!(
                            "{}: no column {c:?} for the {field} (see --map)",
                            path.display()
                        );
                    }
                }
                Ok(Self::Csv {
                    rows: csv.into_records(),
                    columns,
                    line: 1,
                    size,
                    read: 0,
                })
            }
            Source::Jsonl(path) => {
                let file = open_file(path)?;
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                Ok(Self::Jsonl {
                    lines: BufReader::new(file).split(b'\n'),
                    map: map.clone(),
                    line: 0,
                    size,
                    read: 0,
                })
            }
            Source::Table { url, table } => Ok(Self::Table(Box::new(
                TableReader::open(url, table, map).await?,
            ))),
        }
    }

    /// The next rows; none at the end.
    async fn next_batch(&mut self, n: usize) -> anyhow::Result<Vec<RawUser>> {
        let mut out = Vec::with_capacity(n);
        match self {
            Self::Csv {
                rows,
                columns,
                line,
                read,
                ..
            } => {
                for record in rows.by_ref().take(n) {
                    *line += 1;
                    if let Ok(rec) = &record
                        && let Some(p) = rec.position()
                    {
                        (*line, *read) = (p.line(), p.byte());
                    }
                    let at = format!("line {line}");
                    match record {
                        Ok(rec) => {
                            let get =
                                |i: Option<usize>| i.and_then(|i| rec.get(i)).map(str::to_owned);
                            out.push(RawUser {
                                at,
                                id: get(columns[0]),
                                mobile: get(columns[1]),
                                password: get(columns[2]),
                                name: get(columns[3]),
                                created_at: get(columns[4]),
                                unreadable: None,
                            });
                        }
                        Err(_) => out.push(RawUser {
                            at,
                            unreadable: Some("not a readable CSV row"),
                            ..RawUser::default()
                        }),
                    }
                }
            }
            Self::Jsonl {
                lines,
                map,
                line,
                read,
                ..
            } => {
                while out.len() < n {
                    let Some(text) = lines.next() else { break };
                    let bytes = text.context("cannot read the JSON Lines file")?;
                    *line += 1;
                    *read += bytes.len() as u64 + 1;
                    if bytes.trim_ascii().is_empty() {
                        continue;
                    }
                    out.push(json_row(&bytes, map, format!("line {line}")));
                }
            }
            Self::Table(t) => out = t.next_page(n).await?,
        }
        Ok(out)
    }

    /// How much of the source has been read, when its size is known.
    fn fraction(&self) -> Option<f64> {
        let (read, size) = match self {
            Self::Csv { read, size, .. } | Self::Jsonl { read, size, .. } => (*read, *size),
            Self::Table(t) => (t.read, t.total),
        };
        #[allow(clippy::cast_precision_loss)]
        (size > 0).then(|| (read as f64 / size as f64).min(1.0))
    }
}

fn open_file(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// One JSON Lines row: an object whose values are strings or numbers.
fn json_row(bytes: &[u8], map: &ColumnMap, at: String) -> RawUser {
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(bytes)
    else {
        return RawUser {
            at,
            unreadable: Some("not a JSON object"),
            ..RawUser::default()
        };
    };
    let get = |key: &str| match obj.get(key) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    RawUser {
        at,
        id: get(&map.id),
        mobile: get(&map.mobile),
        password: get(&map.password),
        name: get(&map.name),
        created_at: get(&map.created_at),
        unreadable: None,
    }
}

/// The old site's table, read in pages ordered by id (so a large table is
/// never held in memory). Every column is read as text, which each database
/// can give whatever the column's type.
struct TableReader {
    db: SourceDb,
    select: String,
    id_column: String,
    after: Option<i64>,
    read: u64,
    total: u64,
    /// The highest id in the table.
    highest: Option<i64>,
}

enum SourceDb {
    MySql(sqlx::MySqlPool),
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

type TableRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Runs one query built at run time on whichever database the source is.
macro_rules! fetch_all {
    ($db:expr, $sql:expr) => {
        match $db {
            SourceDb::MySql(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe($sql))
                    .fetch_all(pool)
                    .await
            }
            SourceDb::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe($sql))
                    .fetch_all(pool)
                    .await
            }
            SourceDb::Sqlite(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe($sql))
                    .fetch_all(pool)
                    .await
            }
        }
    };
}

impl TableReader {
    async fn open(url: &str, table: &str, map: &ColumnMap) -> anyhow::Result<Self> {
        let connect = "cannot connect to the source database";
        let (db, quote, int, text) = if url.starts_with("mysql://") {
            let pool = sqlx::MySqlPool::connect(url).await.context(connect)?;
            (SourceDb::MySql(pool), '`', "SIGNED", "CHAR")
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = sqlx::PgPool::connect(url).await.context(connect)?;
            (SourceDb::Postgres(pool), '"', "BIGINT", "TEXT")
        } else if url.starts_with("sqlite:") {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().context(connect)?;
            let pool = sqlx::SqlitePool::connect_with(opts.read_only(true))
                .await
                .context(connect)?;
            // SQLite reads a double-quoted name that matches no column as a
            // string; a backquoted one is always a name.
            (SourceDb::Sqlite(pool), '`', "INTEGER", "TEXT")
        } else {
            bail!("--from: not a mysql://, postgres:// or sqlite:// URL");
        };
        let ident = |name: &str| quote_ident(name, quote);
        let table = ident(table)?;
        let column = |name: &str| -> anyhow::Result<String> {
            if name.is_empty() {
                Ok(format!("CAST(NULL AS {text})"))
            } else {
                Ok(format!("CAST({} AS {text})", ident(name)?))
            }
        };
        let id_column = ident(&map.id)?;
        let select = format!(
            "SELECT CAST({id_column} AS {int}), {}, {}, {}, {} FROM {table}",
            column(&map.mobile)?,
            column(&map.password)?,
            column(&map.name)?,
            column(&map.created_at)?,
        );
        let count = format!("SELECT COUNT(*), MAX(CAST({id_column} AS {int})) FROM {table}");
        let total: Vec<(i64, Option<i64>)> =
            fetch_all!(&db, count).with_context(|| format!("cannot read the table {table}"))?;
        Ok(Self {
            db,
            select,
            id_column,
            after: None,
            read: 0,
            total: total.first().map_or(0, |t| u64::try_from(t.0).unwrap_or(0)),
            highest: total.first().and_then(|t| t.1),
        })
    }

    async fn next_page(&mut self, n: usize) -> anyhow::Result<Vec<RawUser>> {
        let after = self
            .after
            .map_or_else(String::new, |a| format!(" WHERE {} > {a}", self.id_column));
        let sql = format!(
            "{}{after} ORDER BY {} LIMIT {n}",
            self.select, self.id_column
        );
        let rows: Vec<TableRow> =
            fetch_all!(&self.db, sql).context("cannot read the source table")?;
        // Ids must grow strictly through the page and past the last page:
        // a text column sorts and compares otherwise, and rows would be
        // skipped or read twice.
        let mut previous = self.after;
        for (id, ..) in &rows {
            if previous.is_some_and(|p| *id <= p) {
                bail!(
                    "the id column {} does not hold whole numbers in order (see --map id=…)",
                    self.id_column
                );
            }
            previous = Some(*id);
        }
        let last = rows.last().map(|r| r.0);
        self.after = last.or(self.after);
        self.read += rows.len() as u64;
        Ok(rows
            .into_iter()
            .map(|(id, mobile, password, name, created_at)| RawUser {
                at: format!("id {id}"),
                id: Some(id.to_string()),
                mobile,
                password,
                name,
                created_at,
                unreadable: None,
            })
            .collect())
    }
}

/// A table or column name, checked and quoted (`schema.table` allowed).
fn quote_ident(name: &str, quote: char) -> anyhow::Result<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let ok = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if parts.len() > 2 || !parts.iter().all(|p| ok(p)) {
        bail!("{name:?} is not a plain table or column name");
    }
    Ok(parts
        .iter()
        .map(|p| format!("{quote}{p}{quote}"))
        .collect::<Vec<_>>()
        .join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_both_tutorial_sites_and_overrides_apply() {
        let ihome = ColumnMap::for_table(Some("ih_user_profile"));
        assert_eq!(
            (ihome.name.as_str(), ihome.password.as_str()),
            ("name", "password_hash")
        );
        let mut news = ColumnMap::for_table(Some("info_user"));
        assert_eq!(news.name, "nick_name");
        news.apply(&["mobile=phone".into(), "created_at=".into()])
            .expect("overrides");
        assert_eq!(
            (news.mobile.as_str(), news.created_at.as_str()),
            ("phone", "")
        );
        assert!(news.apply(&["id=".into()]).is_err(), "the id is required");
        assert!(news.apply(&["colour=x".into()]).is_err());
    }

    #[test]
    fn rows_are_checked_with_reasons() {
        let policy = MobilePolicy::default();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let good = RawUser {
            at: "line 2".into(),
            id: Some(" 7 ".into()),
            mobile: Some("13812345678".into()),
            password: Some("pbkdf2:sha256:150000$salt$00".into()),
            name: Some("小明".into()),
            created_at: Some("2018-05-01 10:00:00.123456".into()),
            unreadable: None,
        };
        let (user, renamed) = check(&good, &policy, now).expect("valid");
        assert_eq!((user.id, user.name.as_str(), renamed), (7, "小明", false));
        assert_eq!(user.mobile.e164(), "+8613812345678");
        assert_eq!(user.created_at.unix_timestamp(), 1_525_168_800);

        let unnamed = RawUser {
            name: Some("admin\u{202e}".into()),
            created_at: None,
            ..good.clone()
        };
        let (user, renamed) = check(&unnamed, &policy, now).expect("valid");
        assert_eq!((user.name.as_str(), renamed), ("13812345678", true));
        assert_eq!(user.created_at, now);

        for (bad, reason) in [
            (
                RawUser {
                    id: Some("x".into()),
                    ..good.clone()
                },
                "id",
            ),
            (
                RawUser {
                    id: Some("0".into()),
                    ..good.clone()
                },
                "id",
            ),
            (
                RawUser {
                    mobile: Some("123".into()),
                    ..good.clone()
                },
                "mobile",
            ),
            (
                RawUser {
                    password: None,
                    ..good.clone()
                },
                "hash",
            ),
            (
                RawUser {
                    password: Some("plaintext".into()),
                    ..good.clone()
                },
                "hash",
            ),
            (
                RawUser {
                    password: Some("pbkdf2:sha256:99999999$salt$00".into()),
                    ..good.clone()
                },
                "hash",
            ),
            (
                RawUser {
                    password: Some("$argon2id$v=19$broken".into()),
                    ..good.clone()
                },
                "hash",
            ),
        ] {
            let err = check(&bad, &policy, now).expect_err(reason);
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn times_come_in_the_forms_old_sites_store() {
        for raw in [
            "2018-05-01 10:00:00",
            "2018-05-01T10:00:00",
            "2018-05-01T10:00:00Z",
            "1525168800",
            "2018-05-01 10:00:00.5",
            "2018-05-01 18:00:00+08",
            "2018-05-01 15:30:00.25+05:30",
            "2018-05-01 05:00:00-05",
        ] {
            assert_eq!(
                parse_time(raw).map(OffsetDateTime::unix_timestamp),
                Some(1_525_168_800),
                "{raw}"
            );
        }
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2018-05-01 10:00:00 CEST"), None);
    }

    #[test]
    fn names_in_sql_are_plain_and_quoted() {
        assert_eq!(
            quote_ident("ih_user_profile", '`').expect("ok"),
            "`ih_user_profile`"
        );
        assert_eq!(
            quote_ident("old.info_user", '"').expect("ok"),
            "\"old\".\"info_user\""
        );
        for bad in ["users; DROP TABLE users", "a\"b", "", "1abc", "a.b.c"] {
            assert!(quote_ident(bad, '"').is_err(), "{bad}");
        }
    }
}
