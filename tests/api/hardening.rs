//! The attacks of the hardening review, each done for real on loopback and
//! bounded in count and time: slow and numerous connections, store
//! exhaustion from one address, lockouts by others, a slow SMS vendor,
//! unbounded sessions, the four-step flow behind one NAT, hosting the
//! database, disabled users, HTTP/2 CSRF, ported X-Forwarded-For hops and
//! concurrent correct logins. (Configuration strings: `config::tests`;
//! logged client networks: `logs`.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    TempDir, TestApp, client, fresh_mobile, json_of, spawn_app_with, spawn_with_parts, test_config,
};

fn addr_of(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("socket address")
}

/// A connection from a chosen loopback address (127.0.0.0/8 is all ours).
async fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{local}:0").parse().expect("addr"))
        .expect("bind");
    socket.connect(to).await.expect("connect")
}

/// Reads until the peer closes or `within` passes; returns what came and
/// whether the connection was closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

// ---- 1. slow and numerous connections ------------------------------------------

#[tokio::test]
async fn a_header_that_does_not_arrive_in_time_closes_the_connection() {
    let app =
        spawn_app_with(|c| c.server.header_timeout = phoneauth::config::Seconds::secs(1)).await;
    let mut s = TcpStream::connect(addr_of(&app)).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a header");
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent header must not hold the connection");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_gets_413_at_once() {
    let app = spawn_app_with(|_| {}).await;
    let mut s = TcpStream::connect(addr_of(&app)).await.expect("connect");
    s.write_all(
        b"POST /api/v1.0/users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{",
    )
    .await
    .expect("send");
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let app = spawn_app_with(|c| c.server.body_timeout = phoneauth::config::Seconds::secs(1)).await;
    let mut s = TcpStream::connect(addr_of(&app)).await.expect("connect");
    s.write_all(b"POST /api/v1.0/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"mo")
        .await
        .expect("send");
    let started = Instant::now();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(|c| {
        c.server.idle_timeout = phoneauth::config::Seconds::secs(1);
        c.server.header_timeout = phoneauth::config::Seconds::secs(30);
    })
    .await;
    let mut s = TcpStream::connect(addr_of(&app)).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.expect("answer");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "the idle connection stays open");
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let app = spawn_app_with(|c| {
        c.server.max_connections_per_ip = 20;
        c.server.max_connections = 100;
        c.server.header_timeout = phoneauth::config::Seconds::secs(30);
    })
    .await;
    let to = addr_of(&app);
    // 60 half-sent requests from one address: at most 20 are held.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..60 {
        let mut s = connect_from("127.0.0.1", to).await;
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
        held.push(s);
    }
    for s in &mut held {
        let (answer, closed) = read_until_closed(s, Duration::from_millis(200)).await;
        if closed {
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
                "{answer:?}"
            );
            refused += 1;
        }
    }
    assert_eq!(
        refused, 40,
        "connections over the per-address cap are closed at once"
    );
    // Everyone else is still served at once.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().expect("ip"))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let resp = other
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz answers for another address");
    assert_eq!(resp.status(), 200);
}

// ---- 2. store exhaustion from one address --------------------------------------

#[tokio::test]
async fn a_limited_address_cannot_fill_the_store() {
    let dir = TempDir::new();
    let mut config = test_config(&dir);
    config.limits.login_failures_per_ip = 5;
    let clock = phoneauth::clock::ManualClock::new();
    // Room for a few hundred small entries only.
    let store = phoneauth::store::MemoryStore::new(clock.clone(), 96 * 1024);
    let repo =
        phoneauth::users::connect(&config.database.url, phoneauth::app::pg_settings(&config))
            .await
            .expect("database");
    let app = spawn_with_parts(config, clock, store, repo, dir).await;
    let mut refused = 0;
    for i in 0..1_500u32 {
        let v = app
            .login(&format!("137{:08}", 10_000_000 + i), "wrong-password-1")
            .await;
        if v["errno"] == "4201" {
            refused += 1;
        }
    }
    assert!(
        refused >= 1_490,
        "the address is limited after 5 failures ({refused})"
    );
    // The store still takes everyone else's captchas and codes.
    let (id, answer) = app.captcha().await;
    let v = app.sms_code(&fresh_mobile(), &answer, &id).await;
    assert_eq!(v["errno"], "0", "{v}");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_nearly_full_store_makes_readiness_fail_before_writes_do() {
    let dir = TempDir::new();
    let config = test_config(&dir);
    let clock = phoneauth::clock::ManualClock::new();
    let store = phoneauth::store::MemoryStore::new(clock.clone(), 64 * 1024);
    let repo =
        phoneauth::users::connect(&config.database.url, phoneauth::app::pg_settings(&config))
            .await
            .expect("database");
    let app = spawn_with_parts(config, clock, store.clone(), repo, dir).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    // Fill to just over 90 % directly, as many clients would.
    let mut i = 0;
    while store.used_bytes() < 64 * 1024 * 92 / 100 {
        use phoneauth::store::KvStore;
        store
            .set(&format!("fill:{i}"), &[0u8; 64], Duration::from_secs(300))
            .await
            .expect("still room");
        i += 1;
    }
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["failing"], "store");
    // Writes still succeed: readiness warned first.
    let (_, _) = app.captcha().await;
}

