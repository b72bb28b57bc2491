use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{fresh_mobile, spawn_app};

#[tokio::test]
async fn a_right_code_registers_and_logs_in() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let v = app.sign_up(&m, "password123").await;
    assert_eq!(v, json!({ "errno": "0", "errmsg": "注册成功" }));
    let s = app.session().await;
    assert_eq!(s["errmsg"], "true");
    assert_eq!(s["data"]["name"], m.as_str());
}

#[tokio::test]
async fn missing_and_malformed_fields_are_paramerr() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let cases = [
        json!({ "sms_code": "123456", "password": "password123" }),
        json!({ "mobile": m, "password": "password123" }),
        json!({ "mobile": m, "sms_code": "123456" }),
        json!({ "mobile": "1380013800", "sms_code": "123456", "password": "password123" }),
        json!({ "mobile": m, "sms_code": "123456", "password": "password123", "password2": "password124" }),
        json!({ "mobile": m, "sms_code": "123456", "password": "short" }),
        json!({ "mobile": m, "sms_code": "123456", "password": "x".repeat(129) }),
        json!({ "mobile": m, "sms_code": "12345", "password": "password123" }),
        json!({ "mobile": m, "sms_code": "", "password": "password123" }),
    ];
    for body in cases {
        let v = app.post_json("/api/v1.0/users", &body).await;
        assert_eq!(v["errno"], "4103", "{body}: {v}");
    }
}

#[tokio::test]
async fn no_code_is_nodata_and_a_wrong_code_is_dataerr() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    assert_eq!(
        app.register(&m, "123456", "password123").await["errno"],
        "4002"
    );
    let code = app.send_code(&m).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        app.register(&m, wrong, "password123").await["errno"],
        "4004"
    );
    assert_eq!(app.register(&m, &code, "password123").await["errno"], "0");
}

#[tokio::test]
async fn the_fifth_wrong_guess_withdraws_the_code() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(
            app.register(&m, wrong, "password123").await["errno"],
            "4004"
        );
    }
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4002"
    );
}

#[tokio::test]
async fn four_wrong_guesses_still_leave_the_right_code_usable() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        app.register(&m, wrong, "password123").await;
    }
    assert_eq!(app.register(&m, &code, "password123").await["errno"], "0");
}

#[tokio::test]
async fn a_code_expires_after_300_seconds() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    app.clock.advance(Duration::from_secs(300));
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4002"
    );
}

#[tokio::test]
async fn a_code_is_single_use() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    assert_eq!(app.register(&m, &code, "password123").await["errno"], "0");
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4002"
    );
}

#[tokio::test]
async fn ten_concurrent_registrations_with_one_code_create_exactly_one_user() {
    let app = Arc::new(spawn_app().await);
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (app, m, code) = (app.clone(), m.clone(), code.clone());
            tokio::spawn(async move { app.register(&m, &code, "password123").await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let v: Value = t.await.expect("task");
        match v["errno"].as_str() {
            Some("0") => ok += 1,
            Some("4002") => {}
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(app.login(&m, "password123").await["errno"], "0");
}

#[tokio::test]
async fn national_plus86_and_0086_forms_are_one_user() {
    let app = spawn_app().await;
    let national = fresh_mobile();
    let plus = format!(
        "+86 {} {} {}",
        &national[..3],
        &national[3..7],
        &national[7..]
    );
    let zeros = format!("0086{national}");
    let code = app.send_code(&plus).await;
    assert_eq!(app.dev_sms(&national).await.as_deref(), Some(code.as_str()));
    assert_eq!(
        app.register(&zeros, &code, "password123").await["errno"],
        "0"
    );
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&national, &answer, &id).await["errno"], "4003");
    assert_eq!(app.login(&national, "password123").await["errno"], "0");
    assert_eq!(app.user().await["data"]["mobile"], national.as_str());
}

#[tokio::test]
async fn a_taken_mobile_is_dataexist_at_registration_too() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "password123").await["errno"], "0");
    // With the database briefly down, the send step cannot see the user
    // (SPEC §3 step 4 goes on); registration must still catch it.
    let (id, answer) = app.captcha().await;
    app.users.set_down(true);
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(app.sms_code(&m, &answer, &id).await["errno"], "0");
    app.users.set_down(false);
    let code = app.dev_sms(&m).await.expect("code");
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4003"
    );
}

#[tokio::test]
async fn database_and_store_outages_are_dberr() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    app.store.set_down(true);
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4001"
    );
    app.store.set_down(false);
    app.users.set_down(true);
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4001"
    );
    app.users.set_down(false);
}

#[tokio::test]
async fn a_password_of_multibyte_characters_is_counted_in_characters() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    // Eight characters, 24 bytes.
    assert_eq!(
        app.register(&m, &code, "密码密码密码密码").await["errno"],
        "0"
    );
    app.logout().await;
    assert_eq!(app.login(&m, "密码密码密码密码").await["errno"], "0");
}
