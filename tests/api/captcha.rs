use std::time::Duration;

use crate::helpers::{json_of, new_captcha_id, retry_after, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_captcha_is_a_fresh_uncached_jpeg() {
    let app = spawn_app().await;
    let resp = app.image_code(&new_captcha_id()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = resp.bytes().await.expect("body");
    assert_eq!(&body[..3], &[0xFF, 0xD8, 0xFF]);
}

#[tokio::test]
async fn the_answer_has_four_symbols_without_look_alikes() {
    let app = spawn_app().await;
    let (_, answer) = app.captcha().await;
    assert_eq!(answer.len(), 4);
    assert!(
        answer.bytes().all(|b| b"ACEFHKMNPRWXY3479".contains(&b)),
        "{answer}"
    );
}

#[tokio::test]
async fn a_new_captcha_for_the_same_id_replaces_the_old_one() {
    let app = spawn_app().await;
    let id = new_captcha_id();
    let mut answers = std::collections::HashSet::new();
    for _ in 0..4 {
        app.image_code(&id).await;
        answers.insert(app.dev_captcha(&id).await.expect("answer"));
    }
    // Four draws from 17^4 answers colliding into one would be astronomically rare.
    assert!(answers.len() > 1, "each request must draw a new captcha");
    let current = app.dev_captcha(&id).await.expect("answer");
    let v = app.sms_code("13800138000", &current, &id).await;
    assert_eq!(v["errno"], "0", "only the latest answer counts: {v}");
}

#[tokio::test]
async fn malformed_captcha_ids_get_400_paramerr() {
    let app = spawn_app().await;
    for id in [
        "a".repeat(65),
        "a.b".into(),
        "a%20b".into(),
        "%E4%B8%AD".into(),
    ] {
        let resp = app.image_code(&id).await;
        assert_eq!(resp.status(), 400, "id {id:?}");
        assert_eq!(json_of(resp).await["errno"], "4103");
    }
}

#[tokio::test]
async fn the_v1_0_alias_serves_the_same_api() {
    let app = spawn_app().await;
    let resp = app
        .get(&format!("/api/v1_0/image_codes/{}", new_captcha_id()))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
}

#[tokio::test]
async fn captcha_creation_is_limited_per_client_with_429_and_retry_after() {
    let app = spawn_app_with(|c| c.limits.captcha_per_ip_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(app.image_code(&new_captcha_id()).await.status(), 200);
    }
    let resp = app.image_code(&new_captcha_id()).await;
    assert_eq!(resp.status(), 429);
    let after = retry_after(resp.headers()).expect("Retry-After");
    assert!((1..=60).contains(&after), "{after}");
    assert_eq!(json_of(resp).await["errno"], "4201");
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(app.image_code(&new_captcha_id()).await.status(), 200);
}

#[tokio::test]
async fn store_outage_gives_503_dberr_and_recovers() {
    let app = spawn_app().await;
    app.store.set_down(true);
    let resp = app.image_code(&new_captcha_id()).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(json_of(resp).await["errno"], "4001");
    app.store.set_down(false);
    assert_eq!(app.image_code(&new_captcha_id()).await.status(), 200);
}

#[tokio::test]
async fn a_captcha_expires_after_300_seconds() {
    let app = spawn_app().await;
    let (id, answer) = app.captcha().await;
    app.clock.advance(Duration::from_secs(300));
    let v = app.sms_code("13800138000", &answer, &id).await;
    assert_eq!(v["errno"], "4002", "{v}");
}