// ---- 3 and 13. login counting ----------------------------------------------------

/// A client that the service sees as `ip` (through a trusted proxy).
fn as_client(ip: &str) -> reqwest::Client {
    crate::helpers::ensure_tls();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        reqwest::header::HeaderValue::from_str(ip).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(h)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn login_as(app: &TestApp, c: &reqwest::Client, mobile: &str, password: &str) -> Value {
    json_of(
        c.post(app.url("/api/v1.0/sessions"))
            .json(&json!({ "mobile": mobile, "password": password }))
            .send()
            .await
            .expect("login"),
    )
    .await
}

#[tokio::test]
async fn a_limited_address_cannot_lock_anyone_out() {
    let app = spawn_app_with(|c| {
        c.server.trusted_proxies =
            phoneauth::config::CidrList(vec!["127.0.0.1/32".parse().expect("cidr")]);
        c.limits.login_failures_per_ip = 5;
    })
    .await;
    let victim = fresh_mobile();
    assert_eq!(app.sign_up(&victim, "right password 1").await["errno"], "0");
    let attacker = as_client("198.51.100.66");
    for _ in 0..5 {
        let other = fresh_mobile();
        assert_eq!(
            login_as(&app, &attacker, &other, "guess-guess").await["errno"],
            "4004"
        );
    }
    // Now limited itself, the attacker hammers the victim's number.
    for _ in 0..20 {
        let v = login_as(&app, &attacker, &victim, "guess-guess").await;
        assert_eq!(v["errno"], "4201", "{v}");
    }
    let owner = as_client("203.0.113.5");
    let v = login_as(&app, &owner, &victim, "right password 1").await;
    assert_eq!(v["errno"], "0", "the owner is not locked out: {v}");
}

#[tokio::test]
async fn failed_logins_per_number_are_counted_strictly_even_in_parallel() {
    let app = spawn_app_with(|c| {
        c.server.trusted_proxies =
            phoneauth::config::CidrList(vec!["127.0.0.1/32".parse().expect("cidr")]);
    })
    .await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "right password 2").await["errno"], "0");
    // 20 parallel wrong passwords from 20 addresses: exactly 5 are checked.
    let tries = (0..20).map(|i| {
        let c = as_client(&format!("198.51.100.{}", 10 + i));
        let (app, m) = (&app, m.clone());
        async move { login_as(app, &c, &m, "wrong password").await["errno"].clone() }
    });
    let answers = join_all(tries.collect()).await;
    let checked = answers.iter().filter(|e| *e == "4004").count();
    let refused = answers.iter().filter(|e| *e == "4201").count();
    assert_eq!((checked, refused), (5, 15), "{answers:?}");
}

#[tokio::test]
async fn parallel_correct_logins_are_never_refused() {
    let app = spawn_app_with(|_| {}).await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "right password 3").await["errno"], "0");
    let tries = (0..8).map(|_| {
        let c = client();
        let (app, m) = (&app, m.clone());
        async move { login_as(app, &c, &m, "right password 3").await["errno"].clone() }
    });
    let answers = join_all(tries.collect()).await;
    assert!(answers.iter().all(|e| e == "0"), "{answers:?}");
}

/// Runs every future concurrently on this task.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}

// ---- 4. a slow vendor ------------------------------------------------------------

