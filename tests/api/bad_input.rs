use crate::helpers::{fresh_mobile, json_of, spawn_app};

async fn post_raw(
    app: &crate::helpers::TestApp,
    path: &str,
    body: Vec<u8>,
    ct: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn malformed_bodies_are_paramerr_never_a_server_error() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"[\"13800138000\", \"123456\", \"password123\"]".to_vec(),
        b"null".to_vec(),
        b"42".to_vec(),
        b"\"string\"".to_vec(),
        b"".to_vec(),
        b"{}".to_vec(),
        "{\"mobile\": null, \"sms_code\": null, \"password\": null}".to_string().into_bytes(),
        "{\"mobile\": 13800138000, \"sms_code\": 123456, \"password\": \"password123\"}".to_string().into_bytes(),
        format!("{{\"mobile\": [\"{m}\"], \"sms_code\": \"123456\", \"password\": \"password123\"}}").into_bytes(),
        "{\"mobile\": {\"a\": 1}, \"sms_code\": \"123456\", \"password\": \"password123\"}".to_string().into_bytes(),
        format!("{{\"mobile\": \"{m}\\u0000\", \"sms_code\": \"123456\", \"password\": \"password123\"}}").into_bytes(),
        format!("{{\"mobile\": \"{m}\", \"sms_code\": \"123456\", \"password\": \"pass\\u0000word123\"}}").into_bytes(),
        "{\"mobile\": \"１３８００１３８０００\", \"sms_code\": \"123456\", \"password\": \"password123\"}".as_bytes().to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
    ];
    for body in bodies {
        for path in ["/api/v1.0/users", "/api/v1.0/sessions"] {
            let shown = String::from_utf8_lossy(&body).into_owned();
            let resp = post_raw(&app, path, body.clone(), "application/json").await;
            assert_eq!(resp.status(), 200, "{path} {shown}");
            assert_eq!(json_of(resp).await["errno"], "4103", "{path} {shown}");
        }
    }
    let body = format!(
        "{{\"mobile\": \"{m}\", \"sms_code\": \"１２３４５６\", \"password\": \"password123\"}}"
    );
    let resp = post_raw(
        &app,
        "/api/v1.0/users",
        body.into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(
        json_of(resp).await["errno"],
        "4103",
        "full-width digits in the code"
    );
    assert_eq!(app.get("/healthz").await.status(), 200, "still answering");
}

#[tokio::test]
async fn a_body_over_16_kib_is_413_in_the_envelope() {
    let app = spawn_app().await;
    let pad = "x".repeat(17 * 1024);
    let body = format!(
        "{{\"mobile\": \"{}\", \"password\": \"{pad}\"}}",
        fresh_mobile()
    );
    let resp = post_raw(
        &app,
        "/api/v1.0/sessions",
        body.into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["errno"], "4103");
}

#[tokio::test]
async fn json_is_read_whatever_the_content_type_and_unknown_fields_are_ignored() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    app.sign_up(&m, "password123").await;
    app.logout().await;
    let body =
        format!("{{\"mobile\": \"{m}\", \"password\": \"password123\", \"remember\": true}}");
    let resp = post_raw(
        &app,
        "/api/v1.0/sessions",
        body.into_bytes(),
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_eq!(json_of(resp).await["errno"], "0");
}

#[tokio::test]
async fn odd_mobiles_in_the_path_are_paramerr() {
    let app = spawn_app().await;
    for m in [
        "%EF%BC%91%EF%BC%93%EF%BC%98%EF%BC%90%EF%BC%90%EF%BC%91%EF%BC%93%EF%BC%98%EF%BC%90%EF%BC%90%EF%BC%90",
        "138%00138000",
        "abc",
        "1",
        "%2B",
    ] {
        let v = app
            .get_json(&format!(
                "/api/v1.0/sms_codes/{m}?image_code=ABCD&image_code_id=abc"
            ))
            .await;
        assert_eq!(v["errno"], "4103", "{m}: {v}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_keep_real_statuses_in_json() {
    let app = spawn_app().await;
    let resp = app.get("/api/v1.0/nothing-here").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let resp = app
        .client
        .put(app.url("/api/v1.0/users"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn the_dev_hooks_are_404_when_switched_off() {
    let app = crate::helpers::spawn_app_with(|c| c.dev.expose_secrets = false).await;
    assert_eq!(app.get("/dev/captcha/abc").await.status(), 404);
    assert_eq!(app.get("/dev/sms/13800138000").await.status(), 404);
}
