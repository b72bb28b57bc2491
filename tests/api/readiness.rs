//! `/readyz` tells the truth (SPEC §7): a Redis node that is not a primary,
//! and a Redis Cluster whose primary died without a replica, are not ready
//! — however many other nodes answer a `PING` — within 2 s, and ready again
//! within 3 s of the part coming back. Each test runs its own redis-servers
//! on free loopback ports, bounded in time.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::helpers::{TempDir, TestApp};
use crate::servers::{app_on_redis, free_port, redis_server};

/// `/readyz`'s status and `failing`, with how long it took.
async fn readyz(app: &TestApp) -> (u16, Option<String>, Duration) {
    let started = Instant::now();
    let resp = app.get("/readyz").await;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("json");
    (
        status,
        body["failing"].as_str().map(str::to_owned),
        started.elapsed(),
    )
}

/// Polls `/readyz` until it answers `status`, for at most `within`.
async fn becomes(app: &TestApp, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (got, _, took) = readyz(app).await;
        assert!(took < Duration::from_secs(2), "/readyz took {took:?}");
        if got == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/readyz still {got} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_redis_node_that_is_a_replica_is_not_ready() {
    let dir = TempDir::new();
    let (primary_port, replica_port) = (free_port(), free_port());
    let Some(_primary) = redis_server(primary_port, &dir.0, &[]).await else {
        return;
    };
    let replica_of = primary_port.to_string();
    let Some(_replica) = redis_server(
        replica_port,
        &dir.0,
        &["--replicaof", "127.0.0.1", &replica_of],
    )
    .await
    else {
        return;
    };
    // It answers PING, but cannot take a write.
    let app = app_on_redis(&format!("redis://127.0.0.1:{replica_port}")).await;
    let (status, failing, took) = readyz(&app).await;
    assert_eq!((status, failing.as_deref()), (503, Some("store")));
    assert!(took < Duration::from_secs(2));
    let primary = app_on_redis(&format!("redis://127.0.0.1:{primary_port}")).await;
    assert_eq!(readyz(&primary).await.0, 200);
}

#[tokio::test]
async fn a_cluster_with_a_dead_primary_is_not_ready_until_it_returns() {
    let _alone = crate::servers::TIMED_FAULTS.write().await;
    let dir = TempDir::new();
    let ports = [free_port(), free_port(), free_port()];
    let node = |p: u16| {
        let conf = dir.0.join(format!("nodes-{p}.conf"));
        vec![
            "--cluster-enabled".to_owned(),
            "yes".into(),
            "--cluster-config-file".into(),
            conf.display().to_string(),
            "--cluster-node-timeout".into(),
            "2000".into(),
        ]
    };
    let mut nodes = Vec::new();
    for p in ports {
        let args = node(p);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let Some(child) = redis_server(p, &dir.0, &args).await else {
            return;
        };
        nodes.push(child);
    }
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("redis-cli");
    assert!(created.success(), "cluster create failed");
    let url = format!("redis+cluster://{}", addrs.join(","));
    let app = app_on_redis(&url).await;
    becomes(&app, 200, Duration::from_secs(10)).await;

    // A primary dies; it has no replica, so its slots are served by nobody.
    let victim = ports[2];
    nodes[2].kill().await.expect("kill");
    let _ = nodes[2].wait().await;
    let down_after = becomes(&app, 503, Duration::from_secs(2)).await;
    let (_, failing, _) = readyz(&app).await;
    assert_eq!(failing.as_deref(), Some("store"));
    // Meanwhile every captcha request answers within 2 s: a captcha when its
    // keys live on a primary that is alive, else the documented 503.
    let mut unavailable = 0;
    for _ in 0..12 {
        let started = Instant::now();
        let status = app
            .image_code(&crate::helpers::new_captcha_id())
            .await
            .status()
            .as_u16();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert!(status == 200 || status == 503, "status {status}");
        unavailable += usize::from(status == 503);
    }
    assert!(unavailable > 0, "no request needed the dead primary");

    // It comes back with its own cluster file; ready again within 3 s of
    // the cluster saying ok.
    let args = node(victim);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _back = redis_server(victim, &dir.0, &args).await.expect("restart");
    let give_up = Instant::now() + Duration::from_secs(30);
    let ok_at = loop {
        assert!(
            Instant::now() < give_up,
            "the cluster did not recover in 30 s"
        );
        let out = Command::new("redis-cli")
            .args(["-p", &ports[0].to_string(), "cluster", "info"])
            .output()
            .await
            .expect("redis-cli");
        if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = becomes(&app, 200, Duration::from_secs(3)).await;
    for i in 0..12 {
        let status = app
            .image_code(&crate::helpers::new_captcha_id())
            .await
            .status();
        if status != 200 {
            use phoneauth::store::KvStore;
            let direct = app
                .store
                .incr_window(&format!("probe:{{x{i}}}"), Duration::from_secs(5))
                .await;
            panic!(
                "not served again once the primary is back: {status}; a direct call: {direct:?}"
            );
        }
    }
    eprintln!(
        "readiness: 503 {down_after:?} after the primary died; 200 {:?} after cluster_state:ok",
        ok_at.elapsed()
    );
}
