use serde_json::json;

use crate::helpers::{fresh_mobile, json_of, spawn_app, spawn_app_with};

fn csrf_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("csrf_token="))
        .map(str::to_owned)
}

#[tokio::test]
async fn every_answer_to_a_request_without_a_token_sets_one() {
    let app = spawn_app().await;
    let plain = crate::helpers::plain_client();
    for path in ["/api/v1.0/session", "/healthz", "/no/such/route"] {
        let resp = plain.get(app.url(path)).send().await.expect("request");
        let c = csrf_cookie(&resp).unwrap_or_else(|| panic!("{path} sets no csrf_token"));
        let value = c
            .trim_start_matches("csrf_token=")
            .split(';')
            .next()
            .expect("value");
        assert_eq!(value.len(), 32);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(c.contains("Path=/"));
        assert!(
            !c.to_ascii_lowercase().contains("httponly"),
            "pages must read it: {c}"
        );
    }
    let resp = plain
        .get(app.url("/healthz"))
        .header("cookie", "csrf_token=0123456789abcdef0123456789abcdef")
        .send()
        .await
        .expect("request");
    assert_eq!(csrf_cookie(&resp), None, "an existing token is kept");
}

#[tokio::test]
async fn cross_site_posts_are_refused_with_403() {
    let app = spawn_app().await;
    let body = json!({ "mobile": fresh_mobile(), "password": "password123" });
    let host = app.base.trim_start_matches("http://").to_owned();
    let cases = [
        ("sec-fetch-site", "cross-site".to_owned()),
        ("sec-fetch-site", "same-site".to_owned()),
        ("origin", "http://evil.example".to_owned()),
        ("origin", format!("http://{host}.evil.example")),
    ];
    for (name, value) in cases {
        let resp = crate::helpers::plain_client()
            .post(app.url("/api/v1.0/sessions"))
            .header(name, value.as_str())
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 403, "{name}: {value}");
        assert!(
            csrf_cookie(&resp).is_some(),
            "a refusal still hands out a token"
        );
        assert_eq!(json_of(resp).await["errno"], "4201");
    }
}

#[tokio::test]
async fn same_origin_and_plain_clients_pass() {
    let app = spawn_app().await;
    let body = json!({ "mobile": fresh_mobile(), "password": "password123" });
    let host = app.base.trim_start_matches("http://").to_owned();
    let resp = app
        .client
        .post(app.url("/api/v1.0/sessions"))
        .header("sec-fetch-site", "same-origin")
        .header("origin", format!("http://{host}"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(
        json_of(resp).await["errno"],
        "4004",
        "reaches the login check"
    );
    let v = app.post_json("/api/v1.0/sessions", &body).await;
    assert_eq!(v["errno"], "4004");
}

#[tokio::test]
async fn a_token_header_must_match_the_cookie() {
    let app = spawn_app().await;
    let body = json!({ "mobile": fresh_mobile(), "password": "password123" });
    let token = "0123456789abcdef0123456789abcdef";
    let send = |header: &'static str, value: &'static str| {
        app.client
            .post(app.url("/api/v1.0/sessions"))
            .header("cookie", format!("csrf_token={token}"))
            .header(header, value)
            .json(&body)
            .send()
    };
    assert_eq!(send("x-csrftoken", token).await.expect("req").status(), 200);
    assert_eq!(
        send("x-csrf-token", token).await.expect("req").status(),
        200
    );
    assert_eq!(
        send("x-csrftoken", "ffffffffffffffffffffffffffffffff")
            .await
            .expect("req")
            .status(),
        403
    );
}

#[tokio::test]
async fn require_token_makes_the_header_mandatory() {
    let app = spawn_app_with(|c| c.csrf.require_token = true).await;
    let body = json!({ "mobile": fresh_mobile(), "password": "password123" });
    let resp = app
        .client
        .post(app.url("/api/v1.0/sessions"))
        .json(&body)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 403);
    let token = "0123456789abcdef0123456789abcdef";
    let resp = app
        .client
        .post(app.url("/api/v1.0/sessions"))
        .header("cookie", format!("csrf_token={token}"))
        .header("x-csrftoken", token)
        .json(&body)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 200);
    // Reads stay open.
    assert_eq!(app.get("/api/v1.0/session").await.status(), 200);
}
