//! SPEC §9, black-box: codes with a purpose, sign in by code, reset,
//! password and mobile change, the session list, deletion, the profile,
//! avatar and identity of the iHome account pages, and the
//! enumeration-safe mode. Each test drives the real HTTP API.

use std::time::Duration;

use reqwest::{Client, Method};
use serde_json::{Value, json};

use crate::backends::{
    fresh_mysql_database, fresh_pg_schema, fresh_prefix, mysql_url, postgres_url, redis_url,
    shared_secret, spawn_production,
};
use crate::helpers::{TestApp, client, fresh_mobile, json_of, spawn_app, spawn_app_with};

const PW: &str = "correct horse";

/// One request with `c`'s cookies; the JSON envelope of the answer.
async fn call(app: &TestApp, c: &Client, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = c.request(method, app.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    json_of(req.send().await.expect("request")).await
}

/// Sends a code of `purpose` to `mobile` as `c`; the answer.
async fn request_code(app: &TestApp, c: &Client, mobile: &str, purpose: &str) -> Value {
    let (id, answer) = app.captcha().await;
    let body =
        json!({ "mobile": mobile, "purpose": purpose, "image_code": answer, "image_code_id": id });
    call(app, c, Method::POST, "/api/v1.0/sms_codes", Some(body)).await
}

/// A code of `purpose` sent to `mobile` (after the cooldown of any earlier one).
async fn code_for(app: &TestApp, c: &Client, mobile: &str, purpose: &str) -> String {
    app.clock.advance(Duration::from_secs(61));
    let v = request_code(app, c, mobile, purpose).await;
    assert_eq!(v["errno"], "0", "{purpose} code for {mobile}: {v}");
    app.dev_sms(mobile).await.expect("code exposed")
}

/// A registered user logged in on a client of its own.
async fn member(app: &TestApp) -> (String, Client) {
    let m = fresh_mobile();
    let c = client();
    let code = app.send_code(&m).await;
    let body = json!({ "mobile": m, "sms_code": code, "password": PW });
    let v = call(app, &c, Method::POST, "/api/v1.0/users", Some(body)).await;
    assert_eq!(v["errno"], "0", "{v}");
    (m, c)
}

/// Another logged-in client of the same user.
async fn second_login(app: &TestApp, mobile: &str, password: &str) -> Client {
    let c = client();
    let body = json!({ "mobile": mobile, "password": password });
    let v = call(app, &c, Method::POST, "/api/v1.0/sessions", Some(body)).await;
    assert_eq!(v["errno"], "0", "{v}");
    c
}

async fn logged_in(app: &TestApp, c: &Client) -> bool {
    call(app, c, Method::GET, "/api/v1.0/session", None).await["errno"] == "0"
}

async fn password_works(app: &TestApp, mobile: &str, password: &str) -> bool {
    let body = json!({ "mobile": mobile, "password": password });
    call(
        app,
        &client(),
        Method::POST,
        "/api/v1.0/sessions",
        Some(body),
    )
    .await["errno"]
        == "0"
}

async fn code_login(app: &TestApp, c: &Client, mobile: &str, code: &str) -> Value {
    let body = json!({ "mobile": mobile, "sms_code": code });
    call(app, c, Method::POST, "/api/v1.0/sessions/sms", Some(body)).await
}

#[tokio::test]
async fn a_code_verifies_only_for_its_purpose_and_purposes_share_the_limits() {
    let app = spawn_app().await;
    let (m, c) = member(&app).await;
    let v = request_code(&app, &c, &m, "teleport").await;
    assert_eq!(v["errno"], "4103", "unknown purpose: {v}");
    let v = request_code(&app, &c, &m, "").await;
    assert_eq!(v["errno"], "4103", "missing purpose: {v}");
    let login = code_for(&app, &c, &m, "login").await;
    // Switching purpose buys no extra send within the cooldown.
    let v = request_code(&app, &c, &m, "reset").await;
    assert_eq!(v["errno"], "4201", "{v}");
    // A login code is no reset code…
    let body = json!({ "mobile": m, "sms_code": login, "password": "a new password" });
    let v = call(
        &app,
        &c,
        Method::POST,
        "/api/v1.0/password/reset",
        Some(body),
    )
    .await;
    assert_eq!(v["errno"], "4002", "{v}");
    assert!(password_works(&app, &m, PW).await);
    // …and still signs in, once.
    let other = client();
    assert_eq!(code_login(&app, &other, &m, &login).await["errno"], "0");
    assert_eq!(code_login(&app, &other, &m, &login).await["errno"], "4002");
    // A code of a new purpose withdraws the earlier one: one live code per number.
    let reset = code_for(&app, &c, &m, "reset").await;
    let login2 = code_for(&app, &c, &m, "login").await;
    let body = json!({ "mobile": m, "sms_code": reset, "password": "a new password" });
    let v = call(
        &app,
        &c,
        Method::POST,
        "/api/v1.0/password/reset",
        Some(body),
    )
    .await;
    assert_eq!(v["errno"], "4002", "the reset code was replaced: {v}");
    assert_eq!(code_login(&app, &client(), &m, &login2).await["errno"], "0");
}

#[tokio::test]
async fn login_and_reset_codes_need_an_account_and_register_codes_a_free_number() {
    let app = spawn_app().await;
    let (m, c) = member(&app).await;
    let stranger = fresh_mobile();
    assert_eq!(
        request_code(&app, &c, &stranger, "login").await["errno"],
        "4104"
    );
    assert_eq!(
        request_code(&app, &c, &stranger, "reset").await["errno"],
        "4104"
    );
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(
        request_code(&app, &c, &m, "register").await["errno"],
        "4003"
    );
    // Purposes that need a session.
    let anon = client();
    assert_eq!(
        request_code(&app, &anon, &stranger, "change_mobile").await["errno"],
        "4101"
    );
    assert_eq!(
        request_code(&app, &anon, &m, "confirm").await["errno"],
        "4101"
    );
    assert_eq!(
        request_code(&app, &c, &m, "change_mobile").await["errno"],
        "4003"
    );
}

#[tokio::test]
async fn signing_in_by_code_starts_a_session_and_clears_failed_logins() {
    let app = spawn_app().await;
    let (m, _) = member(&app).await;
    for _ in 0..5 {
        assert_eq!(app.login(&m, "wrong password").await["errno"], "4004");
    }
    assert_eq!(app.login(&m, PW).await["errno"], "4201", "locked out");
    let c = client();
    let code = code_for(&app, &c, &m, "login").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(code_login(&app, &c, &m, wrong).await["errno"], "4004");
    let v = code_login(&app, &c, &m, &code).await;
    assert_eq!(v["errno"], "0", "{v}");
    assert_eq!(v["data"]["created"], false);
    assert!(v["data"]["user_id"].as_i64().is_some());
    assert!(logged_in(&app, &c).await);
    // The owner proved the number: the lockout is over.
    assert!(password_works(&app, &m, PW).await);
}

#[tokio::test]
async fn with_sign_up_by_code_a_login_code_creates_the_account() {
    let app = spawn_app_with(|c| c.accounts.sign_up_by_code = true).await;
    let m = fresh_mobile();
    let c = client();
    let code = code_for(&app, &c, &m, "login").await;
    let v = code_login(&app, &c, &m, &code).await;
    assert_eq!(v["errno"], "0", "{v}");
    assert_eq!(v["data"]["created"], true);
    let user = call(&app, &c, Method::GET, "/api/v1.0/user", None).await;
    assert_eq!(user["data"]["mobile"], m.as_str());
    // No password was set: none works.
    assert!(!password_works(&app, &m, "").await);
    assert!(!password_works(&app, &m, "!").await);
}

#[tokio::test]
async fn a_reset_sets_the_password_ends_every_session_and_starts_a_new_one() {
    let app = spawn_app().await;
    let (m, first) = member(&app).await;
    let second = second_login(&app, &m, PW).await;
    let c = client();
    let code = code_for(&app, &c, &m, "reset").await;
    let body = json!({ "mobile": m, "sms_code": code, "password": "a new password", "password2": "a new password" });
    // Two resets with one code at once: exactly one wins.
    let rival = client();
    let (a, b) = tokio::join!(
        call(
            &app,
            &c,
            Method::POST,
            "/api/v1.0/password/reset",
            Some(body.clone())
        ),
        call(
            &app,
            &rival,
            Method::POST,
            "/api/v1.0/password/reset",
            Some(body.clone())
        ),
    );
    let oks = [&a, &b].iter().filter(|v| v["errno"] == "0").count();
    assert_eq!(oks, 1, "{a} {b}");
    assert!(!logged_in(&app, &first).await);
    assert!(!logged_in(&app, &second).await);
    assert!(password_works(&app, &m, "a new password").await);
    assert!(!password_works(&app, &m, PW).await);
    // The winner is logged in.
    let winner = if a["errno"] == "0" { &c } else { &rival };
    assert!(logged_in(&app, winner).await);
    // A used code resets nothing more.
    let v = call(
        &app,
        &c,
        Method::POST,
        "/api/v1.0/password/reset",
        Some(body),
    )
    .await;
    assert_eq!(v["errno"], "4002");
}

#[tokio::test]
async fn changing_the_password_needs_the_old_one_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let (m, c) = member(&app).await;
    let other = second_login(&app, &m, PW).await;
    let body = json!({ "old_password": "not it", "password": "a new password" });
    let v = call(&app, &c, Method::PUT, "/api/v1.0/user/password", Some(body)).await;
    assert_eq!(v["errno"], "4004", "{v}");
    let body =
        json!({ "old_password": PW, "password": "a new password", "password2": "different" });
    let v = call(&app, &c, Method::PUT, "/api/v1.0/user/password", Some(body)).await;
    assert_eq!(v["errno"], "4103", "{v}");
    let body =
        json!({ "old_password": PW, "password": "a new password", "password2": "a new password" });
    let v = call(
        &app,
        &c,
        Method::PUT,
        "/api/v1.0/user/password",
        Some(body.clone()),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    assert!(logged_in(&app, &c).await, "this session stays");
    assert!(!logged_in(&app, &other).await, "the others end");
    assert!(password_works(&app, &m, "a new password").await);
    let anon = client();
    let v = call(
        &app,
        &anon,
        Method::PUT,
        "/api/v1.0/user/password",
        Some(body),
    )
    .await;
    assert_eq!(v["errno"], "4101");
}

#[tokio::test]
async fn the_mobile_moves_with_the_password_or_a_confirm_code() {
    let app = spawn_app().await;
    let (m, c) = member(&app).await;
    let other = second_login(&app, &m, PW).await;
    let new = fresh_mobile();
    let code = code_for(&app, &c, &new, "change_mobile").await;
    let body = json!({ "mobile": new, "sms_code": code, "old_password": "not it" });
    let v = call(&app, &c, Method::PUT, "/api/v1.0/user/mobile", Some(body)).await;
    assert_eq!(v["errno"], "4004", "{v}");
    let body = json!({ "mobile": new, "sms_code": code });
    let v = call(&app, &c, Method::PUT, "/api/v1.0/user/mobile", Some(body)).await;
    assert_eq!(v["errno"], "4103", "no proof: {v}");
    let body = json!({ "mobile": new, "sms_code": code, "old_password": PW });
    let v = call(&app, &c, Method::PUT, "/api/v1.0/user/mobile", Some(body)).await;
    assert_eq!(v["errno"], "0", "{v}");
    assert_eq!(v["data"]["mobile"], new.as_str());
    assert!(!logged_in(&app, &other).await);
    assert!(password_works(&app, &new, PW).await);
    assert!(!password_works(&app, &m, PW).await);
    // The old number is free again.
    let code = app.send_code(&m).await;
    assert_eq!(app.register(&m, &code, PW).await["errno"], "0");

    // Again, proven by a confirm code sent to the current number.
    let newer = fresh_mobile();
    app.clock.advance(Duration::from_secs(61));
    let v = request_code(&app, &c, "", "confirm").await;
    assert_eq!(v["errno"], "0", "{v}");
    let confirm = app.dev_sms(&new).await.expect("sent to the current number");
    let code = code_for(&app, &c, &newer, "change_mobile").await;
    let body = json!({ "mobile": newer, "sms_code": code, "confirm_code": confirm });
    let v = call(&app, &c, Method::PUT, "/api/v1.0/user/mobile", Some(body)).await;
    assert_eq!(v["errno"], "0", "{v}");
    let user = call(&app, &c, Method::GET, "/api/v1.0/user", None).await;
    assert_eq!(user["data"]["mobile"], newer.as_str());
    // The confirm code was consumed with the change.
    let again = json!({ "confirm_code": confirm });
    let v = call(&app, &c, Method::DELETE, "/api/v1.0/user", Some(again)).await;
    assert_eq!(v["errno"], "4002", "{v}");
}

#[tokio::test]
async fn sessions_are_listed_newest_first_and_end_one_others_or_all() {
    let app = spawn_app().await;
    let (m, c) = member(&app).await;
    app.clock.advance(Duration::from_secs(2));
    let b = second_login(&app, &m, PW).await;
    app.clock.advance(Duration::from_secs(2));
    let d = second_login(&app, &m, PW).await;
    let v = call(&app, &c, Method::GET, "/api/v1.0/user/sessions", None).await;
    assert_eq!(v["errno"], "0", "{v}");
    let list = v["data"]["sessions"].as_array().expect("sessions").clone();
    assert_eq!(list.len(), 3, "{v}");
    assert_eq!(list[2]["current"], true, "the oldest is this one: {v}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    for s in &list {
        assert_eq!(s["ip"], "127.0.0.0/24", "masked: {s}");
        let id = s["id"].as_str().expect("id");
        assert_eq!(id.len(), 32);
        assert!(s["created"].as_str().is_some_and(|t| t.contains('T')));
    }
    assert!(list[0]["created"].as_str() > list[2]["created"].as_str());
    // The handle is not the cookie.
    let newest = list[0]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1.0/user/sessions/{newest}");
    assert_eq!(
        call(&app, &c, Method::DELETE, &path, None).await["errno"],
        "0"
    );
    assert!(!logged_in(&app, &d).await);
    assert!(logged_in(&app, &b).await);
    assert_eq!(
        call(&app, &c, Method::DELETE, &path, None).await["errno"],
        "4002"
    );
    let bad = call(
        &app,
        &c,
        Method::DELETE,
        "/api/v1.0/user/sessions/not-a-handle",
        None,
    )
    .await;
    assert_eq!(bad["errno"], "4103");
    // Another user cannot end these.
    let (_, stranger) = member(&app).await;
    let mid = list[1]["id"].as_str().expect("id");
    let v = call(
        &app,
        &stranger,
        Method::DELETE,
        &format!("/api/v1.0/user/sessions/{mid}"),
        None,
    )
    .await;
    assert_eq!(v["errno"], "4002");
    assert!(logged_in(&app, &b).await);
    // All the others, then all.
    assert_eq!(
        call(&app, &c, Method::DELETE, "/api/v1.0/user/sessions", None).await["errno"],
        "0"
    );
    assert!(!logged_in(&app, &b).await);
    assert!(logged_in(&app, &c).await);
    let v = call(
        &app,
        &c,
        Method::DELETE,
        "/api/v1.0/user/sessions?all=true",
        None,
    )
    .await;
    assert_eq!(v["errno"], "0");
    assert!(!logged_in(&app, &c).await);
}

#[tokio::test]
async fn a_session_ended_on_one_instance_is_dead_on_the_other_at_once() {
    let (Some(redis), Some(pg)) = (redis_url(), postgres_url()) else {
        return;
    };
    sessions_end_across_instances(&redis, &fresh_pg_schema(&pg).await).await;
}

#[tokio::test]
async fn on_mysql_a_session_ended_on_one_instance_is_dead_on_the_other_at_once() {
    let (Some(redis), Some(mysql)) = (redis_url(), mysql_url()) else {
        return;
    };
    sessions_end_across_instances(&redis, &fresh_mysql_database(&mysql).await).await;
}

/// Two instances on Redis and `database`: sessions, their ending and a
/// reset seen from both.
async fn sessions_end_across_instances(redis: &str, database: &str) {
    let (prefix, secret) = (fresh_prefix(), shared_secret());
    // Redis keeps its own clock: a short cooldown, waited out for real.
    let short = |c: &mut phoneauth::config::Config| c.limits.sms_cooldown_secs = 1;
    let one = spawn_production(redis, &prefix, database, &secret, short).await;
    let two = spawn_production(redis, &prefix, database, &secret, short).await;
    let (m, c) = member(&one).await;
    let elsewhere = second_login(&two, &m, PW).await;
    assert!(
        logged_in(&one, &elsewhere).await,
        "a session is valid on both"
    );
    let v = call(&two, &c, Method::GET, "/api/v1.0/user/sessions", None).await;
    let theirs = v["data"]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/v1.0/user/sessions/{theirs}");
    assert_eq!(
        call(&one, &c, Method::DELETE, &path, None).await["errno"],
        "0"
    );
    assert!(!logged_in(&two, &elsewhere).await);
    assert!(!logged_in(&one, &elsewhere).await);
    // A reset on one instance ends every session on the other.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let code = code_for(&two, &client(), &m, "reset").await;
    let body = json!({ "mobile": m, "sms_code": code, "password": "a new password" });
    let v = call(
        &one,
        &client(),
        Method::POST,
        "/api/v1.0/password/reset",
        Some(body),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    assert!(!logged_in(&two, &c).await);
}

#[tokio::test]
async fn deleting_the_account_needs_proof_and_frees_the_number() {
    let app = spawn_app().await;
    let (m, c) = member(&app).await;
    let other = second_login(&app, &m, PW).await;
    let v = call(
        &app,
        &c,
        Method::DELETE,
        "/api/v1.0/user",
        Some(json!({ "password": "nope" })),
    )
    .await;
    assert_eq!(v["errno"], "4004");
    let v = call(&app, &c, Method::DELETE, "/api/v1.0/user", Some(json!({}))).await;
    assert_eq!(v["errno"], "4103");
    assert!(logged_in(&app, &c).await, "nothing was deleted");
    let v = call(
        &app,
        &c,
        Method::DELETE,
        "/api/v1.0/user",
        Some(json!({ "password": PW })),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    assert!(!logged_in(&app, &c).await);
    assert!(!logged_in(&app, &other).await);
    assert!(!password_works(&app, &m, PW).await);
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(app.sign_up(&m, "another password").await["errno"], "0");
}

#[tokio::test]
async fn deleting_with_a_confirm_code() {
    let app = spawn_app().await;
    let (m, c) = member(&app).await;
    app.clock.advance(Duration::from_secs(61));
    let v = request_code(&app, &c, "", "confirm").await;
    assert_eq!(v["errno"], "0", "{v}");
    let code = app.dev_sms(&m).await.expect("sent to the account's number");
    let v = call(
        &app,
        &c,
        Method::DELETE,
        "/api/v1.0/user",
        Some(json!({ "confirm_code": code })),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    assert!(!password_works(&app, &m, PW).await);
}

#[tokio::test]
async fn names_are_unique_and_printable() {
    let app = spawn_app().await;
    let (_, a) = member(&app).await;
    let (_, b) = member(&app).await;
    let name = format!("小明{}", phoneauth::secret::random_hex(3));
    let v = call(
        &app,
        &a,
        Method::PUT,
        "/api/v1.0/users/name",
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    assert_eq!(v["data"]["name"], name.as_str());
    let s = call(&app, &a, Method::GET, "/api/v1.0/session", None).await;
    assert_eq!(
        s["data"]["name"],
        name.as_str(),
        "the session shows the new name"
    );
    let v = call(
        &app,
        &b,
        Method::PUT,
        "/api/v1.0/users/name",
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(
        v["errno"], "4001",
        "a taken name answers 4001, as the iHome page expects: {v}"
    );
    for bad in ["", "   ", "a\u{7}b", "\u{202e}abc", &"x".repeat(33)] {
        let v = call(
            &app,
            &b,
            Method::PUT,
            "/api/v1.0/users/name",
            Some(json!({ "name": bad })),
        )
        .await;
        assert_eq!(v["errno"], "4103", "{bad:?}: {v}");
    }
    let v = call(
        &app,
        &client(),
        Method::PUT,
        "/api/v1.0/users/name",
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_eq!(v["errno"], "4101");
}

/// The smallest PNG: one transparent pixel.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

async fn upload(app: &TestApp, c: &Client, bytes: &[u8], file_name: &str) -> Value {
    let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(file_name.to_owned());
    let form = reqwest::multipart::Form::new().part("avatar", part);
    let resp = c
        .post(app.url("/api/v1.0/users/avatar"))
        .multipart(form)
        .send()
        .await
        .expect("request");
    json_of(resp).await
}

#[tokio::test]
async fn avatars_are_images_by_content_stored_served_and_replaced() {
    let app = spawn_app().await;
    let (_, c) = member(&app).await;
    let v = upload(&app, &c, b"<svg onload=alert(1)>", "a.png").await;
    assert_eq!(v["errno"], "4103", "not an image, whatever its name: {v}");
    let v = upload(&app, &c, PNG, "photo.exe").await;
    assert_eq!(v["errno"], "0", "{v}");
    let first = v["data"]["avatar_url"].as_str().expect("url").to_owned();
    assert!(
        first.starts_with("/avatars/") && first.ends_with(".png"),
        "{first}"
    );
    let user = call(&app, &c, Method::GET, "/api/v1.0/user", None).await;
    assert_eq!(user["data"]["avatar"], first.as_str());
    let resp = app.get(&first).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(&resp.bytes().await.expect("bytes")[..], PNG);
    // A new one replaces it, and the old file is gone.
    let v = upload(&app, &c, PNG, "again.png").await;
    let second = v["data"]["avatar_url"].as_str().expect("url").to_owned();
    assert_ne!(first, second);
    assert_eq!(app.get(&first).await.status(), 404);
    assert_eq!(app.get(&second).await.status(), 200);
    assert_eq!(app.get("/avatars/..%2Ftest.db").await.status(), 404);
    assert_eq!(upload(&app, &client(), PNG, "a.png").await["errno"], "4101");
}

#[tokio::test]
async fn an_avatar_over_the_limit_is_refused() {
    let app = spawn_app_with(|c| c.avatars.max_bytes = 1024).await;
    let (_, c) = member(&app).await;
    let mut big = PNG.to_vec();
    big.resize(4096, 0);
    let v = upload(&app, &c, &big, "big.png").await;
    assert_eq!(v["errno"], "4103", "{v}");
    let user = call(&app, &c, Method::GET, "/api/v1.0/user", None).await;
    assert_eq!(user["data"]["avatar"], Value::Null);
    // Far over the limit, the declared length is refused before the body.
    let huge = vec![0u8; 512 * 1024];
    let resp = c
        .post(app.url("/api/v1.0/users/avatar"))
        .multipart(
            reqwest::multipart::Form::new().part("avatar", reqwest::multipart::Part::bytes(huge)),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn the_identity_is_checked_set_once_and_shown_masked() {
    let app = spawn_app().await;
    let (_, c) = member(&app).await;
    let v = call(&app, &c, Method::GET, "/api/v1.0/users/auth", None).await;
    assert_eq!(v["errno"], "0");
    assert_eq!(v["data"]["real_name"], Value::Null);
    assert_eq!(v["data"]["id_card"], Value::Null);
    let wrong = json!({ "real_name": "张三", "id_card": "110105194912310021" });
    let v = call(&app, &c, Method::POST, "/api/v1.0/users/auth", Some(wrong)).await;
    assert_eq!(v["errno"], "4103", "wrong check digit: {v}");
    let v = call(
        &app,
        &c,
        Method::POST,
        "/api/v1.0/users/auth",
        Some(json!({ "real_name": "\u{1}", "id_card": "11010519491231002X" })),
    )
    .await;
    assert_eq!(v["errno"], "4103");
    let good = json!({ "real_name": "张三", "id_card": "11010519491231002x" });
    let v = call(
        &app,
        &c,
        Method::POST,
        "/api/v1.0/users/auth",
        Some(good.clone()),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    let v = call(&app, &c, Method::GET, "/api/v1.0/users/auth", None).await;
    assert_eq!(v["data"]["real_name"], "张三");
    assert_eq!(v["data"]["id_card"], "110105********002X");
    let v = call(&app, &c, Method::POST, "/api/v1.0/users/auth", Some(good)).await;
    assert_eq!(v["errno"], "4003", "set once: {v}");
    assert_eq!(
        call(&app, &client(), Method::GET, "/api/v1.0/users/auth", None).await["errno"],
        "4101"
    );
}

#[tokio::test]
async fn enumeration_safe_mode_answers_alike_and_sends_only_usable_codes() {
    let app = spawn_app_with(|c| c.accounts.hide_registered = true).await;
    let (m, c) = member(&app).await;
    let stranger = fresh_mobile();
    // Register on a taken number: OK, and the owner gets a notice, no code.
    app.clock.advance(Duration::from_secs(61));
    let taken = request_code(&app, &c, &m, "register").await;
    let free = request_code(&app, &c, &stranger, "register").await;
    assert_eq!(taken, free, "the same answer");
    assert_eq!(taken["errno"], "0");
    let notice = app.get_json(&format!("/dev/sms/{m}")).await;
    assert_eq!(
        notice["data"]["code"], "",
        "no code for a taken number: {notice}"
    );
    // Login and reset for a number without an account: OK, nothing sent.
    let nobody = fresh_mobile();
    let v = request_code(&app, &c, &nobody, "login").await;
    assert_eq!(v["errno"], "0", "{v}");
    assert_eq!(app.dev_sms(&nobody).await, None);
    // The limits apply the same way: the cooldown holds for both.
    assert_eq!(
        request_code(&app, &c, &nobody, "reset").await["errno"],
        "4201"
    );
    assert_eq!(request_code(&app, &c, &m, "login").await["errno"], "4201");
    // Registration with a code says DATAEXIST only after the code checks.
    let v = app.register(&m, "000000", PW).await;
    assert_ne!(v["errno"], "4003", "{v}");
    // A login code for an account is sent, and works.
    let code = code_for(&app, &c, &m, "login").await;
    assert_eq!(code_login(&app, &client(), &m, &code).await["errno"], "0");
}

#[tokio::test]
async fn new_endpoints_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = app.get_json_any("/api-docs/openapi.json").await;
    for (path, method) in [
        ("/api/v1.0/sms_codes", "post"),
        ("/api/v1.0/sessions/sms", "post"),
        ("/api/v1.0/password/reset", "post"),
        ("/api/v1.0/user/password", "put"),
        ("/api/v1.0/user/mobile", "put"),
        ("/api/v1.0/user/sessions", "get"),
        ("/api/v1.0/user/sessions", "delete"),
        ("/api/v1.0/user/sessions/{id}", "delete"),
        ("/api/v1.0/user", "delete"),
        ("/api/v1.0/users/name", "put"),
        ("/api/v1.0/users/avatar", "post"),
        ("/api/v1.0/users/auth", "get"),
        ("/api/v1.0/users/auth", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
}

/// The S3 server `.ci/s3.sh` starts (s3s-fs, which checks SigV4 signatures).
fn s3_endpoint() -> Option<String> {
    match std::env::var("TEST_S3_ENDPOINT") {
        Ok(u) => Some(u),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("an S3 server is required in CI: set TEST_S3_ENDPOINT (.ci/s3.sh starts one)")
        }
        Err(_) => {
            eprintln!(
                "\n*** SKIPPED: no S3 server (set TEST_S3_ENDPOINT; .ci/s3.sh starts one); this test did not run ***\n"
            );
            None
        }
    }
}

const S3_BUCKET: &str = "phoneauth-test";

fn s3_client(endpoint: &str, secret: &str) -> impl object_store::ObjectStore {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(S3_BUCKET)
        .with_region("us-east-1")
        .with_endpoint(endpoint)
        .with_access_key_id("phoneauth-test-key")
        .with_secret_access_key(secret)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .expect("S3 client")
}

#[tokio::test]
async fn avatars_go_to_an_s3_bucket_signed_and_replaced() {
    use object_store::ObjectStoreExt;
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let prefix = format!("avatars-{}", phoneauth::secret::random_hex(4));
    let public = format!("https://cdn.example.com/{prefix}/");
    let configure = |secret: &'static str| {
        let (endpoint, prefix, public) = (endpoint.clone(), prefix.clone(), public.clone());
        move |c: &mut phoneauth::config::Config| {
            c.avatars.store = format!("s3://{S3_BUCKET}/{prefix}");
            c.avatars.endpoint = endpoint;
            c.avatars.public_url = public;
            c.avatars.access_key_id = "phoneauth-test-key".into();
            c.avatars.secret_access_key = secret.into();
        }
    };
    let app = spawn_app_with(configure("phoneauth-test-secret")).await;
    let (_, c) = member(&app).await;
    let v = upload(&app, &c, PNG, "me.png").await;
    assert_eq!(v["errno"], "0", "{v}");
    let url = v["data"]["avatar_url"].as_str().expect("url").to_owned();
    let name = url.strip_prefix(&public).expect("under the public URL");
    let bucket = s3_client(&endpoint, "phoneauth-test-secret");
    let key = object_store::path::Path::from(format!("{prefix}/{name}"));
    let got = bucket.get(&key).await.expect("the object is in the bucket");
    assert_eq!(
        got.attributes
            .get(&object_store::Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some("image/png")
    );
    assert_eq!(&got.bytes().await.expect("bytes")[..], PNG);
    // A new one replaces it in the bucket too.
    let v = upload(&app, &c, PNG, "again.png").await;
    assert_eq!(v["errno"], "0", "{v}");
    assert!(matches!(
        bucket.get(&key).await,
        Err(object_store::Error::NotFound { .. })
    ));

    // Signed with the wrong secret, the server refuses: IOERR, nothing kept.
    let wrong = spawn_app_with(configure("not-the-secret")).await;
    let (_, c) = member(&wrong).await;
    let v = upload(&wrong, &c, PNG, "me.png").await;
    assert_eq!(v["errno"], "4302", "{v}");
    let user = call(&wrong, &c, Method::GET, "/api/v1.0/user", None).await;
    assert_eq!(user["data"]["avatar"], Value::Null);
}
