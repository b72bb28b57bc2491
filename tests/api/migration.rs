//! Moving a live tutorial site over (SPEC §11): its users table, made by
//! its own Flask-SQLAlchemy model with werkzeug hashes, is imported with
//! `phoneauth import-users`; everyone logs in with the old password and
//! keeps the id, so the site's other tables still point at them.

use std::path::Path;
use std::process::{Command, Output};

use phoneauth::users::UserRepo;
use serde_json::Value;

use crate::backends::{fresh_mysql_database, fresh_pg_schema, mysql_url, postgres_url};
use crate::helpers::{TempDir, fresh_mobile, spawn_app_with};

/// A user of the old site and the password it signed up with.
struct OldUser {
    id: i64,
    mobile: String,
    password: String,
}

/// Builds the old site's table with `tests/fixtures/old_site_users.py`
/// (the tutorial's model, werkzeug's hashes); `None` when Python lacks
/// Flask-SQLAlchemy or PyMySQL outside CI.
fn old_site(site: &str, sqlalchemy_url: &str, count: usize) -> Option<Vec<OldUser>> {
    if !crate::helpers::python_has(
        "flask_sqlalchemy, pymysql, werkzeug",
        "flask-sqlalchemy pymysql werkzeug",
    ) {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old_site_users.py");
    let out = Command::new("python3")
        .arg(script)
        .args([site, sqlalchemy_url, &count.to_string()])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let users: Vec<Value> = serde_json::from_slice(&out.stdout).expect("users as JSON");
    Some(
        users
            .iter()
            .map(|u| OldUser {
                id: u["id"].as_i64().expect("id"),
                mobile: u["mobile"].as_str().expect("mobile").to_owned(),
                password: u["password"].as_str().expect("password").to_owned(),
            })
            .collect(),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `phoneauth import-users` into `database`, in `dir`.
fn import(dir: &TempDir, database: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phoneauth"))
        .arg("import-users")
        .args(args)
        .current_dir(&dir.0)
        .env("DATABASE_URL", database)
        .env_remove("REDIS_URL")
        .output()
        .expect("run phoneauth")
}

/// The counts an import printed.
fn counts(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("counts as JSON")
}

/// Every old user logs in with the old password on a phoneauth serving
/// `database`, and is the user of the same id; then the hash is argon2id
/// and still takes the password; a wrong one is refused.
async fn everyone_logs_in(database: &str, users: &[OldUser]) {
    let url = database.to_owned();
    let app = spawn_app_with(move |c| {
        c.database.url = url;
        c.limits.login_failures = 100;
    })
    .await;
    for u in users {
        let v = app.login(&u.mobile, &u.password).await;
        assert_eq!(v["errno"], "0", "user {}: {v}", u.id);
        let me = app.user().await;
        assert_eq!(me["data"]["user_id"], u.id, "{me}");
    }
    let first = &users[0];
    let stored = app
        .users
        .by_id(first.id)
        .await
        .expect("read")
        .expect("there");
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "replaced at the first login"
    );
    assert_eq!(
        app.login(&first.mobile, &first.password).await["errno"],
        "0"
    );
    assert_eq!(app.login(&first.mobile, "not it").await["errno"], "4004");
    // A new user gets an id after the imported ones.
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "password123").await["errno"], "0");
    let newest = app.user().await["data"]["user_id"].as_i64().expect("id");
    let highest = users.iter().map(|u| u.id).max().expect("users");
    assert!(newest > highest, "{newest} after {highest}");
}

#[tokio::test]
async fn an_ihome_table_in_mariadb_is_imported_and_everyone_logs_in_keeping_the_id() {
    let Some(base) = mysql_url() else { return };
    let source = fresh_mysql_database(&base).await;
    let sqlalchemy = source.replacen("mysql://", "mysql+pymysql://", 1);
    let Some(users) = old_site("ihome", &sqlalchemy, 20) else {
        return;
    };
    assert_eq!(
        users.len(),
        16,
        "four of twenty were deleted: ids have gaps"
    );

    let dir = TempDir::new();
    let target = format!("sqlite://{}", dir.0.join("phoneauth.db").display());
    let args = ["--from", &source, "--table", "ih_user_profile"];
    let dry = counts(&import(
        &dir,
        &target,
        &[&args[..], &["--dry-run"]].concat(),
    ));
    assert_eq!(
        (dry["read"].as_u64(), dry["imported"].as_u64()),
        (Some(16), Some(16))
    );
    let first = counts(&import(&dir, &target, &args));
    assert_eq!(first["read"], 16, "{first}");
    assert_eq!(first["imported"], 16, "the dry run wrote nothing: {first}");
    assert_eq!(first["rejected"], 0);
    assert!(!dir.0.join("import-rejects.jsonl").exists());
    // Run again, as after an interruption: everything is there already.
    let again = counts(&import(&dir, &target, &args));
    assert_eq!(
        (again["imported"].as_u64(), again["present"].as_u64()),
        (Some(0), Some(16))
    );

    everyone_logs_in(&target, &users).await;
}

