//! The account pages of SPEC §9 driven in headless Chromium — sign in by
//! code, forgot password, account settings (name, avatar, password, mobile,
//! sessions, delete) — and a hosted iHome-style site's profile and identity
//! pages. Screenshots land in `target/screenshots/`.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    TempDir, TestApp, client, fresh_mobile, json_of, plain_client, spawn_app, spawn_app_with,
};
use crate::webdriver::{Browser, ENTER, Setup, TAB};

const PHONE: Setup = Setup {
    width: 390,
    height: 844,
    lang: "zh-CN",
};
const DESKTOP: Setup = Setup {
    width: 1280,
    height: 800,
    lang: "zh-CN",
};
const DESKTOP_EN: Setup = Setup {
    width: 1280,
    height: 800,
    lang: "en",
};

const PASSWORD: &str = "correct horse";
const NEW_PASSWORD: &str = "battery staple";

/// The resend cooldown per mobile (all purposes together), waited out
/// after the sign-up's code before the next code to the same number.
const COOLDOWN: Duration = Duration::from_secs(61);

/// A 1×1 RGB PNG, for avatar uploads.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xb8, 0x60, 0x60, 0x00,
    0x00, 0x03, 0x04, 0x01, 0x31, 0x4a, 0x42, 0xa6, 0xdb, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The picture-code and SMS-code part of a form, by its elements.
struct CodePart {
    img: &'static str,
    answer: &'static str,
    send: &'static str,
    status: &'static str,
    error: &'static str,
}

/// On `/signin` (code mode) and `/forgot`.
const PAGE_CODE: CodePart = CodePart {
    img: "#captcha-img",
    answer: "#image_code",
    send: "#send-code",
    status: "#form-status",
    error: "#form-error",
};

/// On `/account`, the mobile change.
const MOBILE_CODE: CodePart = CodePart {
    img: "#mobile-captcha-img",
    answer: "#mobile-captcha",
    send: "#mobile-send-code",
    status: "#mobile-status",
    error: "#mobile-error",
};

async fn ends_with(b: &Browser, path: &str) -> bool {
    b.current_url().await.ends_with(path)
}

fn masked(m: &str) -> String {
    format!("{}****{}", &m[..3], &m[7..])
}

/// Solves the picture code the page shows (from the dev hook), asks for an
/// SMS code and gives back the code sent to `mobile`.
async fn request_code(b: &Browser, app: &TestApp, part: &CodePart, mobile: &str) -> String {
    let script = format!(
        "return document.querySelector('{}').dataset.captchaId || ''",
        part.img
    );
    b.wait_until("a picture code", || async {
        b.exec(&script)
            .await
            .as_str()
            .is_some_and(|id| !id.is_empty())
    })
    .await;
    let id = b.exec(&script).await.as_str().expect("id").to_owned();
    let answer = app.dev_captcha(&id).await.expect("answer");
    b.type_into(part.answer, &answer).await;
    b.click(part.send).await;
    b.wait_until("the code to be sent", || async {
        let error = b.text(part.error).await;
        assert!(error.is_empty(), "sending a code failed: {error}");
        !b.text(part.status).await.is_empty()
    })
    .await;
    app.dev_sms(mobile).await.expect("a code was sent")
}

/// Waits until the account page's form `form` says `done`; fails at once
/// with the form's error line when one shows.
async fn wait_for(b: &Browser, form: &str, done: &str) {
    let (status, error) = (format!("#{form}-status"), format!("#{form}-error"));
    b.wait_until(done, || async {
        let e = b.text(&error).await;
        assert!(e.is_empty(), "{form}: {e}");
        b.text(&status).await == done
    })
    .await;
}

async fn session_count(b: &Browser) -> u64 {
    b.exec("return document.querySelectorAll('#session-list [data-session-id]').length")
        .await
        .as_u64()
        .unwrap_or(0)
}

/// A user signed up over the API (`app.client` keeps that session) and a
/// browser signed in to them with the password on `/signin`, on `/account`.
async fn signed_in(app: &TestApp, setup: Setup) -> Option<(Browser, String)> {
    let b = Browser::start(setup).await?;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, PASSWORD).await["errno"], "0");
    b.goto(&app.url("/signin")).await;
    b.type_into("#mobile", &m).await;
    b.type_into("#password", PASSWORD).await;
    b.keys(ENTER).await;
    b.wait_until("the account page", || ends_with(&b, "/account"))
        .await;
    b.wait_until("the account's mobile", || async {
        b.text("#account-mobile").await == masked(&m)
    })
    .await;
    Some((b, m))
}