#[tokio::test]
async fn a_vendor_that_answers_late_sends_one_message_not_one_per_retry() {
    let (slow, fallback) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({ "statusCode": "000000", "templateSMS": { "smsMessageSid": "m1" } }),
                )
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&slow)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(0)
        .mount(&fallback)
        .await;
    let (s, f) = (slow.uri(), fallback.uri());
    let app = spawn_app_with(move |c| {
        c.sms.provider = phoneauth::config::ProviderKind::Cloopen;
        c.sms.fallback = phoneauth::config::List(vec![phoneauth::config::ProviderKind::Twilio]);
        c.sms.cloopen = phoneauth::config::CloopenConfig {
            base_url: s,
            account_sid: "aaf98f89sid".into(),
            auth_token: "token-secret".into(),
            app_id: "8a216da8app".into(),
            template_id: "1".into(),
            ..Default::default()
        };
        c.sms.twilio = phoneauth::config::TwilioConfig {
            base_url: f,
            account_sid: "AC0123456789abcdef".into(),
            auth_token: "twilio-token".into(),
            from: "+15005550006".into(),
            ..phoneauth::config::TwilioConfig::default()
        };
        c.sms.timeout_ms = 1_000;
    })
    .await;
    let m = fresh_mobile();
    let mut answers = Vec::new();
    for _ in 0..4 {
        let (id, answer) = app.captcha().await;
        answers.push(app.sms_code(&m, &answer, &id).await["errno"].clone());
    }
    // Let the vendor's late answers land before counting.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let sent = slow.received_requests().await.expect("recorded").len();
    assert_eq!(sent, 1, "one message, whatever the retries: {answers:?}");
    assert_eq!(answers[0], "0", "an unknown outcome is answered as sent");
    assert!(answers[1..].iter().all(|e| e == "4201"), "{answers:?}");
    assert!(app.dev_sms(&m).await.is_some(), "the code was kept");
}

// ---- 5. sessions per user --------------------------------------------------------

#[tokio::test]
async fn a_user_holds_at_most_max_per_user_sessions_the_oldest_ending_first() {
    let app = spawn_app_with(|c| c.sessions.max_per_user = 3).await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "right password 4").await["errno"], "0");
    let mut browsers = Vec::new();
    for _ in 0..5 {
        let c = client();
        assert_eq!(
            login_as(&app, &c, &m, "right password 4").await["errno"],
            "0"
        );
        browsers.push(c);
    }
    let mut live = Vec::new();
    for c in &browsers {
        let v = json_of(
            c.get(app.url("/api/v1.0/session"))
                .send()
                .await
                .expect("session"),
        )
        .await;
        live.push(v["errno"] == "0");
    }
    assert_eq!(live, [false, false, true, true, true]);
}

// ---- 6. the four-step flow behind one NAT ----------------------------------------

async fn step(app: &TestApp, n: u8, body: Value, token_header: Option<&str>) -> Value {
    let mut req = app
        .client
        .post(app.url(&format!("/register-step-{n}")))
        .json(&body);
    if let Some(t) = token_header {
        req = req.header("Step-Token", t);
    }
    req.send().await.expect("step").json().await.expect("json")
}

#[tokio::test]
async fn steps_hand_out_a_token_and_refuse_a_wrong_one() {
    let app = spawn_app_with(|c| {
        c.compat.routes = phoneauth::config::List(vec![phoneauth::config::RouteSet::Steps]);
    })
    .await;
    let m = fresh_mobile();
    assert_eq!(
        step(&app, 1, json!({ "phone_number": m }), None).await["code"],
        1
    );
    let code = app.dev_sms(&m).await.expect("code");
    let v = step(
        &app,
        2,
        json!({ "phone_number": m, "validate_number": code }),
        None,
    )
    .await;
    let token = v["step_token"].as_str().expect("step_token").to_owned();
    assert_eq!(token.len(), 32);
    // Someone behind the same address, guessing a token: refused.
    let v = step(
        &app,
        3,
        json!({ "phone_number": m, "password": "their password", "password_confirm": "their password", "step_token": "0".repeat(32) }),
        None,
    )
    .await;
    assert_eq!(v["code"], 0, "{v}");
    // The real client, token in the header.
    let v = step(
        &app,
        3,
        json!({ "phone_number": m, "password": "my password 5", "password_confirm": "my password 5" }),
        Some(&token),
    )
    .await;
    assert_eq!(v["code"], 1, "{v}");
    let v = step(
        &app,
        4,
        json!({ "phone_number": m, "step_token": token }),
        None,
    )
    .await;
    assert_eq!(v["code"], 1, "{v}");
}