#[tokio::test]
async fn the_news_sites_table_moves_from_sqlite_into_mysql() {
    let Some(base) = mysql_url() else { return };
    let dir = TempDir::new();
    let old = dir.0.join("news.db");
    let Some(users) = old_site("news", &format!("sqlite:///{}", old.display()), 10) else {
        return;
    };
    let target = fresh_mysql_database(&base).await;
    let source = format!("sqlite://{}", old.display());
    // A column that is not there is an error, not a constant.
    let wrong = import(
        &dir,
        &target,
        &[
            "--from",
            &source,
            "--table",
            "info_user",
            "--map",
            "name=nick",
        ],
    );
    assert!(!wrong.status.success(), "{}", text(&wrong.stdout));
    assert!(
        text(&wrong.stderr).contains("nick"),
        "{}",
        text(&wrong.stderr)
    );
    let done = counts(&import(
        &dir,
        &target,
        &["--from", &source, "--table", "info_user"],
    ));
    assert_eq!(
        (done["imported"].as_u64(), done["rejected"].as_u64()),
        (Some(8), Some(0))
    );
    everyone_logs_in(&target, &users).await;
}

/// Hashes made by the real libraries for `correct horse`
/// (`src/passwords/legacy_vectors.txt` says which made which).
fn vectors() -> Vec<&'static str> {
    include_str!("../../src/passwords/legacy_vectors.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect()
}

