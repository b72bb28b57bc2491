use std::time::Duration;

use serde_json::json;

use crate::helpers::{client, fresh_mobile, retry_after, spawn_app};

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn logged_out_session_and_user_answers() {
    let app = spawn_app().await;
    assert_eq!(
        app.session().await,
        json!({ "errno": "4101", "errmsg": "false" })
    );
    assert_eq!(app.user().await["errno"], "4101");
}

#[tokio::test]
async fn login_sets_a_fresh_httponly_session_cookie() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    let resp = app
        .client
        .post(app.url("/api/v1.0/sessions"))
        .json(&json!({ "mobile": m, "password": "password123" }))
        .send()
        .await
        .expect("request");
    let cookies = set_cookies(&resp);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session} lacks {attr}");
    }
    let id = session
        .trim_start_matches("session=")
        .split(';')
        .next()
        .expect("id");
    assert!(id.len() >= 32, "at least 128 random bits: {id}");
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json")["errno"],
        "0"
    );
}

#[tokio::test]
async fn a_login_never_reuses_the_pre_login_session_id() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    let first = app
        .client
        .post(app.url("/api/v1.0/sessions"))
        .json(&json!({ "mobile": m, "password": "password123" }))
        .send()
        .await
        .expect("request");
    let a = set_cookies(&first)
        .into_iter()
        .find(|c| c.starts_with("session="))
        .expect("a");
    let second = app
        .client
        .post(app.url("/api/v1.0/sessions"))
        .json(&json!({ "mobile": m, "password": "password123" }))
        .send()
        .await
        .expect("request");
    let b = set_cookies(&second)
        .into_iter()
        .find(|c| c.starts_with("session="))
        .expect("b");
    assert_ne!(a, b);
    // The old id no longer works.
    let old_id = a
        .trim_start_matches("session=")
        .split(';')
        .next()
        .expect("id")
        .to_owned();
    let other = client();
    let v: serde_json::Value = other
        .get(app.url("/api/v1.0/session"))
        .header("cookie", format!("session={old_id}"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(v["errmsg"], "false");
}

#[tokio::test]
async fn the_profile_shows_the_documented_fields() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    let s = app.session().await;
    assert_eq!(s["errno"], "0");
    assert_eq!(s["errmsg"], "true");
    assert!(s["data"]["user_id"].is_i64());
    let u = app.user().await;
    assert_eq!(u["errno"], "0");
    let d = &u["data"];
    assert_eq!(d["user_id"], s["data"]["user_id"]);
    assert_eq!(d["name"], m.as_str());
    assert_eq!(d["mobile"], m.as_str());
    assert!(d["avatar"].is_null());
    let created = d["create_time"].as_str().expect("create_time");
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
}

#[tokio::test]
async fn logout_ends_the_session_but_keeps_the_csrf_token() {
    let app = spawn_app().await;
    app.sign_up(&fresh_mobile(), "password123").await;
    let resp = app
        .client
        .delete(app.url("/api/v1.0/session"))
        .send()
        .await
        .expect("request");
    assert!(
        !set_cookies(&resp)
            .iter()
            .any(|c| c.starts_with("csrf_token=")),
        "logout must not replace the csrf token"
    );
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json")["errno"],
        "0"
    );
    assert_eq!(app.session().await["errmsg"], "false");
}

#[tokio::test]
async fn wrong_password_and_unknown_mobile_give_the_same_answer() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    app.logout().await;
    let wrong = app.login(&m, "password124").await;
    let unknown = app.login(&fresh_mobile(), "password123").await;
    assert_eq!(wrong["errno"], "4004");
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn login_needs_both_fields() {
    let app = spawn_app().await;
    let v = app
        .post_json("/api/v1.0/sessions", &json!({ "mobile": fresh_mobile() }))
        .await;
    assert_eq!(v["errno"], "4103");
    let v = app
        .post_json("/api/v1.0/sessions", &json!({ "password": "password123" }))
        .await;
    assert_eq!(v["errno"], "4103");
}

#[tokio::test]
async fn five_failed_logins_lock_the_mobile_for_ten_minutes() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    app.logout().await;
    for _ in 0..5 {
        assert_eq!(app.login(&m, "wrong-password").await["errno"], "4004");
    }
    let resp = app
        .client
        .post(app.url("/api/v1.0/sessions"))
        .json(&json!({ "mobile": m, "password": "password123" }))
        .send()
        .await
        .expect("request");
    let after = retry_after(resp.headers()).expect("Retry-After");
    assert!((1..=600).contains(&after));
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json")["errno"],
        "4201"
    );
    app.clock.advance(Duration::from_secs(600));
    assert_eq!(app.login(&m, "password123").await["errno"], "0");
}

#[tokio::test]
async fn sessions_expire_after_a_day() {
    let app = spawn_app().await;
    app.sign_up(&fresh_mobile(), "password123").await;
    app.clock.advance(Duration::from_secs(86_399));
    assert_eq!(app.session().await["errmsg"], "true");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.session().await["errmsg"], "false");
}

#[tokio::test]
async fn store_outage_during_login_is_dberr() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    app.store.set_down(true);
    assert_eq!(app.login(&m, "password123").await["errno"], "4001");
    assert_eq!(app.session().await["errno"], "4001");
    app.store.set_down(false);
    assert_eq!(app.session().await["errno"], "0");
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_failed_login_limit() {
    let app = std::sync::Arc::new(spawn_app().await);
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (app, m) = (app.clone(), m.clone());
            tokio::spawn(async move { app.login(&m, &format!("wrong-password-{i}")).await })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        let v = t.await.expect("task");
        match v["errno"].as_str() {
            Some("4004") => checked += 1,
            Some("4201") => {}
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    assert_eq!(checked, 5, "only five passwords may be tried");
}