/// A JSON request on `client` (a cookie jar of its own).
async fn send_json(
    app: &TestApp,
    client: &reqwest::Client,
    method: Method,
    path: &str,
    body: Value,
) -> Value {
    let resp = client
        .request(method, app.url(path))
        .json(&body)
        .send()
        .await
        .expect("request");
    json_of(resp).await
}

async fn get_json(app: &TestApp, client: &reqwest::Client, path: &str) -> Value {
    json_of(client.get(app.url(path)).send().await.expect("request")).await
}

/// The PNG written to a fresh folder (kept while the `TempDir` lives).
fn png_file() -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new();
    let path = dir.0.join("avatar.png");
    std::fs::write(&path, PNG).expect("write PNG");
    (dir, path)
}

/// The user's avatar from `GET /user`, checked to download as a PNG.
async fn avatar_downloads_as_png(app: &TestApp) -> String {
    let user = app.user().await;
    let avatar = user["data"]["avatar"]
        .as_str()
        .unwrap_or_else(|| panic!("an avatar: {user}"))
        .to_owned();
    let url = if avatar.starts_with('/') {
        app.url(&avatar)
    } else {
        avatar.clone()
    };
    let resp = plain_client().get(url).send().await.expect("avatar");
    assert_eq!(resp.status(), 200, "{avatar}");
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.bytes().await.expect("body").starts_with(b"\x89PNG"));
    avatar
}

#[tokio::test]
async fn signing_in_with_a_code_on_a_phone_ends_on_the_account_page() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some(b) = Browser::start(PHONE).await else {
        return;
    };
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, PASSWORD).await["errno"], "0");
    app.clock.advance(COOLDOWN);
    b.goto(&app.url("/signin")).await;
    assert!(!b.displayed("#send-code").await, "password mode first");
    b.click("#sms-mode").await;
    assert!(b.displayed("#send-code").await);
    assert!(!b.displayed("#password").await);
    assert_eq!(b.text("#sms-mode").await, "密码登录");
    b.type_into("#mobile", &m).await;
    let code = request_code(&b, &app, &PAGE_CODE, &m).await;
    assert!(b.text("#send-code").await.contains("秒后重发"));
    b.screenshot("signin-code-zh-phone").await;
    b.type_into("#sms_code", &code).await;
    b.keys(ENTER).await;
    b.wait_until("the account page", || ends_with(&b, "/account"))
        .await;
    b.wait_until("the account's mobile", || async {
        b.text("#account-mobile").await == masked(&m)
    })
    .await;
    b.screenshot("account-zh-phone").await;
}

#[tokio::test]
async fn a_forgotten_password_is_reset_in_english_on_a_desktop() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some(b) = Browser::start(DESKTOP_EN).await else {
        return;
    };
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, PASSWORD).await["errno"], "0");
    app.clock.advance(COOLDOWN);
    b.goto(&app.url("/signin")).await;
    b.click("#forgot-link").await;
    b.wait_until("the reset page", || ends_with(&b, "/forgot"))
        .await;
    assert_eq!(b.text("h1").await, "Reset password");
    b.type_into("#mobile", &m).await;
    let code = request_code(&b, &app, &PAGE_CODE, &m).await;
    assert_eq!(
        b.text("#form-status").await,
        "Code sent; check your messages"
    );
    b.type_into("#sms_code", &code).await;
    b.type_into("#password", NEW_PASSWORD).await;
    b.type_into("#password2", NEW_PASSWORD).await;
    b.screenshot("forgot-en-desktop").await;
    b.keys(ENTER).await;
    b.wait_until("the account page", || ends_with(&b, "/account"))
        .await;
    assert_eq!(
        app.session().await["errno"],
        "4101",
        "a reset ends the sessions the user had"
    );
    assert_eq!(app.login(&m, NEW_PASSWORD).await["errno"], "0");
    assert_eq!(app.login(&m, PASSWORD).await["errno"], "4004");
}

