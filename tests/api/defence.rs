//! SPEC §10, black-box: the admin API and its token, block and safe lists,
//! adaptive anti-pumping (a simulation of a pumping attack beside a
//! legitimate population), test numbers, the audit log and the statistics.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backends::{
    fresh_pg_schema, fresh_prefix, postgres_url, redis_url, shared_secret, spawn_production,
};
use crate::helpers::{
    ADMIN_TOKEN, TestApp, client, fresh_mobile, json_of, new_captcha_id, spawn_app_with,
};

/// An admin call with `token` (`None`: no header).
async fn admin_as(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let base = app.admin.as_deref().expect("admin listener");
    let mut req = client().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn admin(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    admin_as(app, Some(ADMIN_TOKEN), method, path, body).await
}

async fn block(app: &TestApp, kind: &str, value: &str) {
    let (status, v) = admin(
        app,
        Method::POST,
        "/admin/lists/block",
        Some(json!({ "type": kind, "value": value })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

/// A captcha-checked register code request from client address `ip`.
async fn send_from(app: &TestApp, ip: &str, mobile: &str) -> Value {
    let id = new_captcha_id();
    let resp = app
        .client
        .get(app.url(&format!("/api/v1.0/image_codes/{id}")))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .expect("captcha");
    assert_eq!(resp.status(), 200);
    let answer = app.dev_captcha(&id).await.expect("answer");
    let resp = app
        .client
        .get(app.url(&format!(
            "/api/v1.0/sms_codes/{mobile}?image_code={answer}&image_code_id={id}"
        )))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .expect("send");
    json_of(resp).await
}

fn behind_a_proxy(c: &mut phoneauth::config::Config) {
    c.server.trusted_proxies = serde_json::from_value(json!(["127.0.0.1"])).expect("cidr");
}

#[tokio::test]
async fn the_admin_api_wants_its_token_and_is_not_on_the_public_listener() {
    let app = spawn_app_with(|_| {}).await;
    for token in [None, Some("wrong"), Some("")] {
        let (status, v) = admin_as(&app, token, Method::GET, "/admin/stats", None).await;
        assert_eq!(status, 401, "{token:?}: {v}");
    }
    assert_eq!(admin(&app, Method::GET, "/admin/stats", None).await.0, 200);
    assert_eq!(
        app.get("/admin/stats").await.status(),
        404,
        "not on the public listener"
    );
    // With no token configured, every call is refused.
    let open = spawn_app_with(|c| c.admin.token = Default::default()).await;
    let (status, _) = admin_as(&open, Some(""), Method::GET, "/admin/stats", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn blocked_numbers_prefixes_countries_and_networks_get_no_code() {
    let app = spawn_app_with(|c| {
        behind_a_proxy(c);
        c.phone.allowed_regions = serde_json::from_value(json!(["HK"])).expect("regions");
    })
    .await;
    let (number, by_prefix, hk) = (fresh_mobile(), "13700001234", "+85251234567");
    block(&app, "number", &format!("+86 {number}")).await;
    block(&app, "prefix", "86137").await;
    block(&app, "country", "hk").await;
    block(&app, "network", "198.51.100.0/24").await;
    for (i, m) in [number.as_str(), by_prefix, hk].iter().enumerate() {
        let v = send_from(&app, &format!("203.0.113.{}", i + 1), m).await;
        assert_eq!(v["errno"], "4201", "{m}: {v}");
        assert_eq!(v["errmsg"], "请求被拒绝", "no hint of the list: {v}");
        assert_eq!(app.dev_sms(m).await, None, "no SMS for {m}");
    }
    let free = fresh_mobile();
    let v = send_from(&app, "198.51.100.7", &free).await;
    assert_eq!(v["errno"], "4202", "a blocked network: {v}");
    assert_eq!(send_from(&app, "203.0.113.9", &free).await["errno"], "0");

    // Malformed entries are refused and change nothing.
    for (kind, value) in [
        ("prefix", "86-137"),
        ("country", "ZZ"),
        ("network", "10.0.0.0/40"),
        ("number", "12"),
        ("planet", "x"),
    ] {
        let (status, v) = admin(
            &app,
            Method::POST,
            "/admin/lists/block",
            Some(json!({ "type": kind, "value": value })),
        )
        .await;
        assert_eq!(status, 400, "{kind} {value}: {v}");
        assert_eq!(v["errno"], "4103");
    }
    let (_, listed) = admin(&app, Method::GET, "/admin/lists/block", None).await;
    let entries = listed["data"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 4, "{listed}");
    assert!(
        entries.iter().any(|e| e["value"] == format!("+86{number}")),
        "canonical: {listed}"
    );

    // Removing an entry lets the number through again.
    let body = json!({ "type": "number", "value": number });
    let (status, v) = admin(&app, Method::DELETE, "/admin/lists/block", Some(body)).await;
    assert_eq!(
        (status.as_u16(), v["data"]["changed"].clone()),
        (200, json!(true)),
        "{v}"
    );
    assert_eq!(send_from(&app, "203.0.113.20", &number).await["errno"], "0");
}

/// Runs a pumping attack (never verifying, one address per send, all into
/// one prefix) beside a legitimate population (many prefixes, most
/// verifying). Returns (attack sends let through, attack refusals,
/// legitimate refusals).
async fn simulate(app: &TestApp, legit: usize, attack: usize) -> (usize, usize, usize) {
    let (mut let_through, mut stopped, mut legit_refused) = (0, 0, 0);
    let mut n = 0u32;
    for i in 0..legit.max(attack) {
        if i < legit {
            // Spread over many prefixes, as real users are.
            let m = format!("13{}{:02}{:06}", i % 10, (i / 10) % 100, i);
            let v = send_from(app, &format!("10.1.{}.{}", i / 200, i % 200 + 1), &m).await;
            if v["errno"] != "0" {
                eprintln!("legitimate send to {m} refused: {v}");
                legit_refused += 1;
            } else if i % 10 != 0 {
                // Nine in ten verify their code.
                let code = app.dev_sms(&m).await.expect("code");
                assert_eq!(
                    app.register(&m, &code, "a good password").await["errno"],
                    "0"
                );
            }
        }
        if i < attack {
            n += 1;
            let m = format!("1860001{n:04}");
            let v = send_from(app, &format!("10.2.{}.{}", i / 200, i % 200 + 1), &m).await;
            match v["errno"].as_str() {
                Some("0") => let_through += 1,
                Some("4201") => stopped += 1,
                other => panic!("attack send answered {other:?}: {v}"),
            }
        }
    }
    (let_through, stopped, legit_refused)
}

#[tokio::test]
async fn a_pumping_attack_is_stopped_within_25_sends_and_nobody_else_is_refused() {
    let app = spawn_app_with(|c| {
        behind_a_proxy(c);
        c.defence.mode = phoneauth::config::DefenceMode::Enforce;
    })
    .await;
    let (through, stopped, legit_refused) = simulate(&app, 150, 120).await;
    assert!(through <= 25, "{through} attack sends went out");
    assert_eq!(through + stopped, 120);
    assert_eq!(legit_refused, 0, "legitimate users refused");
    // The refusal is recorded.
    let mut refused_recorded = false;
    for _ in 0..50 {
        let (_, v) = admin(&app, Method::GET, "/admin/audit?event=code_refused", None).await;
        if v["data"]["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["detail"] == "pumping_prefix"))
        {
            refused_recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused_recorded, "the refusal is in the audit log");
    let (_, stats) = admin(&app, Method::GET, "/admin/stats", None).await;
    let hour = &stats["data"]["last_hour"];
    assert!(hour["sends"].as_u64().unwrap_or(0) >= 150, "{stats}");
    assert!(
        hour["verifications"].as_u64().unwrap_or(0) >= 100,
        "{stats}"
    );
    assert_eq!(
        hour["refusals_by_reason"]["pumping_prefix"].as_u64(),
        Some(stopped as u64),
        "every refusal is counted: {stats}"
    );
}

#[tokio::test]
async fn in_shadow_mode_nothing_is_refused_and_the_would_be_refusals_are_counted() {
    let app = spawn_app_with(|c| {
        behind_a_proxy(c);
        c.defence.mode = phoneauth::config::DefenceMode::Shadow;
    })
    .await;
    let (through, stopped, legit_refused) = simulate(&app, 30, 60).await;
    assert_eq!((through, stopped, legit_refused), (60, 0, 0));
    let metrics = client()
        .get(format!("{}/metrics", app.admin.as_deref().expect("admin")))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let counted = metrics
        .lines()
        .filter(|l| {
            l.starts_with("phoneauth_defence_shadow_refusals_total") && l.contains("pumping_prefix")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert!(counted >= 1.0, "shadow refusals counted:\n{metrics}");
    let (_, stats) = admin(&app, Method::GET, "/admin/stats", None).await;
    let shadow = stats["data"]["last_hour"]["refusals_by_reason"]["shadow/pumping_prefix"].as_u64();
    assert!(shadow.unwrap_or(0) >= 30, "{stats}");
    assert_eq!(
        stats["data"]["last_hour"]["refusals"], 0,
        "nothing was refused: {stats}"
    );
    let mut recorded = false;
    for _ in 0..50 {
        let (_, v) = admin(&app, Method::GET, "/admin/audit?event=code_refused", None).await;
        let events = v["data"]["events"].as_array().cloned().unwrap_or_default();
        if events
            .iter()
            .any(|e| e["detail"] == "shadow/pumping_prefix")
        {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recorded, "the would-be refusal is in the audit log");
}

#[tokio::test]
async fn the_safe_list_keeps_a_prefix_out_of_the_adaptive_defence() {
    let app = spawn_app_with(|c| {
        behind_a_proxy(c);
        c.defence.mode = phoneauth::config::DefenceMode::Enforce;
        c.defence.prefix_floor = 3;
    })
    .await;
    let (status, v) = admin(
        &app,
        Method::POST,
        "/admin/lists/safe",
        Some(json!({ "type": "prefix", "value": "+861860002" })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    for i in 0..10 {
        let v = send_from(
            &app,
            &format!("10.4.0.{}", i + 1),
            &format!("1860002{i:04}"),
        )
        .await;
        assert_eq!(v["errno"], "0", "safe prefix, send {i}: {v}");
    }
    // Beside it, the same traffic is stopped.
    let mut refused = 0;
    for i in 0..10 {
        let v = send_from(
            &app,
            &format!("10.5.0.{}", i + 1),
            &format!("1860003{i:04}"),
        )
        .await;
        refused += usize::from(v["errno"] == "4201");
    }
    assert!(refused >= 6, "{refused}");
}

#[tokio::test]
async fn test_numbers_get_their_fixed_code_without_an_sms_or_the_budget() {
    let number = fresh_mobile();
    let expired = fresh_mobile();
    let app = spawn_app_with(|c| {
        c.limits.sms_budget_per_day = 1;
        c.sms.test_numbers = serde_json::from_value(json!([
            { "mobile": number, "code": "246810", "expires": "2099-12-31" },
            { "mobile": expired, "code": "135791", "expires": "2020-01-01" },
        ]))
        .expect("test numbers");
    })
    .await;
    let sent_before = app.sms.sent.load(std::sync::atomic::Ordering::SeqCst);
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&number, &answer, &id).await["errno"], "0");
    assert_eq!(
        app.sms.sent.load(std::sync::atomic::Ordering::SeqCst),
        sent_before,
        "never sent"
    );
    // The cooldown holds.
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&number, &answer, &id).await["errno"], "4201");
    // The guess cap holds.
    for _ in 0..4 {
        assert_eq!(
            app.register(&number, "000000", "a good password").await["errno"],
            "4004"
        );
    }
    assert_eq!(
        app.register(&number, "246810", "a good password").await["errno"],
        "0"
    );
    // The budget of one was not spent by it: a real send still goes out, and
    // then the budget is used up.
    let real = fresh_mobile();
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&real, &answer, &id).await["errno"], "0");
    // An expired test number is an ordinary number: the budget is gone.
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&expired, &answer, &id).await["errno"], "4201");
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_at_once_and_every_step_is_audited() {
    let app = spawn_app_with(|_| {}).await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "a good password").await["errno"], "0");
    assert_eq!(app.login(&m, "a wrong password").await["errno"], "4004");
    let (status, v) = admin(&app, Method::GET, &format!("/admin/users?mobile={m}"), None).await;
    assert_eq!(status, 200, "{v}");
    let id = v["data"]["user_id"].as_i64().expect("id");
    assert_eq!(v["data"]["mobile"], format!("+86{m}"));
    assert!(v["data"].get("password_hash").is_none());
    assert_eq!(
        admin(&app, Method::GET, "/admin/users?id=999999999", None)
            .await
            .0,
        404
    );
    assert_eq!(
        admin(&app, Method::GET, "/admin/users?id=abc", None)
            .await
            .0,
        400
    );

    assert_eq!(app.session().await["errno"], "0");
    let (status, _) = admin(
        &app,
        Method::POST,
        &format!("/admin/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.session().await["errno"],
        "4101",
        "the session ended at once"
    );
    assert_eq!(app.login(&m, "a good password").await["errno"], "4104");
    let (status, _) = admin(
        &app,
        Method::POST,
        &format!("/admin/users/{id}/enable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.login(&m, "a good password").await["errno"], "0");
    let (status, _) = admin(
        &app,
        Method::DELETE,
        &format!("/admin/users/{id}/sessions"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.session().await["errno"], "4101");

    // The audit log has each step, with the number masked.
    let wanted = [
        "code_sent",
        "code_verified",
        "registered",
        "login_failed",
        "user_disabled",
        "user_enabled",
        "logged_in",
        "sessions_ended",
    ];
    let (mut events, mut mine) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let (_, v) = admin(
            &app,
            Method::GET,
            &format!("/admin/audit?user_id={id}"),
            None,
        )
        .await;
        let (_, all) = admin(&app, Method::GET, "/admin/audit", None).await;
        events = all["data"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        mine = v["data"]["events"].as_array().cloned().unwrap_or_default();
        if wanted
            .iter()
            .all(|w| events.iter().any(|e| e["event"] == *w))
            && !mine.is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The user filter keeps this user's events and only them.
    assert!(!mine.is_empty(), "{mine:?}");
    assert!(mine.iter().all(|e| e["user_id"] == id), "{mine:?}");
    assert!(mine.len() < events.len(), "other events are left out");
    for w in wanted {
        assert!(
            events.iter().any(|e| e["event"] == w),
            "{w} missing from {events:?}"
        );
    }
    let masked = format!("{}****{}", &m[..3], &m[7..]);
    for e in &events {
        let text = e.to_string();
        assert!(!text.contains(&m), "whole number in {text}");
    }
    assert!(events.iter().any(|e| e["mobile"] == masked.as_str()));
    assert!(
        events
            .iter()
            .all(|e| e["client_net"] == "127.0.0.0/24" || e["client_net"].is_null())
    );
    assert!(events.iter().any(|e| e["request_id"].is_string()));

    let (status, _) = admin(&app, Method::DELETE, &format!("/admin/users/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(app.login(&m, "a good password").await["errno"], "4004");
}

#[tokio::test]
async fn a_block_added_through_one_instance_holds_on_the_other_within_5_s() {
    let (Some(redis), Some(pg)) = (redis_url(), postgres_url()) else {
        return;
    };
    let (prefix, secret) = (fresh_prefix(), shared_secret());
    let database = fresh_pg_schema(&pg).await;
    let one = spawn_production(&redis, &prefix, &database, &secret, |_| {}).await;
    let two = spawn_production(&redis, &prefix, &database, &secret, |_| {}).await;
    let m = fresh_mobile();
    block(&one, "number", &m).await;
    let started = std::time::Instant::now();
    loop {
        let (id, answer) = two.captcha().await;
        let v = two.sms_code(&m, &answer, &id).await;
        // The list is checked before the cooldown: a block answers with
        // its own words even right after a send.
        if v["errmsg"] == "请求被拒绝" {
            break;
        }
        assert!(v["errno"] == "0" || v["errno"] == "4201", "{v}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not blocked on the other instance within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn signed_delivery_receipts_are_applied_and_forged_ones_refused() {
    use wiremock::matchers::{body_string_contains, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains(
            "StatusCallback=https%3A%2F%2Fauth.example.com%2Fhooks%2Fsms%2Ftwilio",
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "sid": "SMreceipt0001", "status": "queued" })),
        )
        .expect(1)
        .mount(&vendor)
        .await;
    let callback = "https://auth.example.com/hooks/sms/twilio";
    let app = spawn_app_with(|c| {
        c.sms.provider = "twilio".parse().expect("provider");
        c.sms.twilio.base_url = vendor.uri();
        c.sms.twilio.account_sid = "AC0123456789abcdef".into();
        c.sms.twilio.auth_token = "twilio-token".into();
        c.sms.twilio.from = "+15005550006".into();
        c.sms.twilio.status_callback = callback.into();
    })
    .await;
    let (id, answer) = app.captcha().await;
    assert_eq!(
        app.sms_code(&fresh_mobile(), &answer, &id).await["errno"],
        "0"
    );

    let post = |body: &'static str, signature: Option<String>| {
        let mut req = client()
            .post(app.url("/hooks/sms/twilio"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(s) = signature {
            req = req.header("x-twilio-signature", s);
        }
        async move { req.send().await.expect("callback").status() }
    };
    let body = "MessageSid=SMreceipt0001&MessageStatus=delivered&To=%2B8613900000000";
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let signature = phoneauth::sms::receipts::twilio_signature("twilio-token", callback, &fields);
    assert_eq!(post(body, None).await, 401, "unsigned");
    assert_eq!(
        post(body, Some("bm90IGEgc2lnbmF0dXJl".into())).await,
        403,
        "forged"
    );
    let tampered = "MessageSid=SMreceipt0001&MessageStatus=failed&To=%2B8613900000000";
    assert_eq!(
        post(tampered, Some(signature.clone())).await,
        403,
        "signed for another body"
    );
    assert_eq!(post(body, Some(signature)).await, 204);
    assert_eq!(
        client()
            .post(app.url("/hooks/sms/aliyun?token=x"))
            .body("[]")
            .send()
            .await
            .expect("aliyun")
            .status(),
        404,
        "not configured"
    );

    let metrics = client()
        .get(format!("{}/metrics", app.admin.as_deref().expect("admin")))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = |name: &str, needle: &str| {
        metrics
            .lines()
            .any(|l| l.starts_with(name) && l.contains(needle))
    };
    assert!(
        line("phoneauth_sms_receipts_total", r#"status="delivered""#),
        "{metrics}"
    );
    assert!(
        line("phoneauth_sms_receipts_refused_total", r#"reason="forged""#),
        "{metrics}"
    );
    assert!(
        line(
            "phoneauth_sms_receipts_refused_total",
            r#"reason="unsigned""#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn on_redis_and_postgresql_the_attack_is_stopped_and_the_records_are_kept() {
    let (Some(redis), Some(pg)) = (redis_url(), postgres_url()) else {
        return;
    };
    let (prefix, secret) = (fresh_prefix(), shared_secret());
    let database = fresh_pg_schema(&pg).await;
    let enforce = |c: &mut phoneauth::config::Config| {
        behind_a_proxy(c);
        c.defence.mode = phoneauth::config::DefenceMode::Enforce;
    };
    let one = spawn_production(&redis, &prefix, &database, &secret, enforce).await;
    let two = spawn_production(&redis, &prefix, &database, &secret, enforce).await;
    // The attack alternates between the instances: they share the counts.
    let (mut through, mut stopped) = (0, 0);
    for i in 0..40 {
        let app = if i % 2 == 0 { &one } else { &two };
        let v = send_from(app, &format!("10.6.0.{}", i + 1), &format!("1860009{i:04}")).await;
        match v["errno"].as_str() {
            Some("0") => through += 1,
            Some("4201") => stopped += 1,
            other => panic!("{other:?}: {v}"),
        }
    }
    assert_eq!(
        (through, stopped),
        (20, 20),
        "the shared counts trip at the floor"
    );
    // A legitimate user of another prefix is not touched.
    let m = fresh_mobile();
    assert_eq!(send_from(&two, "10.7.0.1", &m).await["errno"], "0");
    let code = two.dev_sms(&m).await.expect("code");
    assert_eq!(
        one.register(&m, &code, "a good password").await["errno"],
        "0"
    );
    // PostgreSQL keeps the audit log and answers the statistics.
    let mut seen = false;
    for _ in 0..50 {
        let (status, v) = admin(&one, Method::GET, "/admin/audit?event=registered", None).await;
        assert_eq!(status, 200, "{v}");
        if v["data"]["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the registration is in the audit log");
    let (status, stats) = admin(&two, Method::GET, "/admin/stats", None).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        stats["data"]["last_hour"]["refusals_by_reason"]["pumping_prefix"], 20,
        "{stats}"
    );
}

#[tokio::test]
async fn the_anti_pumping_script_runs_on_redis_cluster() {
    use phoneauth::store::{PumpCounts, PumpKeys};
    let Some(url) = crate::backends::redis_cluster_url() else {
        return;
    };
    let store = crate::backends::redis_store(&url, &fresh_prefix()).await;
    let keys = PumpKeys {
        blocks: ["{pump}:block:p:86186", "{pump}:block:c:CN"],
        sent: [
            "{pump}:sent:h:p:86186",
            "{pump}:sent:d:p:86186",
            "{pump}:sent:h:c:CN",
            "{pump}:sent:d:c:CN",
        ],
        verified: [
            "{pump}:verified:h:p:86186",
            "{pump}:verified:d:p:86186",
            "{pump}:verified:h:c:CN",
            "{pump}:verified:d:c:CN",
        ],
    };
    store
        .pump_verified(keys.verified)
        .await
        .expect("verified counted on the cluster");
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            store
                .pump_send(&keys)
                .await
                .expect("one script on the cluster"),
        );
    }
    assert_eq!(
        last,
        Some(PumpCounts::Counted {
            sent: [3, 3, 3, 3],
            verified: [1, 1, 1, 1]
        })
    );
    store
        .incr_window(keys.blocks[1], Duration::from_secs(60))
        .await
        .expect("block");
    match store.pump_send(&keys).await.expect("blocked") {
        PumpCounts::Blocked { scope, remaining } => {
            assert_eq!(scope, 1);
            assert!(remaining > Duration::from_secs(50));
        }
        other => panic!("not blocked: {other:?}"),
    }
}