#[tokio::test]
async fn once_the_token_is_used_no_one_behind_the_address_can_swap_the_password() {
    let app = spawn_app_with(|c| {
        c.compat.routes = phoneauth::config::List(vec![phoneauth::config::RouteSet::Steps]);
    })
    .await;
    let m = fresh_mobile();
    step(&app, 1, json!({ "phone_number": m }), None).await;
    let code = app.dev_sms(&m).await.expect("code");
    let v = step(
        &app,
        2,
        json!({ "phone_number": m, "validate_number": code }),
        None,
    )
    .await;
    let token = v["step_token"].as_str().expect("step_token").to_owned();
    let mine = json!({ "phone_number": m, "password": "my password 8", "password_confirm": "my password 8" });
    assert_eq!(step(&app, 3, mine, Some(&token)).await["code"], 1);
    // A neighbour behind the same address, without the token.
    let theirs = json!({ "phone_number": m, "password": "their password", "password_confirm": "their password" });
    assert_eq!(step(&app, 3, theirs, None).await["code"], 0);
    assert_eq!(
        step(&app, 4, json!({ "phone_number": m }), None).await["code"],
        0
    );
    let v = step(&app, 4, json!({ "phone_number": m }), Some(&token)).await;
    assert_eq!(v["code"], 1, "{v}");
    assert_eq!(app.login(&m, "my password 8").await["errno"], "0");
}

#[tokio::test]
async fn steps_require_the_token_when_configured() {
    let app = spawn_app_with(|c| {
        c.compat.routes = phoneauth::config::List(vec![phoneauth::config::RouteSet::Steps]);
        c.compat.steps_require_token = true;
    })
    .await;
    let m = fresh_mobile();
    step(&app, 1, json!({ "phone_number": m }), None).await;
    let code = app.dev_sms(&m).await.expect("code");
    let v = step(
        &app,
        2,
        json!({ "phone_number": m, "validate_number": code }),
        None,
    )
    .await;
    let token = v["step_token"].as_str().expect("step_token").to_owned();
    // Same address, no token: refused.
    let v = step(
        &app,
        3,
        json!({ "phone_number": m, "password": "their password", "password_confirm": "their password" }),
        None,
    )
    .await;
    assert_eq!(v["code"], 0, "{v}");
    let v = step(
        &app,
        3,
        json!({ "phone_number": m, "password": "my password 6", "password_confirm": "my password 6", "step_token": token }),
        None,
    )
    .await;
    assert_eq!(v["code"], 1, "{v}");
    let v = step(&app, 4, json!({ "phone_number": m }), None).await;
    assert_eq!(v["code"], 0, "step 4 without the token: {v}");
    let v = step(&app, 4, json!({ "phone_number": m }), Some(&token)).await;
    assert_eq!(v["code"], 1, "{v}");
}

// ---- 8. hosting never serves the database or the secret --------------------------

#[tokio::test]
async fn a_served_folder_holding_the_database_is_refused_at_start() {
    let dir = TempDir::new();
    let mut config = test_config(&dir);
    config.web.pages_dir = Some(dir.0.clone());
    let err = phoneauth::App::build(config).await.err().expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("web.pages_dir"), "{msg}");
    assert!(msg.contains("test.db"), "{msg}");
}

#[tokio::test]
async fn a_served_folder_holding_a_log_is_refused_and_such_files_are_never_served() {
    let dir = TempDir::new();
    let site = dir.0.join("site");
    std::fs::create_dir_all(site.join("deep")).expect("mkdir");
    std::fs::write(site.join("deep/app.log"), "secrets").expect("write");
    let mut config = test_config(&dir);
    config.web.static_dir = Some(site.clone());
    let err = phoneauth::App::build(config).await.err().expect("refused");
    assert!(format!("{err:#}").contains("app.log"));
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_and_the_secret_are_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let mut config = test_config(&dir);
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    let _app = phoneauth::App::build(config).await.expect("builds");
    for name in ["test.db", "phoneauth.secret"] {
        let mode = std::fs::metadata(dir.0.join(name))
            .expect(name)
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is readable by others: {mode:o}");
    }
}

