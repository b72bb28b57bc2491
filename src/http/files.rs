//! Serving an existing site's files (`web.static_dir` at `/static/<path>`,
//! `web.pages_dir` at `/<name>`) and phoneauth's own built-in pages.
//!
//! Files are served only from inside their folder: a path with `..`, `.`,
//! empty or backslash segments is refused, and the resolved path (symlinks
//! followed) must still lie inside the folder's resolved root. Directories are
//! never listed. Files that hold secrets by their kind (databases and their
//! journals, secret files, logs) are never served, and the server refuses to
//! start when a served folder holds the database or the secret file (see
//! `app::pages`). Every miss is the same JSON 404.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::extract::rejection::PathRejection;
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};

use super::AppState;
use super::envelope;
use crate::domain::{Errno, Lang};

/// A folder whose files are served, resolved once at start.
#[derive(Clone)]
pub struct Folder(Arc<PathBuf>);

impl Folder {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        Ok(Self(Arc::new(dir.canonicalize()?)))
    }

    /// The file for a URL path inside this folder, if there is one.
    async fn resolve(&self, rel: &str) -> Option<PathBuf> {
        let rel = Path::new(rel);
        // Only plain names; hidden ones (`.env`, `.git/…`) are never served.
        let clean = rel.components().all(|c| match c {
            Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
            _ => false,
        });
        if is_private_file(rel) {
            return None;
        }
        if !clean || rel.as_os_str().is_empty() || rel.to_string_lossy().contains('\\') {
            return None;
        }
        let real = tokio::fs::canonicalize(self.0.join(rel)).await.ok()?;
        if !real.starts_with(self.0.as_path()) {
            return None;
        }
        let meta = tokio::fs::metadata(&real).await.ok()?;
        meta.is_file().then_some(real)
    }

    pub async fn serve(&self, rel: &str) -> Response {
        let Some(path) = self.resolve(rel).await else {
            return not_found();
        };
        match tokio::fs::read(&path).await {
            Ok(bytes) => file_response(&path, bytes),
            Err(_) => not_found(),
        }
    }
}

/// Names that hold secrets by their kind: databases and their journals,
/// secret files, logs.
pub fn is_private_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    const SUFFIXES: &[&str] = &[
        ".db", ".sqlite", ".sqlite3", "-wal", "-shm", "-journal", ".secret", ".log",
    ];
    SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The files under `dir` that must never be served (see
/// [`is_private_file`]), looked for a bounded number of entries deep.
pub fn private_files_in(dir: &Path) -> Vec<PathBuf> {
    const MAX_ENTRIES: usize = 20_000;
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return found;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(_) if is_private_file(&path) => found.push(path),
                _ => {}
            }
        }
    }
    found
}

fn not_found() -> Response {
    envelope::plain(StatusCode::NOT_FOUND, Errno::ParamErr, "not found")
}

/// Content type by extension; unknown types are served as bytes.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

fn file_response(path: &Path, bytes: Vec<u8>) -> Response {
    let ct = content_type(path);
    let cache = if ct.starts_with("text/html") {
        "no-cache"
    } else {
        "public, max-age=3600"
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Routes for a hosted site: `/static/<path>` and/or `/<name>` with `/` as
/// `index.html`. Other methods and undecodable paths get the same 404 as a
/// missing file.
pub fn hosted(static_dir: Option<Folder>, pages_dir: Option<Folder>) -> Router<AppState> {
    let serve = |dir: Folder| {
        any(
            move |method: Method, p: Result<UrlPath<String>, PathRejection>| {
                let dir = dir.clone();
                async move {
                    match p {
                        Ok(UrlPath(p)) if readable(&method) => dir.serve(&p).await,
                        _ => not_found(),
                    }
                }
            },
        )
    };
    let mut r = Router::new();
    if let Some(dir) = static_dir {
        r = r.route("/static/{*path}", serve(dir));
    }
    if let Some(dir) = pages_dir {
        let index = dir.clone();
        r = r
            .route(
                "/",
                any(move |method: Method| {
                    let dir = index.clone();
                    async move {
                        if readable(&method) {
                            dir.serve("index.html").await
                        } else {
                            not_found()
                        }
                    }
                }),
            )
            .route("/{*path}", serve(dir));
    }
    r
}

/// Avatars of a file store at `/avatars/<name>`: only names phoneauth
/// gave (random hex and an image extension), served as the image type of
/// that extension and never sniffed as anything else.
pub fn avatars(dir: PathBuf) -> Router<AppState> {
    let dir = Arc::new(dir);
    Router::new().route(
        "/avatars/{name}",
        get(move |UrlPath(name): UrlPath<String>| {
            let dir = dir.clone();
            async move {
                let Some(kind) = crate::avatars::kind_of_name(&name) else {
                    return not_found();
                };
                match tokio::fs::read(dir.join(&name)).await {
                    Ok(bytes) => {
                        let mut resp = bytes.into_response();
                        let h = resp.headers_mut();
                        h.insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(kind.content_type),
                        );
                        h.insert(
                            "x-content-type-options",
                            HeaderValue::from_static("nosniff"),
                        );
                        h.insert(
                            header::CACHE_CONTROL,
                            HeaderValue::from_static("public, max-age=86400"),
                        );
                        resp
                    }
                    Err(_) => not_found(),
                }
            }
        }),
    )
}

fn readable(m: &Method) -> bool {
    *m == Method::GET || *m == Method::HEAD
}

/// The head and top bar every built-in page shares; `{{main}}` is the page.
const LAYOUT: &str = include_str!("../web/layout.html");
const PAGE_REGISTER: Page = Page {
    name: "register",
    title: "注册 · phoneauth",
    main: include_str!("../web/register.html"),
};
const PAGE_LOGIN: Page = Page {
    name: "login",
    title: "登录 · phoneauth",
    main: include_str!("../web/login.html"),
};
const PAGE_FORGOT: Page = Page {
    name: "forgot",
    title: "找回密码 · phoneauth",
    main: include_str!("../web/forgot.html"),
};
const PAGE_ACCOUNT: Page = Page {
    name: "account",
    title: "我的账号 · phoneauth",
    main: include_str!("../web/account.html"),
};
const APP_JS: &str = include_str!("../web/assets/app.js");
const APP_CSS: &str = include_str!("../web/assets/app.css");

/// phoneauth's own pages, compiled into the binary. The login page lives at
/// `/signin` because `POST /login` belongs to the steps route set.
pub fn builtin() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/register") }))
        .route(
            "/register",
            get(|lang: Lang| async move { page(PAGE_REGISTER, lang) }),
        )
        .route(
            "/signin",
            get(|lang: Lang| async move { page(PAGE_LOGIN, lang) }),
        )
        .route(
            "/forgot",
            get(|lang: Lang| async move { page(PAGE_FORGOT, lang) }),
        )
        .route(
            "/account",
            get(|lang: Lang| async move { page(PAGE_ACCOUNT, lang) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
}

/// A built-in page: its name (the `data-page` its script reads and the key of
/// its texts), its Chinese title, and what goes below the top bar.
struct Page {
    name: &'static str,
    title: &'static str,
    main: &'static str,
}

/// A page in the request's language (the page's switch can change it).
fn page(p: Page, lang: Lang) -> Response {
    let code = match lang {
        Lang::Zh => "zh-CN",
        Lang::En => "en",
    };
    let html = LAYOUT
        .replace("{{main}}", p.main)
        .replace("{{page}}", p.name)
        .replace("{{title}}", p.title)
        .replace("{{lang}}", code);
    let mut resp = html.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
    );
    resp
}

fn asset(body: &'static str, ct: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
