//! SPEC §11 webhooks: the audit events arrive signed in the Standard Webhooks
//! format (checked with the `standardwebhooks` package), through failures
//! and across instances, once each.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TempDir, client, fresh_mobile, serve_process, spawn_with_parts, test_config};

/// Everything the receiver got: headers and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A receiver that refuses (503) its first `refuse` posts.
async fn receiver(refuse: usize) -> (String, Received) {
    let (url, got, _) = gated_receiver(refuse).await;
    (url, got)
}

/// A receiver that refuses (503) while `refusals` (the posts it has yet to
/// refuse, which the test may change) is above zero.
async fn gated_receiver(refuse: usize) -> (String, Received, Arc<AtomicUsize>) {
    use axum::routing::post;
    let got: Received = Arc::default();
    let refusals = Arc::new(AtomicUsize::new(refuse));
    let (store, left) = (got.clone(), refusals.clone());
    let app = axum::Router::new().route(
        "/hook",
        post(move |h: HeaderMap, body: String| {
            let (store, left) = (store.clone(), left.clone());
            async move {
                let refused = left.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
                if refused.is_ok() {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let headers = h
                    .iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                    .collect();
                store.lock().expect("lock").push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got, refusals)
}

/// `standardwebhooks` verifying one delivery; `None` when it is missing here.
fn verify(secret: &str, headers: &[(String, String)], body: &str) -> Option<bool> {
    const SCRIPT: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
Webhook(sys.argv[1]).verify(sys.argv[3], json.loads(sys.argv[2]))
"#;
    if !crate::helpers::python_has("standardwebhooks", "standardwebhooks") {
        return None;
    }
    let h: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let out = Command::new("python3")
        .args(["-c", SCRIPT, secret, &Value::Object(h).to_string(), body])
        .output()
        .expect("python3");
    Some(out.status.success())
}

#[tokio::test]
async fn audit_events_arrive_signed_once_each_through_failures_and_two_instances() {
    let (url, got) = receiver(2).await;
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
    );
    let dir = TempDir::new();
    let mut config = test_config(&dir);
    config.webhooks.retry_initial_ms = 100;
    config.webhooks.endpoints = serde_json::from_value(json!([
        { "url": url, "secret": secret, "events": ["registered", "login_failed"] }
    ]))
    .expect("endpoints");
    // Two instances on one database: each event must arrive once.
    let repo =
        phoneauth::users::connect(&config.database.url, phoneauth::app::pg_settings(&config))
            .await
            .expect("database");
    let clock = phoneauth::clock::ManualClock::new();
    let store: phoneauth::store::SharedStore =
        phoneauth::store::MemoryStore::new(clock.clone(), 64 << 20);
    let one = spawn_with_parts(
        config.clone(),
        clock.clone(),
        store.clone(),
        repo.clone(),
        dir,
    )
    .await;
    let two = spawn_with_parts(config, clock, store, repo, TempDir::new()).await;

    let (a, b) = (fresh_mobile(), fresh_mobile());
    assert_eq!(one.sign_up(&a, "a good password").await["errno"], "0");
    assert_eq!(two.sign_up(&b, "a good password").await["errno"], "0");
    assert_eq!(one.login(&a, "not the password").await["errno"], "4004");

    // phoneauth times its retries by its (manual) clock: move it on.
    for _ in 0..200 {
        if got.lock().expect("lock").len() >= 3 {
            break;
        }
        one.clock.advance(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let any duplicate show itself.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let delivered = got.lock().expect("lock").clone();
    assert_eq!(
        delivered.len(),
        3,
        "each event once (the first two posts were refused and retried)"
    );
    let mut types: Vec<String> = delivered
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).expect("json")["type"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["login_failed", "registered", "registered"]);
    check_signed(&secret, &delivered, &[&a, &b]);
}

/// Each delivery is signed (checked by `standardwebhooks`, and a changed
/// body fails), has its own id, and holds none of `numbers`.
fn check_signed(secret: &str, delivered: &[(Vec<(String, String)>, String)], numbers: &[&str]) {
    let mut ids = std::collections::HashSet::new();
    for (headers, body) in delivered {
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let id = header("webhook-id").expect("webhook-id");
        assert!(id.starts_with("msg_") && ids.insert(id.to_owned()), "{id}");
        assert!(header("webhook-signature").is_some_and(|v| v.starts_with("v1,")));
        for n in numbers {
            assert!(!body.contains(n), "numbers are masked: {body}");
        }
        if let Some(ok) = verify(secret, headers, body) {
            assert!(ok, "standardwebhooks refused {body}");
        }
        // A changed body does not verify.
        if let Some(ok) = verify(secret, headers, &format!("{body} ")) {
            assert!(!ok, "a changed body verified");
        }
    }
}

/// The outbox is in the database: events queued while the receiver was
/// down are delivered by the next process after the first was killed.
#[tokio::test]
async fn events_queued_before_a_crash_arrive_after_the_restart() {
    let (url, got, refusals) = gated_receiver(3).await;
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])
    );
    let dir = TempDir::new();
    std::fs::write(
        dir.0.join("phoneauth.toml"),
        format!(
            "[webhooks]\nretry_initial_ms = 2000\n\n[[webhooks.endpoints]]\n\
             url = \"{url}\"\nsecret = \"{secret}\"\nevents = [\"*\"]\n"
        ),
    )
    .expect("config");
    let (mut first, base) = serve_process(&dir, &[]).await;
    let numbers: Vec<String> = (0..3).map(|_| fresh_mobile()).collect();
    let http = client();
    for m in &numbers {
        let v: Value = http
            .post(format!("{base}/api/v1.0/sessions"))
            .json(&json!({ "mobile": m, "password": "not anyone's" }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        assert_eq!(v["errno"], "4004");
    }
    // Each message is tried once and refused; then the process dies before
    // its retry (2 s later) is due.
    for _ in 0..100 {
        if refusals.load(SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        refusals.load(SeqCst),
        0,
        "the first process tried each message"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().await.expect("kill");
    assert!(got.lock().expect("lock").is_empty());

    let (_second, _) = serve_process(&dir, &[]).await;
    for _ in 0..150 {
        if got.lock().expect("lock").len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = got.lock().expect("lock").clone();
    assert_eq!(
        delivered.len(),
        3,
        "each queued event once, after the restart"
    );
    for (_, body) in &delivered {
        let v: Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["type"], "login_failed", "{body}");
    }
    let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
    check_signed(&secret, &delivered, &numbers);
}
