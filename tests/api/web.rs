//! Serving pages: the built-in ones, and an existing site's folders with
//! correct types, no listings and no way out of the folder.

use crate::helpers::{TempDir, spawn_app, spawn_app_with};

fn site() -> (TempDir, TempDir) {
    let root = TempDir::new();
    let outside = TempDir::new();
    let st = root.0.join("static");
    let html = root.0.join("html");
    std::fs::create_dir_all(st.join("js")).expect("dirs");
    std::fs::create_dir_all(&html).expect("dirs");
    std::fs::write(st.join("js/app.js"), "console.log(1)").expect("write");
    std::fs::write(st.join("style.css"), "body{}").expect("write");
    std::fs::write(st.join("logo.png"), [0x89, b'P', b'N', b'G']).expect("write");
    std::fs::write(html.join("index.html"), "<h1>home</h1>").expect("write");
    std::fs::write(html.join("register.html"), "<h1>register</h1>").expect("write");
    std::fs::write(outside.0.join("secret.txt"), "TOP SECRET").expect("write");
    std::fs::write(html.join(".env"), "TOP SECRET=1").expect("write");
    std::fs::create_dir_all(html.join(".git")).expect("dirs");
    std::fs::write(html.join(".git/config"), "TOP SECRET").expect("write");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outside.0.join("secret.txt"), st.join("leak.txt"))
            .expect("symlink");
        std::os::unix::fs::symlink(&outside.0, html.join("outside")).expect("symlink");
    }
    (root, outside)
}

#[tokio::test]
async fn a_hosted_site_is_served_with_the_right_types() {
    let (root, _outside) = site();
    let (st, html) = (root.0.join("static"), root.0.join("html"));
    let app = spawn_app_with(move |c| {
        c.web.static_dir = Some(st);
        c.web.pages_dir = Some(html);
    })
    .await;
    for (path, ct, body) in [
        (
            "/static/js/app.js",
            "text/javascript; charset=utf-8",
            "console.log(1)",
        ),
        ("/static/style.css", "text/css; charset=utf-8", "body{}"),
        (
            "/register.html",
            "text/html; charset=utf-8",
            "<h1>register</h1>",
        ),
        ("/", "text/html; charset=utf-8", "<h1>home</h1>"),
    ] {
        let resp = crate::helpers::plain_client()
            .get(app.url(path))
            .send()
            .await
            .expect("req");
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], ct, "{path}");
        let html = ct.starts_with("text/html");
        let sets_csrf = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or_default().starts_with("csrf_token="));
        if html {
            assert!(
                sets_csrf,
                "HTML pages hand out the csrf_token cookie ({path})"
            );
        }
        assert_eq!(resp.text().await.expect("body"), body);
    }
    assert_eq!(
        app.get("/static/logo.png").await.headers()["content-type"],
        "image/png"
    );
    // The built-in pages stepped aside, the API did not.
    assert_eq!(app.get("/signin").await.status(), 404);
    assert_eq!(app.image_code("webtest1").await.status(), 200);
}

#[tokio::test]
async fn nothing_outside_the_folders_and_no_listings() {
    let (root, _outside) = site();
    let (st, html) = (root.0.join("static"), root.0.join("html"));
    let app = spawn_app_with(move |c| {
        c.web.static_dir = Some(st);
        c.web.pages_dir = Some(html);
    })
    .await;
    for path in [
        "/static/../html/index.html",
        "/static/%2e%2e/html/index.html",
        "/static/%2E%2E%2Fhtml%2Findex.html",
        "/static/js/..%2F..%2Fhtml%2Findex.html",
        "/static/..%5chtml%5cindex.html",
        "/static/leak.txt",
        "/outside/secret.txt",
        "/static/js",
        "/static/js/",
        "/static/",
        "/nope.html",
        "/static/%00",
        "/.env",
        "/.git/config",
        "/%ff",
        "/static/%C0x",
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 404, "{path}");
        let body = resp.text().await.expect("body");
        assert!(
            !body.contains("TOP SECRET") && !body.contains("app.js"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_built_in_pages_are_served_by_default() {
    let app = spawn_app().await;
    crate::helpers::ensure_tls();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(app.url("/"))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/register");
    for (path, marker) in [
        ("/register", "data-page=\"register\""),
        ("/signin", "data-page=\"login\""),
        ("/account", "data-page=\"account\""),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert!(
            resp.headers()["content-security-policy"]
                .to_str()
                .expect("csp")
                .contains("default-src 'self'")
        );
        let body = resp.text().await.expect("body");
        assert!(body.contains(marker), "{path}");
        assert!(body.contains("<html lang=\"zh-CN\">"), "Chinese by default");
    }
    let en = app
        .client
        .get(app.url("/signin"))
        .header("accept-language", "en")
        .send()
        .await
        .expect("req");
    assert!(
        en.text()
            .await
            .expect("body")
            .contains("<html lang=\"en\">")
    );
    let js = app.get("/assets/app.js").await;
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    // No CDN: every script and stylesheet the pages load is ours.
    let page = app.get("/register").await.text().await.expect("body");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resources"
    );
}
