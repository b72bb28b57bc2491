//! Private servers that a fault test owns: free loopback ports and
//! redis-server processes started with the arguments the test needs (killed
//! when dropped). Without redis-server the test is skipped loudly, except in
//! CI, where it fails.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::helpers::{TempDir, TestApp, spawn_with_parts, test_config};

/// Taken for writing by each test that kills servers and times the
/// recovery, and for reading by the browser tests: on two cores, a failover
/// under load or a database crash next to a browser driving a page would
/// time the other test's load, not phoneauth.
pub static TIMED_FAULTS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A redis-server on `port`, without persistence, working in `dir`, with
/// `extra` arguments; `None` (after a SKIPPED line) where it is not
/// installed outside CI.
pub async fn redis_server(port: u16, dir: &Path, extra: &[&str]) -> Option<Child> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(extra)
        // A replica's full sync writes an RDB file into the working directory.
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(child) = child else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("redis-server is required in CI");
        }
        eprintln!("\n*** SKIPPED: redis-server is not installed; a fault test did not run ***\n");
        return None;
    };
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("private redis-server did not start on port {port}");
}

/// A phoneauth (in this process) on the Redis at `store_url`, with the
/// captcha limit lifted so a test can ask for many.
pub async fn app_on_redis(store_url: &str) -> TestApp {
    let dir = TempDir::new();
    let mut config = test_config(&dir);
    config.store.url = store_url.to_owned();
    config.server.secret = phoneauth::secret::random_hex(32).as_str().into();
    config.limits.captcha_per_ip_per_minute = 1_000_000;
    let store = phoneauth::store::redis::RedisStore::open(
        store_url,
        &format!("servers:{}:", phoneauth::secret::random_hex(4)),
        phoneauth::store::redis::RedisTimeouts::default(),
    )
    .await
    .expect("store");
    let repo =
        phoneauth::users::connect(&config.database.url, phoneauth::app::pg_settings(&config))
            .await
            .expect("database");
    let clock = phoneauth::clock::ManualClock::new();
    spawn_with_parts(config, clock, store, repo, dir).await
}
