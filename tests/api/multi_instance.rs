//! Two phoneauth instances on one Redis and one PostgreSQL: nothing that
//! matters may live in one instance's memory.

use std::sync::Arc;

use phoneauth::config::Config;
use serde_json::Value;

use crate::backends::{
    fresh_mysql_database, fresh_pg_schema, fresh_prefix, mysql_url, postgres_url, redis_url,
    shared_secret, spawn_production,
};
use crate::helpers::{TestApp, fresh_mobile, json_of, new_captcha_id, retry_after};

/// Two instances of one deployment, or `None` when a backend is missing
/// (outside CI).
async fn pair() -> Option<(TestApp, TestApp)> {
    pair_with(|_| {}).await
}

async fn pair_with(tweak: impl Fn(&mut Config)) -> Option<(TestApp, TestApp)> {
    let redis = redis_url()?;
    let pg = fresh_pg_schema(&postgres_url()?).await;
    let (prefix, secret) = (fresh_prefix(), shared_secret());
    let a = spawn_production(&redis, &prefix, &pg, &secret, &tweak).await;
    let b = spawn_production(&redis, &prefix, &pg, &secret, &tweak).await;
    Some((a, b))
}

#[tokio::test]
async fn a_captcha_drawn_on_a_is_checked_on_b() {
    let Some((a, b)) = pair().await else { return };
    let (id, answer) = a.captcha().await;
    assert_eq!(b.dev_captcha(&id).await.as_deref(), Some(answer.as_str()));
    assert_eq!(
        b.sms_code(&fresh_mobile(), &answer, &id).await["errno"],
        "0"
    );
}

#[tokio::test]
async fn a_code_sent_via_a_registers_via_b_and_the_session_works_on_both() {
    let Some((a, b)) = pair().await else { return };
    registered_on_b_works_on_both(a, b).await;
}

#[tokio::test]
async fn on_mysql_a_code_sent_via_a_registers_via_b_and_the_session_works_on_both() {
    let (Some(redis), Some(mysql)) = (redis_url(), mysql_url()) else {
        return;
    };
    let database = fresh_mysql_database(&mysql).await;
    let (prefix, secret) = (fresh_prefix(), shared_secret());
    let a = spawn_production(&redis, &prefix, &database, &secret, |_| {}).await;
    let b = spawn_production(&redis, &prefix, &database, &secret, |_| {}).await;
    registered_on_b_works_on_both(a, b).await;
}

async fn registered_on_b_works_on_both(a: TestApp, b: TestApp) {
    let m = fresh_mobile();
    let code = a.send_code(&m).await;
    assert_eq!(b.dev_sms(&m).await.as_deref(), Some(code.as_str()));
    // b's client registers; its session cookie then also works against a
    // (cookies are per host, and both instances are 127.0.0.1).
    assert_eq!(b.register(&m, &code, "password123").await["errno"], "0");
    let on_a: Value = json_of(
        b.client
            .get(a.url("/api/v1.0/session"))
            .send()
            .await
            .expect("req"),
    )
    .await;
    assert_eq!(on_a["errmsg"], "true", "{on_a}");
    // And the number is taken for both.
    let (id, answer) = a.captcha().await;
    assert_eq!(a.sms_code(&m, &answer, &id).await["errno"], "4003");
}

#[tokio::test]
async fn a_cooldown_started_on_a_is_enforced_on_b() {
    let Some((a, b)) = pair().await else { return };
    let m = fresh_mobile();
    a.send_code(&m).await;
    let (id, answer) = b.captcha().await;
    let resp = b.sms_code_response(&m, &answer, &id).await;
    let after = retry_after(resp.headers()).expect("Retry-After");
    assert!((55..=60).contains(&after), "{after}");
    assert_eq!(json_of(resp).await["errno"], "4201");
}

#[tokio::test]
async fn fifty_concurrent_uses_of_one_captcha_over_both_instances_let_one_through() {
    // All 50 come from 127.0.0.1: lift the per-client request rate (which the
    // two instances share) so that the captcha is what decides.
    let Some((a, b)) = pair_with(|c| c.limits.sms_requests_per_ip_per_minute = 100).await else {
        return;
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (id, answer) = a.captcha().await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (id, answer) = (id.clone(), answer.clone());
            tokio::spawn(async move { app.sms_code(&fresh_mobile(), &answer, &id).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let v = t.await.expect("task");
        match v["errno"].as_str() {
            Some("0") => ok += 1,
            Some("4002") => {}
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn concurrent_registrations_of_one_mobile_over_both_instances_make_one_user() {
    let Some((a, b)) = pair().await else { return };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let m = fresh_mobile();
    let code = a.send_code(&m).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let app = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (m, code) = (m.clone(), code.clone());
            tokio::spawn(async move { app.register(&m, &code, "password123").await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let v = t.await.expect("task");
        match v["errno"].as_str() {
            Some("0") => ok += 1,
            Some("4002") | Some("4003") => {}
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(b.login(&m, "password123").await["errno"], "0");
}

#[tokio::test]
async fn the_per_client_request_rate_is_shared_by_both_instances() {
    let Some((a, b)) = pair_with(|c| c.limits.sms_requests_per_ip_per_minute = 4).await else {
        return;
    };
    for app in [&a, &b, &a, &b] {
        let v = app
            .sms_code(&fresh_mobile(), "ACEF", &new_captcha_id())
            .await;
        assert_eq!(v["errno"], "4002");
    }
    let v = b.sms_code(&fresh_mobile(), "ACEF", &new_captcha_id()).await;
    assert_eq!(
        v["errno"], "4201",
        "the fifth request of the minute, on either instance"
    );
}

#[tokio::test]
async fn a_wrong_captcha_answer_on_a_burns_it_for_b() {
    let Some((a, b)) = pair().await else { return };
    let (id, answer) = a.captcha().await;
    let wrong = if answer == "AAAA" { "CCCC" } else { "AAAA" };
    assert_eq!(
        a.sms_code(&fresh_mobile(), wrong, &id).await["errno"],
        "4004"
    );
    assert_eq!(
        b.sms_code(&fresh_mobile(), &answer, &id).await["errno"],
        "4002"
    );
}

#[tokio::test]
async fn instances_without_a_configured_secret_agree_on_the_one_kept_in_postgres() {
    let Some(redis) = redis_url() else { return };
    let Some(base) = postgres_url() else { return };
    let pg = fresh_pg_schema(&base).await;
    let prefix = fresh_prefix();
    // Started together, so both race to create the secret.
    let (a, b) = tokio::join!(
        spawn_production(&redis, &prefix, &pg, "", |_| {}),
        spawn_production(&redis, &prefix, &pg, "", |_| {})
    );
    let (id, answer) = a.captcha().await;
    assert_eq!(
        b.sms_code(&fresh_mobile(), &answer, &id).await["errno"],
        "0"
    );
    let m = fresh_mobile();
    let code = b.send_code(&m).await;
    assert_eq!(a.register(&m, &code, "password123").await["errno"], "0");
}