// ---- 9. disabled users -------------------------------------------------------------

#[tokio::test]
async fn a_disabled_users_sessions_stop_working_at_once() {
    let dir = TempDir::new();
    let db = dir.0.join("test.db");
    let config = test_config(&dir);
    let clock = phoneauth::clock::ManualClock::new();
    let store = phoneauth::store::MemoryStore::new(clock.clone(), 16 << 20);
    let repo =
        phoneauth::users::connect(&config.database.url, phoneauth::app::pg_settings(&config))
            .await
            .expect("database");
    let app = spawn_with_parts(config, clock, store, repo, dir).await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "right password 7").await["errno"], "0");
    assert_eq!(app.session().await["errno"], "0");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    sqlx::query("UPDATE users SET disabled = 1")
        .execute(&pool)
        .await
        .expect("disable");
    assert_eq!(app.session().await["errno"], "4101");
    assert_eq!(app.user().await["errno"], "4101");
    assert_eq!(app.login(&m, "right password 7").await["errno"], "4104");
}

// ---- 10. HTTP/2 and CSRF ----------------------------------------------------------

#[tokio::test]
async fn same_origin_posts_over_http2_pass_and_downgrades_do_not() {
    let app = spawn_app_with(|_| {}).await;
    crate::helpers::ensure_tls();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let post = |origin: String| {
        h2.post(app.url("/api/v1.0/sessions"))
            .header("origin", origin)
            .header("sec-fetch-site", "same-origin")
            .json(&json!({ "mobile": fresh_mobile(), "password": "whatever-1" }))
            .send()
    };
    let resp = post(app.base.clone()).await.expect("h2 request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200, "a same-origin POST over h2c passes");
    let other = app.base.replace("127.0.0.1", "localhost");
    assert_eq!(post(other).await.expect("h2 request").status(), 403);
}

#[tokio::test]
async fn a_plain_http_page_cannot_post_to_the_https_site() {
    let app = spawn_app_with(|c| c.server.secure_cookies = true).await;
    let post = |origin: String| {
        app.client
            .post(app.url("/api/v1.0/sessions"))
            .header("origin", origin)
            .json(&json!({ "mobile": fresh_mobile(), "password": "whatever-1" }))
            .send()
    };
    let https = app.base.replace("http://", "https://");
    assert_eq!(post(https).await.expect("request").status(), 200);
    assert_eq!(post(app.base.clone()).await.expect("request").status(), 403);
}

// ---- 11. X-Forwarded-For hops with ports --------------------------------------------

#[tokio::test]
async fn forwarded_hops_with_ports_are_separate_clients() {
    let app = spawn_app_with(|c| {
        c.server.trusted_proxies =
            phoneauth::config::CidrList(vec!["127.0.0.1/32".parse().expect("cidr")]);
        c.limits.login_failures_per_ip = 3;
    })
    .await;
    let first = as_client("203.0.113.7:5555");
    for _ in 0..3 {
        assert_eq!(
            login_as(&app, &first, &fresh_mobile(), "guess-guess").await["errno"],
            "4004"
        );
    }
    assert_eq!(
        login_as(&app, &first, &fresh_mobile(), "guess-guess").await["errno"],
        "4201"
    );
    let second = as_client("203.0.113.8:6666");
    assert_eq!(
        login_as(&app, &second, &fresh_mobile(), "guess-guess").await["errno"],
        "4004",
        "another client behind the same balancer is not limited"
    );
}

// ---- 12. configuration strings from the environment -----------------------------

#[test]
fn environment_values_reach_the_config_exactly_as_written() {
    let dir = TempDir::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phoneauth"))
        .arg("check-config")
        .current_dir(&dir.0)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("PHONEAUTH_SMS__PROVIDER", "twilio")
        .env("PHONEAUTH_SMS__TWILIO__ACCOUNT_SID", "AC0123")
        .env("PHONEAUTH_SMS__TWILIO__AUTH_TOKEN", "12e4")
        .env("PHONEAUTH_SMS__TWILIO__FROM", "+15005550006")
        .env("PHONEAUTH_SMS__TENCENT__TEMPLATE_ID", "0123")
        .output()
        .expect("run phoneauth");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains(r#"from = "+15005550006""#), "{printed}");
    assert!(printed.contains(r#"template_id = "0123""#), "{printed}");
}
