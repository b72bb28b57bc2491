use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    fresh_mobile, json_of, new_captcha_id, retry_after, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn a_right_answer_sends_a_six_digit_code() {
    let app = spawn_app().await;
    let (id, answer) = app.captcha().await;
    let m = fresh_mobile();
    let v = app.sms_code(&m, &answer, &id).await;
    assert_eq!(v["errno"], "0", "{v}");
    let code = app.dev_sms(&m).await.expect("code");
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
}

#[tokio::test]
async fn the_answer_is_compared_ignoring_case() {
    let app = spawn_app().await;
    let (id, answer) = app.captcha().await;
    let v = app
        .sms_code(&fresh_mobile(), &answer.to_lowercase(), &id)
        .await;
    assert_eq!(v["errno"], "0", "{v}");
}

#[tokio::test]
async fn missing_or_malformed_parameters_are_paramerr() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let id = new_captcha_id();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("/api/v1.0/sms_codes/{m}?image_code_id={id}"),
            "no image_code",
        ),
        (
            format!("/api/v1.0/sms_codes/{m}?image_code=ABCD"),
            "no image_code_id",
        ),
        (
            format!("/api/v1.0/sms_codes/{m}?image_code=&image_code_id={id}"),
            "empty image_code",
        ),
        (format!("/api/v1.0/sms_codes/{m}"), "no parameters"),
        (
            format!("/api/v1.0/sms_codes/12345?image_code=ABCD&image_code_id={id}"),
            "short mobile",
        ),
        (
            format!("/api/v1.0/sms_codes/01012345678?image_code=ABCD&image_code_id={id}"),
            "landline",
        ),
        (
            format!("/api/v1.0/sms_codes/{m}?image_code=ABCD&image_code_id=a.b"),
            "bad id",
        ),
    ];
    for (path, why) in cases {
        let v = app.get_json(&path).await;
        assert_eq!(v["errno"], "4103", "{why}: {v}");
    }
}

#[tokio::test]
async fn an_unknown_or_expired_captcha_is_nodata() {
    let app = spawn_app().await;
    let v = app
        .sms_code(&fresh_mobile(), "ABCD", &new_captcha_id())
        .await;
    assert_eq!(v["errno"], "4002", "{v}");
}

#[tokio::test]
async fn a_wrong_answer_is_dataerr_and_burns_the_captcha() {
    let app = spawn_app().await;
    let (id, answer) = app.captcha().await;
    let wrong = if answer == "AAAA" { "CCCC" } else { "AAAA" };
    let m = fresh_mobile();
    assert_eq!(app.sms_code(&m, wrong, &id).await["errno"], "4004");
    assert_eq!(
        app.sms_code(&m, &answer, &id).await["errno"],
        "4002",
        "one captcha, one guess"
    );
    assert_eq!(app.dev_sms(&m).await, None, "no code was sent");
}

#[tokio::test]
async fn twenty_concurrent_uses_of_one_captcha_let_exactly_one_through() {
    let app = Arc::new(spawn_app().await);
    let (id, answer) = app.captcha().await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, id, answer) = (app.clone(), id.clone(), answer.clone());
            tokio::spawn(async move { app.sms_code(&fresh_mobile(), &answer, &id).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let v: Value = t.await.expect("task");
        match v["errno"].as_str() {
            Some("0") => ok += 1,
            Some("4002") => {}
            other => panic!("unexpected answer {other:?}: {v}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn a_registered_mobile_is_dataexist() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "password123").await["errno"], "0");
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&m, &answer, &id).await["errno"], "4003");
}

#[tokio::test]
async fn a_second_code_inside_the_cooldown_is_reqerr_with_retry_after() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let first = app.send_code(&m).await;
    let (id, answer) = app.captcha().await;
    let resp = app.sms_code_response(&m, &answer, &id).await;
    assert_eq!(resp.status(), 200, "limits answer 200 with the errno");
    assert_eq!(retry_after(resp.headers()), Some(60));
    assert_eq!(json_of(resp).await["errno"], "4201");

    app.clock.advance(Duration::from_secs(45));
    let (id, answer) = app.captcha().await;
    let resp = app.sms_code_response(&m, &answer, &id).await;
    assert_eq!(retry_after(resp.headers()), Some(15));

    app.clock.advance(Duration::from_secs(15));
    let second = app.send_code(&m).await;
    // The new code replaces the old one.
    let v = app.register(&m, &first, "password123").await;
    if first != second {
        assert_eq!(v["errno"], "4004", "the replaced code no longer works: {v}");
    }
    assert_eq!(app.register(&m, &second, "password123").await["errno"], "0");
}

