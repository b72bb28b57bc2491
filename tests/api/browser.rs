//! The built-in pages and a hosted iHome-style site, driven in headless
//! Chromium. Screenshots land in `target/screenshots/`.

use serde_json::Value;

use crate::helpers::{TestApp, fresh_mobile, spawn_app, spawn_app_with};
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

/// The captcha id the page is showing and its answer (from the dev hook).
async fn captcha_on_page(b: &Browser, app: &TestApp) -> (String, String) {
    let id = b
        .exec("return document.getElementById('captcha-img').dataset.captchaId")
        .await;
    let id = id.as_str().expect("captcha id").to_owned();
    let answer = app.dev_captcha(&id).await.expect("answer");
    (id, answer)
}

async fn ends_with(b: &Browser, path: &str) -> bool {
    b.current_url().await.ends_with(path)
}

#[tokio::test]
async fn register_then_account_then_logout_then_login_in_a_browser() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some(b) = Browser::start(DESKTOP).await else {
        return;
    };
    let m = fresh_mobile();
    b.goto(&app.url("/register")).await;
    b.screenshot("register-zh-desktop").await;
    b.type_into("#mobile", &m).await;
    let (_, answer) = captcha_on_page(&b, &app).await;
    b.type_into("#image_code", &answer.to_lowercase()).await;
    b.click("#send-code").await;
    b.wait_until("the countdown", || async {
        b.text("#send-code").await.contains("秒后重发")
    })
    .await;
    assert_eq!(
        b.property("#send-code", "disabled").await,
        Value::Bool(true)
    );
    b.screenshot("register-zh-countdown").await;
    let code = app.dev_sms(&m).await.expect("code sent");
    b.type_into("#sms_code", &code).await;
    b.type_into("#password", "correct horse").await;
    b.type_into("#password2", "correct horse").await;
    b.click("#submit").await;
    b.wait_until("the account page", || ends_with(&b, "/account"))
        .await;
    let masked = format!("{}****{}", &m[..3], &m[7..]);
    b.wait_until("the masked mobile", || async {
        b.text("#account-mobile").await == masked
    })
    .await;
    b.screenshot("account-zh-desktop").await;

    b.click("#logout").await;
    b.wait_until("the login page", || ends_with(&b, "/signin"))
        .await;
    assert_eq!(app.session().await["errmsg"], "false");
    b.type_into("#mobile", &m).await;
    b.type_into("#password", "correct horse").await;
    b.click("#submit").await;
    b.wait_until("the account page again", || ends_with(&b, "/account"))
        .await;
}

#[tokio::test]
async fn a_wrong_captcha_answer_shows_the_message_and_a_new_captcha() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some(b) = Browser::start(PHONE).await else {
        return;
    };
    b.goto(&app.url("/register")).await;
    b.type_into("#mobile", &fresh_mobile()).await;
    let (first, answer) = captcha_on_page(&b, &app).await;
    let wrong = if answer == "AAAA" { "CCCC" } else { "AAAA" };
    b.type_into("#image_code", wrong).await;
    b.click("#send-code").await;
    b.wait_until("the error message", || async {
        b.text("#form-error").await == "图片验证码错误"
    })
    .await;
    let (second, _) = captcha_on_page(&b, &app).await;
    assert_ne!(first, second, "a fresh captcha replaces the used one");
    assert_eq!(
        b.property("#image_code", "value").await,
        Value::String(String::new())
    );
    b.screenshot("register-zh-phone-error").await;
}

#[tokio::test]
async fn registration_works_with_the_keyboard_alone() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    let Some(b) = Browser::start(PHONE).await else {
        return;
    };
    let m = fresh_mobile();
    b.goto(&app.url("/register")).await;
    let (_, answer) = captcha_on_page(&b, &app).await;
    // Header switch, then the mobile field.
    b.keys(&format!("{TAB}{TAB}{m}{TAB}{answer}{TAB}{TAB}{TAB}{ENTER}"))
        .await;
    b.wait_until("the code to be sent", || async {
        app.dev_sms(&m).await.is_some()
    })
    .await;
    let code = app.dev_sms(&m).await.expect("code");
    // The page moved focus to the code field; the disabled send button is
    // skipped by Tab.
    b.keys(&format!(
        "{code}{TAB}pass-word-123{TAB}pass-word-123{ENTER}"
    ))
    .await;
    b.wait_until("the account page", || ends_with(&b, "/account"))
        .await;
}

#[tokio::test]
async fn every_page_renders_in_both_languages_at_phone_and_desktop_widths() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let app = spawn_app().await;
    for (setup, name) in [(PHONE, "phone"), (DESKTOP, "desktop")] {
        let Some(b) = Browser::start(setup).await else {
            return;
        };
        b.goto(&app.url("/signin")).await;
        assert_eq!(b.text("h1").await, "登录");
        b.screenshot(&format!("login-zh-{name}")).await;
        b.click("#lang-switch").await;
        assert_eq!(b.text("h1").await, "Log in");
        b.screenshot(&format!("login-en-{name}")).await;
        b.goto(&app.url("/register")).await;
        assert_eq!(b.text("h1").await, "Sign up", "the choice is remembered");
        b.screenshot(&format!("register-en-{name}")).await;
        // Errors come back in the chosen language.
        b.click("#send-code").await;
        b.wait_until("a message", || async {
            b.text("#form-error").await == "Enter your mobile number"
        })
        .await;
    }
}

#[tokio::test]
async fn an_ihome_style_site_registers_through_hosted_pages() {
    let _no_fault_test = crate::servers::TIMED_FAULTS.read().await;
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ihome-site");
    let app = spawn_app_with(|c| {
        c.web.static_dir = Some(site.join("static"));
        c.web.pages_dir = Some(site.join("html"));
    })
    .await;
    let Some(b) = Browser::start(DESKTOP).await else {
        return;
    };
    let m = fresh_mobile();
    b.goto(&app.url("/register.html")).await;
    b.type_into("#mobile", &m).await;
    let id = b
        .exec("return window.imageCodeId")
        .await
        .as_str()
        .expect("id")
        .to_owned();
    let answer = app.dev_captcha(&id).await.expect("answer");
    b.type_into("#imagecode", &answer).await;
    b.click("#get-sms").await;
    b.wait_until("the code to be sent", || async {
        app.dev_sms(&m).await.is_some()
    })
    .await;
    let code = app.dev_sms(&m).await.expect("code");
    b.type_into("#phonecode", &code).await;
    b.type_into("#password", "password123").await;
    b.type_into("#password2", "password123").await;
    b.click("#register").await;
    b.wait_until("the site's index page", || ends_with(&b, "/index.html"))
        .await;
    assert_eq!(b.text("h1").await, "iHome");
    assert_eq!(app.login(&m, "password123").await["errno"], "0");
}
