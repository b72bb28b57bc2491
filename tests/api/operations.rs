//! The operations surface: Prometheus metrics on the admin listener, request
//! ids, JSON logs, and graceful shutdown on a real signal.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TempDir, client, fresh_mobile, spawn_app};

/// The value of the sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_scripted_flow_shows_up_in_the_metrics() {
    let app = spawn_app().await;
    let admin = app.admin.clone().expect("admin listener");
    let scrape = || async {
        let resp = client()
            .get(format!("{admin}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status(), 200);
        resp.text().await.expect("text")
    };
    let before = scrape().await;

    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    let (id, answer) = app.captcha().await;
    app.sms_code(&m, &answer, &id).await; // cooldown refusal
    let wrong = if code == "000000" { "111111" } else { "000000" };
    app.register(&m, wrong, "password123").await;
    app.register(&m, &code, "password123").await;
    app.logout().await;
    app.login(&m, "wrong-password").await;
    app.login(&m, "password123").await;

    let after = scrape().await;
    let grew =
        |name: &str, labels: &[&str]| sample(&after, name, labels) - sample(&before, name, labels);
    assert!(grew("phoneauth_captchas_issued_total", &[]) >= 2.0);
    assert!(
        grew(
            "phoneauth_sms_sends_total",
            &["provider=\"flaky\"", "outcome=\"ok\""]
        ) >= 1.0
    );
    assert!(grew("phoneauth_code_verifications_total", &["outcome=\"wrong\""]) >= 1.0);
    assert!(grew("phoneauth_code_verifications_total", &["outcome=\"ok\""]) >= 1.0);
    assert!(grew("phoneauth_limit_refusals_total", &["scope=\"cooldown\""]) >= 1.0);
    assert!(grew("phoneauth_logins_total", &["outcome=\"bad_credentials\""]) >= 1.0);
    assert!(grew("phoneauth_logins_total", &["outcome=\"ok\""]) >= 1.0);
    assert!(grew("phoneauth_registrations_total", &[]) >= 1.0);
    assert!(
        grew(
            "phoneauth_http_requests_total",
            &[
                "route=\"/api/v1.0/sms_codes/{mobile}\"",
                "method=\"GET\"",
                "status=\"200\""
            ]
        ) >= 2.0
    );
    assert!(
        after.contains("phoneauth_http_request_duration_seconds_bucket"),
        "latency histogram"
    );
    assert!(!after.contains(&m), "no raw path or number in any label");

    app.store.set_down(true);
    app.image_code("x1").await;
    app.store.set_down(false);
    let last = scrape().await;
    assert!(
        sample(
            &last,
            "phoneauth_backend_errors_total",
            &["backend=\"store\""]
        ) >= 1.0
    );
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener() {
    let app = spawn_app().await;
    assert_eq!(app.get("/metrics").await.status(), 404);
}

#[tokio::test]
async fn the_request_id_is_taken_or_made_and_echoed() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.headers()["x-request-id"], "trace-42");
    let resp = app.get("/healthz").await;
    let made = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(made.len(), 16);
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "has/slash")
        .send()
        .await
        .expect("req");
    // Not 1–64 of [A-Za-z0-9-]: replaced by a fresh id, never echoed.
    let echoed = resp.headers()["x-request-id"].to_str().expect("ascii");
    assert_ne!(echoed, "has/slash");
    assert_eq!(echoed.len(), 16);
}

