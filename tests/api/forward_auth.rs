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

fn nginx_binary() -> Option<std::path::PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nginx is required in CI (Debian package nginx); .ci/services.sh installs it");
        }
        eprintln!(
            "\n*** SKIPPED: nginx is not installed (apt-get install nginx); the forward-auth test through nginx did not run ***\n"
        );
    }
    found
}

/// A site's other service: answers with the user headers it was given.
async fn upstream() -> u16 {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/{*path}",
        get(|h: axum::http::HeaderMap| async move {
            let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            json!({ "user_id": get("x-user-id"), "name": get("x-user-name"), "mobile": get("x-user-mobile") })
                .to_string()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test]
async fn a_real_nginx_lets_only_logged_in_users_through_and_names_them() {
    let Some(nginx) = nginx_binary() else {
        return;
    };
    let app = spawn_app().await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "a good password").await["errno"], "0");
    let id = app.user().await["data"]["user_id"].as_i64().expect("id");
    let phoneauth_port = app.base.rsplit(':').next().expect("port").to_owned();
    let up = upstream().await;
    let port = crate::servers::free_port();
    let dir = crate::helpers::TempDir::new();
    let d = dir.0.display();
    let conf = format!(
        r#"daemon off; master_process off; worker_processes 1;
pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /_auth {{
      internal;
      proxy_pass http://127.0.0.1:{phoneauth_port}/auth/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }}
    location / {{
      auth_request /_auth;
      auth_request_set $user_id $upstream_http_x_user_id;
      auth_request_set $user_name $upstream_http_x_user_name;
      auth_request_set $user_mobile $upstream_http_x_user_mobile;
      proxy_set_header X-User-Id $user_id;
      proxy_set_header X-User-Name $user_name;
      proxy_set_header X-User-Mobile $user_mobile;
      proxy_pass http://127.0.0.1:{up};
    }}
  }}
}}
"#
    );
    let conf_path = dir.0.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let mut child = tokio::process::Command::new(nginx)
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.0.join("error.log"))
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx");
    let site = format!("http://127.0.0.1:{port}");
    let mut up_yet = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up_yet = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        up_yet,
        "nginx did not start: {}",
        std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default()
    );

    // Not logged in (even claiming to be somebody): 401, the upstream never asked.
    let resp = plain_client()
        .get(format!("{site}/api/v1.0/houses"))
        .header("x-user-id", "1")
        .send()
        .await
        .expect("anon");
    assert_eq!(resp.status(), 401);
    // Logged in (the browser's cookie jar): through, with who it is.
    let resp = app
        .client
        .get(format!("{site}/api/v1.0/houses"))
        .header("x-user-id", "999")
        .send()
        .await
        .expect("in");
    assert_eq!(resp.status(), 200);
    let seen: serde_json::Value =
        serde_json::from_str(&resp.text().await.expect("body")).expect("json");
    assert_eq!(
        seen["user_id"],
        id.to_string(),
        "the upstream sees the real id, not the client's claim"
    );
    assert_eq!(seen["mobile"], format!("+86{m}"));
    assert_eq!(seen["name"], m.as_str());
    // Logged out: 401 again.
    assert_eq!(app.logout().await["errno"], "0");
    assert_eq!(
        app.client
            .get(format!("{site}/api/v1.0/houses"))
            .send()
            .await
            .expect("out")
            .status(),
        401
    );
    let _ = child.kill().await;
}