#[tokio::test]
async fn files_are_imported_bad_rows_go_to_the_reject_file_with_reasons() {
    let dir = TempDir::new();
    let target = format!("sqlite://{}", dir.0.join("phoneauth.db").display());
    let hashes = vectors();
    let base = 7_000;
    let mobiles: Vec<String> = (0..hashes.len()).map(|_| fresh_mobile()).collect();
    let mut csv = String::from("uid,phone,pw,nick,joined\n");
    for (i, (hash, m)) in hashes.iter().zip(&mobiles).enumerate() {
        csv += &format!(
            "{},{m},{hash},\"name, {i}\",2018-05-01 10:00:00\n",
            base + i
        );
    }
    let bad_number = fresh_mobile();
    csv += "8001,12345,pbkdf2:sha256:1$a$b,x,\n";
    csv += &format!("8002,{bad_number},plaintext,y,\n");
    csv += &format!("8003,{},{},z,\n", mobiles[0], hashes[0]);
    csv += &format!("oops,{},{},w,\n", fresh_mobile(), hashes[0]);
    std::fs::write(dir.0.join("users.csv"), csv).expect("write");
    let map = [
        "--map",
        "id=uid",
        "--map",
        "mobile=phone",
        "--map",
        "password=pw",
        "--map",
        "name=nick",
        "--map",
        "created_at=joined",
    ];
    // A flag that does not fit the source is an error, not ignored; so is a
    // JSON array, which is not JSON Lines.
    std::fs::write(dir.0.join("users.json"), "[]").expect("write");
    for (wrong, says) in [
        (&["users.csv", "--table", "info_user"][..], "--table"),
        (&["users.json"][..], "JSON Lines"),
    ] {
        let out = import(&dir, &target, wrong);
        assert!(!out.status.success(), "{wrong:?}: {}", text(&out.stdout));
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
    let out = import(&dir, &target, &[&["users.csv"], &map[..]].concat());
    let done = counts(&out);
    assert_eq!(done["read"], hashes.len() + 4, "{done}");
    assert_eq!(done["imported"], hashes.len(), "{done}");
    assert_eq!(done["rejected"], 4, "{done}");
    let rejects = std::fs::read_to_string(dir.0.join("import-rejects.jsonl")).expect("rejects");
    let reasons: Vec<Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let reason = |at: &str| {
        reasons
            .iter()
            .find(|r| r["at"] == at)
            .map(|r| r["reason"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no reject at {at}: {rejects}"))
    };
    let first_bad = hashes.len() + 2;
    assert!(reason(&format!("line {first_bad}")).contains("mobile"));
    assert!(reason(&format!("line {}", first_bad + 1)).contains("hash"));
    assert!(reason(&format!("line {}", first_bad + 2)).contains(&format!("user {base}")));
    assert!(reason(&format!("line {}", first_bad + 3)).contains("id"));
    for secret in [&bad_number, &mobiles[0], &hashes[0].to_owned()] {
        assert!(
            !rejects.contains(secret.as_str()),
            "the reject file holds no number or hash"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.0.join("import-rejects.jsonl"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "owner only");
    }

    // JSON Lines, with the same users and one more: only the new one goes
    // in, and a hash changed on the old site replaces the one imported.
    let mut jsonl = String::new();
    for (i, (hash, m)) in hashes.iter().zip(&mobiles).enumerate() {
        // The first user changed the password on the old site meanwhile.
        let hash = if i == 0 { hashes[1] } else { hash };
        jsonl +=
            &serde_json::json!({ "id": base + i, "mobile": m, "password_hash": hash }).to_string();
        jsonl.push('\n');
    }
    let newcomer = fresh_mobile();
    jsonl += &serde_json::json!({ "id": 9000, "mobile": newcomer, "password_hash": hashes[1], "name": "新用户" }).to_string();
    jsonl += "\nnot json\n";
    std::fs::write(dir.0.join("users.jsonl"), jsonl).expect("write");
    let done = counts(&import(&dir, &target, &["--from", "users.jsonl"]));
    assert_eq!(
        (
            done["imported"].as_u64(),
            done["present"].as_u64(),
            done["rejected"].as_u64()
        ),
        (Some(1), Some(hashes.len() as u64), Some(1)),
        "{done}"
    );
    assert_eq!(done["updated"], 1, "{done}");
    let rejects = std::fs::read_to_string(dir.0.join("import-rejects.jsonl")).expect("rejects");
    assert!(rejects.contains("not a JSON object"), "{rejects}");
    let repo = phoneauth::users::connect(&target, phoneauth::users::PoolSettings::default())
        .await
        .expect("database");
    let first = repo.by_id(7_000).await.expect("read").expect("there");
    assert_eq!(first.password_hash, hashes[1], "the old site's newer hash");

    let url = target.clone();
    let app = spawn_app_with(move |c| c.database.url = url).await;
    for (i, m) in mobiles.iter().enumerate() {
        let v = app.login(m, "correct horse").await;
        assert_eq!(v["errno"], "0", "{}: {v}", hashes[i]);
        let me = app.user().await;
        assert_eq!(me["data"]["user_id"], base + i);
        assert_eq!(me["data"]["name"], format!("name, {i}"));
    }
    assert_eq!(app.login(&newcomer, "correct horse").await["errno"], "0");
    assert_eq!(app.user().await["data"]["name"], "新用户");
}

#[tokio::test]
async fn a_news_table_in_postgresql_is_imported_with_its_times() {
    use sqlx::Connection;
    let Some(base) = postgres_url() else { return };
    let source = fresh_pg_schema(&base).await;
    let mut conn = sqlx::PgConnection::connect(&source).await.expect("connect");
    // The news site's model as Flask-SQLAlchemy creates it on PostgreSQL,
    // with the hash column widened for werkzeug 3's longer scrypt hashes.
    sqlx::raw_sql(
        "CREATE TABLE info_user (
            create_time TIMESTAMP WITHOUT TIME ZONE, update_time TIMESTAMP WITHOUT TIME ZONE,
            id SERIAL PRIMARY KEY, nick_name VARCHAR(32) NOT NULL UNIQUE,
            password_hash VARCHAR(256) NOT NULL, mobile VARCHAR(11) NOT NULL UNIQUE,
            avatar_url VARCHAR(256), last_login TIMESTAMP WITHOUT TIME ZONE,
            is_admin BOOLEAN, signature VARCHAR(512), gender VARCHAR(5))",
    )
    .execute(&mut conn)
    .await
    .expect("create table");
    let hashes = vectors();
    let mut users = Vec::new();
    for (i, hash) in hashes.iter().enumerate() {
        let mobile = fresh_mobile();
        let id: i32 = sqlx::query_scalar(
            "INSERT INTO info_user (create_time, nick_name, password_hash, mobile) \
             VALUES ('2018-05-01 10:00:00', $1, $2, $3) RETURNING id",
        )
        .bind(format!("读者{i}"))
        .bind(*hash)
        .bind(&mobile)
        .fetch_one(&mut conn)
        .await
        .expect("insert");
        users.push((i64::from(id), mobile));
    }
    let dir = TempDir::new();
    let target = format!("sqlite://{}", dir.0.join("phoneauth.db").display());
    let done = counts(&import(
        &dir,
        &target,
        &["--from", &source, "--table", "info_user"],
    ));
    assert_eq!(done["imported"], hashes.len(), "{done}");

    let url = target.clone();
    let app = spawn_app_with(move |c| c.database.url = url).await;
    for (i, (id, mobile)) in users.iter().enumerate() {
        assert_eq!(
            app.login(mobile, "correct horse").await["errno"],
            "0",
            "{}",
            hashes[i]
        );
        let me = app.user().await;
        assert_eq!(me["data"]["user_id"], *id);
        assert_eq!(me["data"]["name"], format!("读者{i}"));
        let created = me["data"]["create_time"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(created.starts_with("2018-05-01"), "{created}");
    }
}