/// Starts the binary with `env`, waits for its listening line, and returns
/// the child, its base URL and the log lines read so far (stderr).
async fn start_binary(
    dir: &TempDir,
    env: &[(&str, &str)],
) -> (
    Child,
    String,
    Vec<String>,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phoneauth"));
    cmd.arg("serve")
        .current_dir(&dir.0)
        .env("PHONEAUTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("PHONEAUTH_SERVER__ADMIN_LISTEN", "off")
        .env("PHONEAUTH_DEV__EXPOSE_SECRETS", "true")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start phoneauth");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let addr = line
                .split("addr=")
                .nth(1)
                .map(|r| {
                    r.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned()
                })
                .or_else(|| {
                    serde_json::from_str::<Value>(&line)
                        .ok()?
                        .get("addr")?
                        .as_str()
                        .map(str::to_owned)
                });
            seen.push(line);
            if let Some(a) = addr {
                return a;
            }
        }
        panic!("phoneauth exited before listening:\n{}", seen.join("\n"));
    })
    .await
    .expect("listening within 60 s");
    (child, format!("http://{addr}"), seen, lines)
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_span() {
    let dir = TempDir::new();
    let (mut child, base, mut seen, mut lines) =
        start_binary(&dir, &[("PHONEAUTH_LOG__FORMAT", "json")]).await;
    let http = client();
    http.get(format!("{base}/api/v1.0/image_codes/jsonlog1"))
        .header("x-request-id", "json-log-1")
        .send()
        .await
        .expect("req");
    child.start_kill().expect("stop");
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(l)) = lines.next_line().await {
            seen.push(l);
        }
    })
    .await;
    let objects: Vec<Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        objects
            .iter()
            .all(|o| o["level"].is_string() && o["timestamp"].is_string())
    );
    let done = objects
        .iter()
        .find(|o| o["message"] == "request done" && o["span"]["id"] == "json-log-1")
        .expect("a request line carrying its span");
    assert_eq!(
        done["span"]["route"],
        "/api/v1.0/image_codes/{image_code_id}"
    );
    assert_eq!(done["status"], 200);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_refuses_new_ones_and_exits() {
    let dir = TempDir::new();
    // A deliberately slow hash keeps a registration in flight for a while.
    let (child, base, _seen, _lines) = start_binary(
        &dir,
        &[
            ("PHONEAUTH_PASSWORD__ARGON2_MEMORY_KIB", "65536"),
            ("PHONEAUTH_PASSWORD__ARGON2_ITERATIONS", "40"),
        ],
    )
    .await;
    let http = client();
    let m = fresh_mobile();
    let id = "shutdown1";
    http.get(format!("{base}/api/v1.0/image_codes/{id}"))
        .send()
        .await
        .expect("captcha");
    let v: Value = http
        .get(format!("{base}/dev/captcha/{id}"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let answer = v["data"]["text"].as_str().expect("answer").to_owned();
    let v: Value = http
        .get(format!(
            "{base}/api/v1.0/sms_codes/{m}?image_code={answer}&image_code_id={id}"
        ))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(v["errno"], "0");
    let v: Value = http
        .get(format!("{base}/dev/sms/{m}"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let code = v["data"]["code"].as_str().expect("code").to_owned();

    let in_flight = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let resp = http
                .post(format!("{base}/api/v1.0/users"))
                .json(&json!({ "mobile": m, "sms_code": code, "password": "password123" }))
                .send()
                .await
                .expect("the in-flight request is answered");
            (resp.json::<Value>().await.expect("json"), started.elapsed())
        })
    };
    // Long enough for the request to be read, however loaded the machine;
    // the hash then keeps it in flight for seconds.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pid = child.id().expect("pid");
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());

    // While that request drains, new connections are refused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = crate::helpers::plain_client()
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(
        during.is_err(),
        "a new connection during the drain must be refused"
    );
    let drained_after_refusal = !in_flight.is_finished();

    let (v, took) = in_flight.await.expect("task");
    assert!(
        drained_after_refusal,
        "the refusal happened while a request was still in flight"
    );
    assert_eq!(v["errno"], "0", "the registration in flight finished: {v}");
    assert!(
        took > Duration::from_millis(1000),
        "it really was in flight ({took:?})"
    );

    let mut child = child;
    let exit = tokio::time::timeout(Duration::from_secs(25), child.wait())
        .await
        .expect("exits within the grace time");
    assert!(exit.expect("wait").success(), "clean exit");
    assert!(sent.elapsed() < Duration::from_secs(25));
    let refused = crate::helpers::plain_client()
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn the_openapi_document_describes_every_enabled_route_and_is_pinned() {
    let all = crate::helpers::spawn_app_with(|c| {
        c.compat.routes = phoneauth::config::List(
            ["ihome", "passport", "validate", "steps"]
                .map(|s| s.parse().expect("a route set"))
                .to_vec(),
        );
    })
    .await;
    let doc = all.get_json_any("/api-docs/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    for p in [
        "/api/v1.0/image_codes/{image_code_id}",
        "/api/v1.0/sms_codes/{mobile}",
        "/api/v1.0/users",
        "/api/v1.0/sessions",
        "/api/v1.0/session",
        "/api/v1.0/user",
        "/api/v1_0/users",
        "/passport/image_code",
        "/passport/sms_code",
        "/passport/register",
        "/passport/login",
        "/passport/logout",
        "/image_code/",
        "/sms_code",
        "/register-step-1",
        "/register-step-4",
        "/login",
        "/user",
        "/logout",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            paths.contains(&p),
            "{p} is not documented; documented: {paths:?}"
        );
    }
    insta::assert_json_snapshot!("openapi_all_route_sets", doc, { ".info.version" => "[version]" });

    let default = spawn_app().await;
    let doc = default.get_json_any("/api-docs/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v1.0/users"));
    assert!(
        !paths.contains_key("/passport/login"),
        "route sets not enabled are not described"
    );
}
