//! SPEC §11 forward auth: `GET /auth/verify` tells the site's other services
//! who is logged in, from the session cookie or the app's `token` header.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, fresh_mobile, plain_client, spawn_app};

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn forward_auth_names_the_user_of_a_live_session_and_refuses_the_rest() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "a good password").await["errno"], "0");
    let user = app.user().await;
    let id = user["data"]["user_id"].as_i64().expect("id");

    let resp = app.get("/auth/verify").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-user-id"), Some(id.to_string().as_str()));
    assert_eq!(
        header(&resp, "x-user-mobile"),
        Some(format!("+86{m}").as_str())
    );
    assert_eq!(header(&resp, "x-user-name"), Some(m.as_str()));
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));

    // A new name reaches the header at once, percent-encoded.
    let resp = app
        .client
        .put(app.url("/api/v1.0/users/name"))
        .json(&json!({ "name": "老王 1" }))
        .send()
        .await
        .expect("rename");
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json")["errno"],
        "0"
    );
    let resp = app.get("/auth/verify").await;
    assert_eq!(header(&resp, "x-user-name"), Some("%E8%80%81%E7%8E%8B%201"));

    // The app flow's `token` header works like the cookie.
    let login = plain_client()
        .post(app.url("/api/v1.0/sessions"))
        .json(&json!({ "mobile": m, "password": "a good password" }))
        .send()
        .await
        .expect("login");
    let token = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned();
    let by_token = |t: String| {
        let req = plain_client()
            .get(app.url("/auth/verify"))
            .header("token", t);
        async move { req.send().await.expect("verify") }
    };
    let resp = by_token(token.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-user-id"), Some(id.to_string().as_str()));
    for bad in ["", "not-a-token", &"0".repeat(64)] {
        let resp = by_token(bad.to_owned()).await;
        assert_eq!(resp.status(), 401, "{bad:?}");
        assert!(
            resp.bytes().await.expect("body").is_empty(),
            "the body is empty"
        );
    }
    assert_eq!(
        plain_client()
            .get(app.url("/auth/verify"))
            .send()
            .await
            .expect("anon")
            .status(),
        401
    );

    // A disabled user's sessions stop working at once.
    let admin = app.admin.as_deref().expect("admin");
    let resp = plain_client()
        .request(Method::POST, format!("{admin}/admin/users/{id}/disable"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("disable");
    assert_eq!(resp.status(), 200);
    assert_eq!(by_token(token).await.status(), 401);
    assert_eq!(app.get("/auth/verify").await.status(), 401);
}