#[tokio::test]
async fn the_name_and_the_avatar_are_changed_on_the_account_page() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    // Another user holds the name 老王 (`app.client` is theirs until the
    // next sign-up).
    assert_eq!(app.sign_up(&fresh_mobile(), PASSWORD).await["errno"], "0");
    let taken = json!({ "name": "老王" });
    let v = send_json(
        &app,
        &app.client,
        Method::PUT,
        "/api/v1.0/users/name",
        taken,
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    let Some((b, _)) = signed_in(&app, DESKTOP).await else {
        return;
    };

    b.type_into("#name", "老王").await;
    b.keys(ENTER).await;
    b.wait_until("the name to be refused", || async {
        b.text("#name-error").await == "用户名已存在"
    })
    .await;
    b.type_into("#name", "房东小李").await;
    b.keys(ENTER).await;
    wait_for(&b, "name", "用户名已保存").await;
    assert_eq!(b.text("#account-name").await, "房东小李");
    assert_eq!(app.user().await["data"]["name"], "房东小李");

    let (_dir, png) = png_file();
    b.choose_file("#avatar-file", &png).await;
    b.click("#upload-avatar").await;
    wait_for(&b, "avatar", "头像已更新").await;
    let avatar = avatar_downloads_as_png(&app).await;
    assert!(b.displayed("#avatar-img").await);
    let src = b.property("#avatar-img", "src").await;
    assert!(
        src.as_str().is_some_and(|s| s.ends_with(&avatar)),
        "the page shows {avatar}, not {src}"
    );
    b.screenshot("account-avatar-zh-desktop").await;
}

#[tokio::test]
async fn the_password_is_changed_with_the_keyboard_alone() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some((b, m)) = signed_in(&app, PHONE).await else {
        return;
    };
    // Language switch, logout, name, save, avatar file, upload, then the
    // current password.
    b.keys(&TAB.repeat(7)).await;
    assert_eq!(
        b.exec("return document.activeElement.id").await,
        "old_password"
    );
    b.keys(&format!(
        "{PASSWORD}{TAB}{NEW_PASSWORD}{TAB}{NEW_PASSWORD}{ENTER}"
    ))
    .await;
    wait_for(&b, "password", "密码已修改，其他设备已退出登录").await;
    b.wait_until("only this device listed", || async {
        session_count(&b).await == 1
    })
    .await;
    assert_eq!(
        app.session().await["errno"],
        "4101",
        "the sign-up's session ended"
    );
    assert_eq!(app.login(&m, NEW_PASSWORD).await["errno"], "0");
    assert_eq!(app.login(&m, PASSWORD).await["errno"], "4004");
}

#[tokio::test]
async fn other_sessions_are_listed_and_ended_from_the_account_page() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some((b, m)) = signed_in(&app, DESKTOP_EN).await else {
        return;
    };
    // The sign-up's session on `app.client` is the other one.
    b.wait_until("two sessions", || async { session_count(&b).await == 2 })
        .await;
    assert_eq!(b.text("#session-list .badge").await, "This device");
    let id = b
        .attribute("#session-list li:has(button)", "data-session-id")
        .await
        .expect("a handle");
    assert!(!id.is_empty());
    b.screenshot("account-sessions-en-desktop").await;
    b.click("#session-list button").await;
    b.wait_until("one session", || async { session_count(&b).await == 1 })
        .await;
    assert_eq!(app.session().await["errno"], "4101");

    // Two more clients log in; "all other devices" ends both.
    let mut others = Vec::new();
    for _ in 0..2 {
        let c = client();
        let body = json!({ "mobile": m, "password": PASSWORD });
        let v = send_json(&app, &c, Method::POST, "/api/v1.0/sessions", body).await;
        assert_eq!(v["errno"], "0", "{v}");
        others.push(c);
    }
    b.goto(&app.url("/account")).await;
    b.wait_until("three sessions", || async { session_count(&b).await == 3 })
        .await;
    b.click("#end-others").await;
    b.wait_until("one session", || async { session_count(&b).await == 1 })
        .await;
    for c in &others {
        assert_eq!(
            get_json(&app, c, "/api/v1.0/session").await["errno"],
            "4101"
        );
    }
    assert!(b.displayed("#session-list .badge").await, "this one stays");
}

#[tokio::test]
async fn the_mobile_number_is_moved_to_a_new_one_on_the_account_page() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some((b, m)) = signed_in(&app, PHONE).await else {
        return;
    };
    let new = fresh_mobile();
    // Entering the form makes its picture code.
    b.type_into("#new_mobile", &new).await;
    let code = request_code(&b, &app, &MOBILE_CODE, &new).await;
    b.type_into("#mobile-sms-code", &code).await;
    b.type_into("#mobile-password", PASSWORD).await;
    b.keys(ENTER).await;
    wait_for(&b, "mobile", "手机号已更换，其他设备已退出登录").await;
    b.wait_until("the new number", || async {
        b.text("#account-mobile").await == masked(&new)
    })
    .await;
    assert_eq!(app.session().await["errno"], "4101");
    assert_eq!(app.login(&new, PASSWORD).await["errno"], "0");
    assert_eq!(app.login(&m, PASSWORD).await["errno"], "4004");
}