#[tokio::test]
async fn the_daily_cap_per_mobile_is_reqerr() {
    let app = spawn_app_with(|c| c.limits.sms_per_mobile_per_day = 2).await;
    let m = fresh_mobile();
    app.send_code(&m).await;
    app.clock.advance(Duration::from_secs(61));
    app.send_code(&m).await;
    app.clock.advance(Duration::from_secs(61));
    let (id, answer) = app.captcha().await;
    let resp = app.sms_code_response(&m, &answer, &id).await;
    let after = retry_after(resp.headers()).expect("Retry-After");
    assert!(after > 86_000, "until the day's window closes: {after}");
    assert_eq!(json_of(resp).await["errno"], "4201");
}

#[tokio::test]
async fn the_hourly_cap_per_client_and_the_global_budget_are_reqerr() {
    let app = spawn_app_with(|c| c.limits.sms_sent_per_ip_per_hour = 2).await;
    app.send_code(&fresh_mobile()).await;
    app.send_code(&fresh_mobile()).await;
    let (id, answer) = app.captcha().await;
    let v = app.sms_code(&fresh_mobile(), &answer, &id).await;
    assert_eq!(v["errno"], "4201", "{v}");

    let app = spawn_app_with(|c| c.limits.sms_budget_per_day = 1).await;
    app.send_code(&fresh_mobile()).await;
    let (id, answer) = app.captcha().await;
    let m = fresh_mobile();
    assert_eq!(app.sms_code(&m, &answer, &id).await["errno"], "4201");
    assert_eq!(app.dev_sms(&m).await, None);
}

#[tokio::test]
async fn sms_code_requests_are_limited_per_client_whatever_their_outcome() {
    let app = spawn_app_with(|c| c.limits.sms_requests_per_ip_per_minute = 2).await;
    for _ in 0..2 {
        let v = app
            .sms_code(&fresh_mobile(), "ABCD", &new_captcha_id())
            .await;
        assert_eq!(v["errno"], "4002");
    }
    let (id, answer) = app.captcha().await;
    let resp = app.sms_code_response(&fresh_mobile(), &answer, &id).await;
    assert!(retry_after(resp.headers()).is_some());
    assert_eq!(json_of(resp).await["errno"], "4201");
    // Refused before the captcha was looked at: it is still there.
    assert!(app.dev_captcha(&id).await.is_some());
}

#[tokio::test]
async fn store_outage_is_dberr() {
    let app = spawn_app().await;
    let (id, answer) = app.captcha().await;
    app.store.set_down(true);
    assert_eq!(
        app.sms_code(&fresh_mobile(), &answer, &id).await["errno"],
        "4001"
    );
    app.store.set_down(false);
    assert_eq!(
        app.sms_code(&fresh_mobile(), &answer, &id).await["errno"],
        "0"
    );
}

#[tokio::test]
async fn a_database_outage_does_not_stop_codes() {
    let app = spawn_app().await;
    let (id, answer) = app.captcha().await;
    app.users.set_down(true);
    let m = fresh_mobile();
    assert_eq!(app.sms_code(&m, &answer, &id).await["errno"], "0");
    assert!(app.dev_sms(&m).await.is_some());
}

#[tokio::test]
async fn a_provider_failure_is_thirderr_and_withdraws_the_code() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let (id, answer) = app.captcha().await;
    app.sms.set_down(true);
    assert_eq!(app.sms_code(&m, &answer, &id).await["errno"], "4301");
    assert_eq!(
        app.dev_sms(&m).await,
        None,
        "the undelivered code is withdrawn"
    );
    app.sms.set_down(false);
    // No cooldown was left behind by the failed send.
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&m, &answer, &id).await["errno"], "0");
}

#[tokio::test]
async fn errmsg_is_chinese_by_default_and_english_on_request() {
    let app = spawn_app().await;
    let path = format!(
        "/api/v1.0/sms_codes/{}?image_code=ABCD&image_code_id={}",
        fresh_mobile(),
        new_captcha_id()
    );
    let zh = app.get_json(&path).await;
    assert_eq!(zh["errmsg"], "图片验证码已过期");
    let en = json_of(
        app.client
            .get(app.url(&path))
            .header("accept-language", "en-GB,en;q=0.9")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(en["errmsg"], "The captcha has expired");
}
