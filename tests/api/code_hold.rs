//! SPEC §7 item 4: a registration that took its SMS code and then failed —
//! the database errored, or the instance died — does not cost the user the
//! code: the same code registers the number, on any instance, at the latest
//! 15 s later, and still makes at most one account.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Child;

use crate::backends::{fresh_pg_schema, fresh_prefix, postgres_url, redis_url, shared_secret};
use crate::helpers::{TempDir, client, fresh_mobile, serve_process, spawn_app};

#[tokio::test]
async fn a_database_error_after_the_code_was_taken_leaves_the_code_usable() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    let code = app.send_code(&m).await;
    app.users.set_down(true);
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4001"
    );
    app.users.set_down(false);
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "0",
        "the same code registers once the database is back"
    );
    assert_eq!(
        app.register(&m, &code, "password123").await["errno"],
        "4002",
        "and it is used up now"
    );
}

/// A `phoneauth serve` of its own, on the shared Redis and PostgreSQL, with
/// argon2 slow enough (about a second) that a kill lands mid-registration.
async fn instance(
    dir: &TempDir,
    redis: &str,
    prefix: &str,
    db: &str,
    secret: &str,
) -> (Child, String) {
    serve_process(
        dir,
        &[
            ("PHONEAUTH_SERVER__SECRET", secret),
            ("PHONEAUTH_STORE__URL", redis),
            ("PHONEAUTH_STORE__KEY_PREFIX", prefix),
            ("PHONEAUTH_DATABASE__URL", db),
            ("PHONEAUTH_PASSWORD__ARGON2_MEMORY_KIB", "65536"),
            ("PHONEAUTH_PASSWORD__ARGON2_ITERATIONS", "12"),
            ("PHONEAUTH_PASSWORD__QUEUE_TIMEOUT_MS", "10000"),
        ],
    )
    .await
}

#[tokio::test]
async fn an_instance_killed_mid_registration_does_not_cost_the_code() {
    let _alone = crate::servers::TIMED_FAULTS.write().await;
    let (Some(redis), Some(pg)) = (redis_url(), postgres_url()) else {
        return;
    };
    let db = fresh_pg_schema(&pg).await;
    let (prefix, secret) = (fresh_prefix(), shared_secret());
    let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
    let (mut a, base_a) = instance(&dir_a, &redis, &prefix, &db, &secret).await;
    let (_b, base_b) = instance(&dir_b, &redis, &prefix, &db, &secret).await;
    let http = client();
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("json")
        }
    };

    let m = fresh_mobile();
    let id = "holdtestcaptcha";
    http.get(format!("{base_a}/api/v1.0/image_codes/{id}"))
        .send()
        .await
        .expect("captcha");
    let answer = get(format!("{base_a}/dev/captcha/{id}")).await["data"]["text"]
        .as_str()
        .expect("answer")
        .to_owned();
    let sent = get(format!(
        "{base_a}/api/v1.0/sms_codes/{m}?image_code={answer}&image_code_id={id}"
    ))
    .await;
    assert_eq!(sent["errno"], "0", "{sent}");
    let code = get(format!("{base_b}/dev/sms/{m}")).await["data"]["code"]
        .as_str()
        .expect("code")
        .to_owned();

    // A takes the code and starts hashing; it dies before the account is
    // written.
    let body = json!({ "mobile": m, "sms_code": code, "password": "password123" });
    let on_a = {
        let (http, url, body) = (
            http.clone(),
            format!("{base_a}/api/v1.0/users"),
            body.clone(),
        );
        tokio::spawn(async move { http.post(url).json(&body).send().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.start_kill().expect("kill A");
    let _ = a.wait().await;
    let killed = Instant::now();
    assert!(
        on_a.await.expect("join").is_err(),
        "A answered before it was killed"
    );

    // The same code on B: refused while A's hold lasts, then it registers.
    let registered = loop {
        let v: Value = http
            .post(format!("{base_b}/api/v1.0/users"))
            .json(&body)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        match v["errno"].as_str() {
            Some("0") => break killed.elapsed(),
            Some("4002") => {}
            other => panic!("unexpected {other:?}: {v}"),
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the code was not usable again 20 s after the crash"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(registered <= Duration::from_secs(16), "took {registered:?}");
    eprintln!("code hold: registered on B {registered:?} after A was killed");
    // One account, with the password, and the code is used up.
    let login = http
        .post(format!("{base_b}/api/v1.0/sessions"))
        .json(&json!({ "mobile": m, "password": "password123" }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.json::<Value>().await.expect("json")["errno"], "0");
    let again: Value = http
        .post(format!("{base_b}/api/v1.0/users"))
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(again["errno"], "4002");
}
