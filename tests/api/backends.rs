//! Where the shared backends are, for the tests that need them.
//!
//! `TEST_REDIS_URL`, `TEST_REDIS_CLUSTER_URL`, `TEST_DATABASE_URL` and
//! `TEST_MYSQL_URL` name them; without them the local defaults (Redis on
//! 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432, MariaDB on 127.0.0.1:3306)
//! are used when they answer. In CI (`CI=true`) a backend that
//! cannot be reached fails the test; elsewhere the test is skipped with a loud
//! line on stderr.

use std::net::TcpStream;
use std::time::Duration;

use phoneauth::clock::ManualClock;
use phoneauth::config::Config;
use phoneauth::store::SharedStore;
use phoneauth::store::redis::{RedisStore, RedisTimeouts};
use phoneauth::users::{self, SharedUserRepo};

use crate::helpers::{TempDir, TestApp, spawn_with_parts, test_config};

fn answers(host_port: &str) -> bool {
    host_port
        .parse()
        .ok()
        .and_then(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok())
        .is_some()
}

/// Fails in CI, skips loudly elsewhere.
fn missing(what: &str, how: &str) -> Option<String> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required in CI but is not reachable ({how})");
    }
    eprintln!("\n*** SKIPPED: {what} is not reachable ({how}); this test did not run ***\n");
    None
}

pub fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(u) => Some(u),
        Err(_) if answers("127.0.0.1:6379") => Some("redis://127.0.0.1:6379".into()),
        Err(_) => missing(
            "Redis",
            "set TEST_REDIS_URL or start redis-server on 127.0.0.1:6379",
        ),
    }
}

pub fn redis_cluster_url() -> Option<String> {
    match std::env::var("TEST_REDIS_CLUSTER_URL") {
        Ok(u) => Some(u),
        Err(_) => missing(
            "a Redis Cluster",
            "set TEST_REDIS_CLUSTER_URL; .ci/redis-cluster.sh starts one",
        ),
    }
}

pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(u) => Some(u),
        Err(_) if answers("127.0.0.1:5432") => {
            Some("postgres://postgres@127.0.0.1:5432/test".into())
        }
        Err(_) => missing(
            "PostgreSQL",
            "set TEST_DATABASE_URL or start PostgreSQL on 127.0.0.1:5432",
        ),
    }
}

pub fn mysql_url() -> Option<String> {
    match std::env::var("TEST_MYSQL_URL") {
        Ok(u) => Some(u),
        Err(_) if answers("127.0.0.1:3306") => Some("mysql://root@127.0.0.1:3306/test".into()),
        Err(_) => missing(
            "MySQL/MariaDB",
            "set TEST_MYSQL_URL or start MariaDB on 127.0.0.1:3306",
        ),
    }
}

/// A fresh database of its own on the MySQL server of `base` (a URL naming
/// some database), so tests never collide; returns its URL.
pub async fn fresh_mysql_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("t_{}", phoneauth::secret::random_hex(6));
    let mut conn = sqlx::MySqlConnection::connect(base)
        .await
        .expect("connect to MySQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {name} CHARACTER SET utf8mb4"
    )))
    .execute(&mut conn)
    .await
    .expect("create database");
    let (server, query) = base
        .split_once('?')
        .map_or((base, None), |(s, q)| (s, Some(q)));
    let server = server.rsplit_once('/').map_or(server, |(s, _)| s);
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// A fresh schema of its own in the test database, so tests never collide;
/// returns a URL whose connections use it.
pub async fn fresh_pg_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("t_{}", phoneauth::secret::random_hex(6));
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

pub fn fresh_prefix() -> String {
    format!("test:{}:", phoneauth::secret::random_hex(6))
}

pub async fn redis_store(url: &str, prefix: &str) -> SharedStore {
    RedisStore::open(url, prefix, RedisTimeouts::default())
        .await
        .expect("open Redis store")
}

/// Settings of one instance of a production-mode deployment: Redis, PostgreSQL
/// and the deployment's shared secret.
pub fn production_config(
    dir: &TempDir,
    redis: &str,
    prefix: &str,
    database: &str,
    secret: &str,
) -> Config {
    let mut c = test_config(dir);
    c.store.url = redis.to_owned();
    c.store.key_prefix = prefix.to_owned();
    c.database.url = database.to_owned();
    c.server.secret = secret.into();
    c
}

/// One phoneauth instance on Redis + PostgreSQL.
pub async fn spawn_production(
    redis: &str,
    prefix: &str,
    database: &str,
    secret: &str,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let dir = TempDir::new();
    let mut config = production_config(&dir, redis, prefix, database, secret);
    tweak(&mut config);
    let store = redis_store(redis, prefix).await;
    let repo: SharedUserRepo = users::connect(database, phoneauth::app::pg_settings(&config))
        .await
        .expect("PostgreSQL");
    spawn_with_parts(config, ManualClock::new(), store, repo, dir).await
}

pub fn shared_secret() -> String {
    phoneauth::secret::random_hex(32)
}