#[tokio::test]
async fn a_deleted_account_frees_its_number() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some((b, m)) = signed_in(&app, DESKTOP).await else {
        return;
    };
    b.type_into("#delete-password", PASSWORD).await;
    b.keys(ENTER).await;
    b.wait_until("the confirmation asked for", || async {
        b.text("#delete-error").await == "请先勾选确认"
    })
    .await;
    assert_eq!(app.user().await["errno"], "0", "nothing deleted yet");
    // The page moved focus to the checkbox: tick it, then the button.
    b.keys(&format!(" {TAB}{ENTER}")).await;
    b.wait_until("the sign-up page", || ends_with(&b, "/register"))
        .await;
    assert_eq!(app.user().await["errno"], "4101", "every session ended");
    app.clock.advance(COOLDOWN);
    assert_eq!(app.sign_up(&m, PASSWORD).await["errno"], "0");
}

#[tokio::test]
async fn an_ihome_style_site_sets_the_profile_and_the_real_name_through_hosted_pages() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ihome-site");
    let app = spawn_app_with(|c| {
        c.web.static_dir = Some(site.join("static"));
        c.web.pages_dir = Some(site.join("html"));
    })
    .await;
    let Some(b) = Browser::start(DESKTOP).await else {
        return;
    };
    assert_eq!(app.sign_up(&fresh_mobile(), PASSWORD).await["errno"], "0");
    let taken = json!({ "name": "老王" });
    let v = send_json(
        &app,
        &app.client,
        Method::PUT,
        "/api/v1.0/users/name",
        taken,
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, PASSWORD).await["errno"], "0");

    // Logged out, the profile page sends the visitor to the login page.
    b.goto(&app.url("/profile.html")).await;
    b.wait_until("the login page", || ends_with(&b, "/login.html"))
        .await;
    b.type_into("#mobile", &m).await;
    b.type_into("#password", PASSWORD).await;
    b.click("#login").await;
    b.wait_until("the home page", || ends_with(&b, "/")).await;

    b.goto(&app.url("/profile.html")).await;
    b.wait_until("the name", || async {
        b.property("#user-name", "value").await == json!(m)
    })
    .await;
    let error = "#form-name .error-msg";
    let save = "#form-name input[type=submit]";
    b.type_into("#user-name", "老王").await;
    b.click(save).await;
    b.wait_until("the taken-name message", || b.displayed(error))
        .await;
    assert_eq!(b.text(error).await, "用户名已存在");
    b.type_into("#user-name", "房东小李").await;
    b.click(save).await;
    b.wait_until("the message to go", || async { !b.displayed(error).await })
        .await;
    assert_eq!(app.user().await["data"]["name"], "房东小李");

    let (_dir, png) = png_file();
    b.choose_file("#form-avatar input[type=file]", &png).await;
    b.click("#form-avatar input[type=submit]").await;
    b.wait_until("the uploaded avatar", || async {
        b.attribute("#user-avatar", "src")
            .await
            .is_some_and(|src| !src.is_empty())
    })
    .await;
    let avatar = avatar_downloads_as_png(&app).await;
    let src = b.attribute("#user-avatar", "src").await.unwrap_or_default();
    assert!(src.ends_with(&avatar), "the page shows {src}, not {avatar}");
    b.screenshot("ihome-profile").await;

    b.goto(&app.url("/auth.html")).await;
    b.type_into("#real-name", "李小明").await;
    b.type_into("#id-card", "11010519491231002X").await;
    b.click("#form-auth>input[type=submit]").await;
    b.wait_until("the form to lock", || async {
        let error = b.text(".form-auth .error-msg").await;
        assert!(error.is_empty(), "refused: {error}");
        b.property("#id-card", "disabled").await == Value::Bool(true)
    })
    .await;
    let auth = app.get_json("/api/v1.0/users/auth").await;
    assert_eq!(auth["data"]["real_name"], "李小明", "{auth}");
    assert_eq!(auth["data"]["id_card"], "110105********002X", "{auth}");

    // After a reload the page shows the masked ID, locked.
    b.goto(&app.url("/auth.html")).await;
    b.wait_until("the ID on file", || async {
        b.property("#id-card", "value").await == json!("110105********002X")
    })
    .await;
    assert_eq!(b.property("#real-name", "value").await, json!("李小明"));
    assert_eq!(
        b.property("#real-name", "disabled").await,
        Value::Bool(true)
    );
    assert_eq!(b.property("#id-card", "disabled").await, Value::Bool(true));
    assert!(!b.displayed("#form-auth>input[type=submit]").await);
    b.screenshot("ihome-auth").await;
}
