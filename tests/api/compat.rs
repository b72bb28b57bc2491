//! The opt-in route sets of SPEC §4: same core, same limits, other wire shapes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_mobile, json_of, new_captcha_id, retry_after, spawn_app_with};

async fn with_sets(sets: &[&str]) -> TestApp {
    let sets = sets
        .iter()
        .map(|s| s.parse().expect("a route set"))
        .collect();
    spawn_app_with(move |c| c.compat.routes = phoneauth::config::List(sets)).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    app.post_json(path, &body).await
}

// ---- passport ------------------------------------------------------------------

#[tokio::test]
async fn passport_signs_up_logs_out_and_in_end_to_end() {
    let app = with_sets(&["passport"]).await;
    let m = fresh_mobile();
    let id = new_captcha_id();
    let resp = app.get(&format!("/passport/image_code?code_id={id}")).await;
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let answer = app.dev_captcha(&id).await.expect("answer");
    let v = post(
        &app,
        "/passport/sms_code",
        json!({ "mobile": m, "image_code": answer, "image_code_id": id }),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    let code = app.dev_sms(&m).await.expect("code");
    let v = post(
        &app,
        "/passport/register",
        json!({ "mobile": m, "smscode": code, "password": "password123" }),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    assert_eq!(
        app.session().await["errmsg"],
        "true",
        "registration logs in"
    );
    let v = post(&app, "/passport/logout", json!({})).await;
    assert_eq!(v["errno"], "0");
    assert_eq!(app.session().await["errmsg"], "false");
    let v = post(
        &app,
        "/passport/login",
        json!({ "mobile": m, "password": "password123" }),
    )
    .await;
    assert_eq!(v["errno"], "0");
    assert_eq!(
        app.get_json("/passport/logout").await["errno"],
        "0",
        "GET logout too"
    );
    assert_eq!(app.session().await["errmsg"], "false");
}

#[tokio::test]
async fn passport_accepts_image_code_id_and_sms_code_spellings_and_drops_the_previous_captcha() {
    let app = with_sets(&["passport"]).await;
    let first = new_captcha_id();
    app.get(&format!("/passport/image_code?imageCodeId={first}"))
        .await;
    assert!(app.dev_captcha(&first).await.is_some());
    let second = new_captcha_id();
    app.get(&format!(
        "/passport/image_code?code_id={second}&pre_code_id={first}"
    ))
    .await;
    assert!(app.dev_captcha(&second).await.is_some());
    let m = fresh_mobile();
    let stale = post(
        &app,
        "/passport/sms_code",
        json!({ "mobile": m, "image_code": "ACEF", "image_code_id": first }),
    )
    .await;
    assert_eq!(
        stale["errno"], "4002",
        "the replaced captcha is gone: {stale}"
    );
    let code = app.send_code(&m).await;
    let v = post(
        &app,
        "/passport/register",
        json!({ "mobile": m, "sms_code": code, "password": "password123" }),
    )
    .await;
    assert_eq!(v["errno"], "0");
}

#[tokio::test]
async fn passport_failures_answer_the_originals_errnos() {
    let app = with_sets(&["passport"]).await;
    let m = fresh_mobile();
    let (id, answer) = app.captcha().await;
    let wrong = if answer == "AAAA" { "CCCC" } else { "AAAA" };
    let v = post(
        &app,
        "/passport/sms_code",
        json!({ "mobile": m, "image_code": wrong, "image_code_id": id }),
    )
    .await;
    assert_eq!(v["errno"], "4004");
    let v = post(
        &app,
        "/passport/sms_code",
        json!({ "image_code": "ACEF", "image_code_id": id }),
    )
    .await;
    assert_eq!(v["errno"], "4103");
    let v = post(
        &app,
        "/passport/register",
        json!({ "mobile": m, "smscode": "123456", "password": "password123" }),
    )
    .await;
    assert_eq!(v["errno"], "4002");
    let v = post(
        &app,
        "/passport/login",
        json!({ "mobile": m, "password": "password123" }),
    )
    .await;
    assert_eq!(v["errno"], "4004");
    assert_eq!(
        app.get("/passport/image_code?code_id=a.b").await.status(),
        400
    );
}

// ---- validate ------------------------------------------------------------------

#[tokio::test]
async fn validate_issues_a_captcha_by_uuid_and_sends_a_code() {
    let app = with_sets(&["validate"]).await;
    let uuid = "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b";
    let resp = app.get(&format!("/image_code/?uuid={uuid}")).await;
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let answer = app.dev_captcha(uuid).await.expect("answer");
    let m = fresh_mobile();
    let v = post(
        &app,
        "/sms_code",
        json!({ "mobile": m, "image_code": answer, "uuid": uuid }),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    assert!(app.dev_sms(&m).await.is_some());
    let v = post(
        &app,
        "/sms_code",
        json!({ "mobile": m, "image_code": answer, "uuid": uuid }),
    )
    .await;
    assert_eq!(v["errno"], "4002", "the captcha was used");
}

// ---- steps ---------------------------------------------------------------------

async fn steps(app: &TestApp, step: u8, body: Value) -> Value {
    post(app, &format!("/register-step-{step}"), body).await
}

#[tokio::test]
async fn the_four_steps_register_then_login_returns_a_token_for_user_and_logout() {
    let app = with_sets(&["steps"]).await;
    let m = fresh_mobile();
    assert_eq!(
        steps(&app, 1, json!({ "phone_number": m })).await["code"],
        1
    );
    let code = app.dev_sms(&m).await.expect("code");
    assert_eq!(
        steps(
            &app,
            2,
            json!({ "phone_number": m, "validate_number": code })
        )
        .await["code"],
        1
    );
    let v = steps(
        &app,
        3,
        json!({ "phone_number": m, "password": "password123", "password_confirm": "password123" }),
    )
    .await;
    assert_eq!(v["code"], 1, "{v}");
    let v = steps(&app, 4, json!({ "phone_number": m, "nickname": "小明" })).await;
    assert_eq!(v["code"], 1, "{v}");
    assert_eq!(v["data"]["name"], "小明");

    let v = post(
        &app,
        "/login",
        json!({ "phone_number": m, "password": "password123" }),
    )
    .await;
    assert_eq!(v["code"], 1);
    let token = v["token"].as_str().expect("token").to_owned();
    let user = |t: String| {
        let app = &app;
        async move {
            json_of(
                app.client
                    .get(app.url("/user"))
                    .header("token", t)
                    .send()
                    .await
                    .expect("req"),
            )
            .await
        }
    };
    let u = user(token.clone()).await;
    assert_eq!(u["code"], 1);
    assert_eq!(u["data"]["mobile"], m.as_str());
    let out = json_of(
        app.client
            .get(app.url("/logout"))
            .header("token", &token)
            .send()
            .await
            .expect("req"),
    )
    .await;
    assert_eq!(out["code"], 1);
    assert_eq!(user(token).await["code"], 0);
}

#[tokio::test]
async fn steps_out_of_order_are_refused_with_a_clear_message() {
    let app = with_sets(&["steps"]).await;
    let m = fresh_mobile();
    let v = steps(
        &app,
        3,
        json!({ "phone_number": m, "password": "password123", "password_confirm": "password123" }),
    )
    .await;
    assert_eq!(v["code"], 0);
    assert!(
        v["message"].as_str().expect("message").contains("第二步"),
        "{v}"
    );
    let v = steps(&app, 4, json!({ "phone_number": m })).await;
    assert_eq!(v["code"], 0);

    steps(&app, 1, json!({ "phone_number": m })).await;
    let code = app.dev_sms(&m).await.expect("code");
    steps(
        &app,
        2,
        json!({ "phone_number": m, "validate_number": code }),
    )
    .await;
    let v = steps(&app, 4, json!({ "phone_number": m })).await;
    assert_eq!(v["code"], 0);
    assert!(
        v["message"].as_str().expect("message").contains("第三步"),
        "{v}"
    );
    let v = steps(
        &app,
        3,
        json!({ "phone_number": m, "password": "password123", "password_confirm": "password124" }),
    )
    .await;
    assert_eq!(v["code"], 0, "confirmation differs");
}

#[tokio::test]
async fn pending_steps_expire_after_120_seconds() {
    let app = with_sets(&["steps"]).await;
    let m = fresh_mobile();
    steps(&app, 1, json!({ "phone_number": m })).await;
    let code = app.dev_sms(&m).await.expect("code");
    steps(
        &app,
        2,
        json!({ "phone_number": m, "validate_number": code }),
    )
    .await;
    app.clock.advance(Duration::from_secs(120));
    let v = steps(
        &app,
        3,
        json!({ "phone_number": m, "password": "password123", "password_confirm": "password123" }),
    )
    .await;
    assert_eq!(v["code"], 0, "verification expired");
}

#[tokio::test]
async fn a_verification_belongs_to_the_client_that_made_it() {
    let app = spawn_app_with(|c| {
        c.compat.routes = phoneauth::config::List(vec![phoneauth::config::RouteSet::Steps]);
        c.server.trusted_proxies = serde_json::from_value(json!(["127.0.0.1"])).expect("cidr");
    })
    .await;
    let m = fresh_mobile();
    let from = |ip: &'static str, path: &str, body: Value| {
        let req = app
            .client
            .post(app.url(path))
            .header("x-forwarded-for", ip)
            .json(&body);
        async move { json_of(req.send().await.expect("req")).await }
    };
    from(
        "198.51.100.1",
        "/register-step-1",
        json!({ "phone_number": m }),
    )
    .await;
    let code = app.dev_sms(&m).await.expect("code");
    from(
        "198.51.100.1",
        "/register-step-2",
        json!({ "phone_number": m, "validate_number": code }),
    )
    .await;
    let body =
        json!({ "phone_number": m, "password": "password123", "password_confirm": "password123" });
    assert_eq!(
        from("203.0.113.9", "/register-step-3", body.clone()).await["code"],
        0,
        "another client"
    );
    assert_eq!(
        from("198.51.100.1", "/register-step-3", body).await["code"],
        1
    );
}

#[tokio::test]
async fn steps_can_require_a_captcha() {
    let app = spawn_app_with(|c| {
        c.compat.routes = phoneauth::config::List(vec![phoneauth::config::RouteSet::Steps]);
        c.compat.steps_require_captcha = true;
    })
    .await;
    let m = fresh_mobile();
    assert_eq!(
        steps(&app, 1, json!({ "phone_number": m })).await["code"],
        0
    );
    let (id, answer) = app.captcha().await;
    let v = steps(
        &app,
        1,
        json!({ "phone_number": m, "image_code": answer, "image_code_id": id }),
    )
    .await;
    assert_eq!(v["code"], 1, "{v}");
}

// ---- shared limits and route selection --------------------------------------------

#[tokio::test]
async fn a_cooldown_started_through_one_set_applies_through_the_others() {
    let app = with_sets(&["passport", "validate", "steps"]).await;
    let m = fresh_mobile();
    let (id, answer) = app.captcha().await;
    let v = post(
        &app,
        "/passport/sms_code",
        json!({ "mobile": m, "image_code": answer, "image_code_id": id }),
    )
    .await;
    assert_eq!(v["errno"], "0");
    let resp = app
        .client
        .post(app.url("/register-step-1"))
        .json(&json!({ "phone_number": m }))
        .send()
        .await
        .expect("req");
    assert!(retry_after(resp.headers()).is_some());
    assert_eq!(json_of(resp).await["code"], 0);
    let (id, answer) = app.captcha().await;
    assert_eq!(app.sms_code(&m, &answer, &id).await["errno"], "4201");
    let (id, answer) = app.captcha().await;
    let v = post(
        &app,
        "/sms_code",
        json!({ "mobile": m, "image_code": answer, "uuid": id }),
    )
    .await;
    assert_eq!(v["errno"], "4201");
}

#[tokio::test]
async fn route_sets_not_listed_answer_404() {
    let app = with_sets(&[]).await;
    for path in ["/passport/login", "/register-step-1", "/sms_code", "/login"] {
        let resp = app
            .client
            .post(app.url(path))
            .json(&json!({}))
            .send()
            .await
            .expect("req");
        assert_eq!(resp.status(), 404, "{path}");
    }
    assert_eq!(
        app.get("/passport/image_code?code_id=abc").await.status(),
        404
    );
    // The canonical set is always on.
    assert_eq!(app.image_code(&new_captcha_id()).await.status(), 200);
}

// ---- the wire shapes, pinned ---------------------------------------------------------

#[tokio::test]
async fn envelope_shapes_are_pinned() {
    let app = with_sets(&["passport", "steps"]).await;
    let m = fresh_mobile();
    let errno_err = post(&app, "/passport/login", json!({ "mobile": m })).await;
    insta::assert_json_snapshot!("errno_paramerr", errno_err);
    let steps_err = steps(&app, 4, json!({ "phone_number": m })).await;
    insta::assert_json_snapshot!("steps_out_of_order", steps_err);
    let steps_ok = steps(&app, 1, json!({ "phone_number": m })).await;
    insta::assert_json_snapshot!("steps_sent", steps_ok);
    let code = app.dev_sms(&m).await.expect("code");
    let errno_ok = post(
        &app,
        "/passport/register",
        json!({ "mobile": m, "smscode": code, "password": "password123" }),
    )
    .await;
    insta::assert_json_snapshot!("errno_registered", errno_ok);
    let login = post(
        &app,
        "/login",
        json!({ "phone_number": m, "password": "password123" }),
    )
    .await;
    insta::assert_json_snapshot!("steps_login", login, { ".token" => "[token]" });
    let session = app.session().await;
    insta::assert_json_snapshot!("ihome_session", session, { ".data.user_id" => "[id]", ".data.name" => "[mobile]" });
}
