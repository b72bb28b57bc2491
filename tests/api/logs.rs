//! Runs the real binary and reads everything it logs during a whole flow: no
//! mobile number, code, captcha answer, password or session id may appear,
//! except the code on the development provider's `[dev-sms]` line.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::{TempDir, client, fresh_mobile};

#[tokio::test]
async fn logs_hold_no_secret_and_no_whole_mobile_number() {
    let dir = TempDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_phoneauth"))
        .arg("serve")
        .current_dir(&dir.0)
        .env("PHONEAUTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("PHONEAUTH_SERVER__ADMIN_LISTEN", "off")
        .env("PHONEAUTH_DEV__EXPOSE_SECRETS", "true")
        .env("PHONEAUTH_COMPAT__ROUTES", "ihome,steps")
        .env("PHONEAUTH_PASSWORD__ARGON2_MEMORY_KIB", "256")
        .env("PHONEAUTH_PASSWORD__ARGON2_ITERATIONS", "1")
        .env("PHONEAUTH_LIMITS__SMS_COOLDOWN_SECS", "1")
        .env("RUST_LOG", "debug")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start phoneauth");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut log = Vec::new();

    // The listening line carries the port.
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            let found = line.split("addr=").nth(1).map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            });
            log.push(line);
            if let Some(a) = found {
                return a;
            }
        }
        panic!("phoneauth exited before listening:\n{}", log.join("\n"));
    })
    .await
    .expect("phoneauth starts within 60 s");
    let base = format!("http://{addr}");
    let http = client();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            http.get(url)
                .send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .ok()
        }
    };

    let mobile = fresh_mobile();
    let password = "Pa55word-unique-7f3a";
    let id = "logtestcaptcha";
    http.get(format!("{base}/api/v1.0/image_codes/{id}"))
        .send()
        .await
        .expect("captcha");
    let answer = get(format!("/dev/captcha/{id}")).await.expect("json")["data"]["text"]
        .as_str()
        .expect("answer")
        .to_owned();
    let sent = get(format!(
        "/api/v1.0/sms_codes/{mobile}?image_code={answer}&image_code_id={id}"
    ))
    .await;
    assert_eq!(sent.expect("json")["errno"], "0");
    let code = get(format!("/dev/sms/{mobile}")).await.expect("json")["data"]["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for c in [wrong, code.as_str()] {
        http.post(format!("{base}/api/v1.0/users"))
            .json(&json!({ "mobile": mobile, "sms_code": c, "password": password }))
            .send()
            .await
            .expect("register");
    }
    http.post(format!("{base}/api/v1.0/sessions"))
        .json(&json!({ "mobile": mobile, "password": "wrong-password-1" }))
        .send()
        .await
        .expect("login");
    let resp = http
        .post(format!("{base}/api/v1.0/sessions"))
        .json(&json!({ "mobile": format!("+86{mobile}"), "password": password }))
        .send()
        .await
        .expect("login");
    let session_id = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned();
    http.get(format!("{base}/api/v1.0/user"))
        .send()
        .await
        .expect("user");

    // The account events of SPEC §9: identity, codes of other purposes,
    // sign-in by code, reset and change of the password.
    let id_card = "11010519491231002X";
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{base}{path}")).json(&body);
        async move {
            req.send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let v = post(
        "/api/v1.0/users/auth",
        json!({ "real_name": "张三", "id_card": id_card }),
    )
    .await;
    assert_eq!(v["errno"], "0", "{v}");
    let mut codes = vec![code.clone()];
    let new_password = "Another-pa55word-9c1e";
    for purpose in ["login", "reset"] {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let id = format!("logtest{purpose}");
        http.get(format!("{base}/api/v1.0/image_codes/{id}"))
            .send()
            .await
            .expect("captcha");
        let answer = get(format!("/dev/captcha/{id}")).await.expect("json")["data"]["text"]
            .as_str()
            .expect("answer")
            .to_owned();
        let body = json!({ "mobile": mobile, "purpose": purpose, "image_code": answer, "image_code_id": id });
        assert_eq!(post("/api/v1.0/sms_codes", body).await["errno"], "0");
        let c = get(format!("/dev/sms/{mobile}")).await.expect("json")["data"]["code"]
            .as_str()
            .expect("code")
            .to_owned();
        let v = match purpose {
            "login" => {
                post(
                    "/api/v1.0/sessions/sms",
                    json!({ "mobile": mobile, "sms_code": c }),
                )
                .await
            }
            _ => {
                post(
                    "/api/v1.0/password/reset",
                    json!({ "mobile": mobile, "sms_code": c, "password": new_password }),
                )
                .await
            }
        };
        assert_eq!(v["errno"], "0", "{purpose}: {v}");
        codes.push(c);
    }
    let changed = "Third-pa55word-2b8d";
    let resp = http
        .put(format!("{base}/api/v1.0/user/password"))
        .json(&json!({ "old_password": new_password, "password": changed }))
        .send()
        .await
        .expect("change");
    assert_eq!(resp.json::<Value>().await.expect("json")["errno"], "0");

    child.start_kill().expect("stop phoneauth");
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push(line);
        }
    })
    .await;
    let _ = child.wait().await;

    let text = log.join("\n");
    assert!(
        text.contains("DEVELOPMENT ONLY"),
        "the log provider warns at start"
    );
    assert!(
        text.contains("[dev-sms]"),
        "the dev provider logged the message"
    );
    assert!(
        text.contains("ROUTE SET `steps` WITHOUT A CAPTCHA"),
        "steps without a captcha warns at start"
    );
    // Each request line names the client's network, never its address.
    let request_lines: Vec<&String> = log.iter().filter(|l| l.contains("request done")).collect();
    assert!(!request_lines.is_empty());
    for line in &request_lines {
        assert!(
            line.contains("client_net=127.0.0.0/24"),
            "no client network in: {line}"
        );
        assert!(
            !line.contains("127.0.0.1"),
            "whole client address in: {line}"
        );
    }
    let masked = format!("{}****{}", &mobile[..3], &mobile[7..]);
    assert!(
        text.contains(&masked),
        "masked mobiles are fine and expected"
    );
    for line in &log {
        assert!(!line.contains(&mobile), "whole mobile number in: {line}");
        assert!(!line.contains(password), "password in: {line}");
        assert!(
            !line.contains(new_password) && !line.contains(changed),
            "password in: {line}"
        );
        assert!(
            !line.contains(id_card) && !line.contains("19491231"),
            "ID number in: {line}"
        );
        assert!(!line.contains(&session_id), "session id in: {line}");
        assert!(
            !line
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == answer),
            "captcha answer in: {line}"
        );
        for code in &codes {
            if line.contains(code.as_str()) {
                assert!(
                    line.contains("[dev-sms]"),
                    "code outside the [dev-sms] line: {line}"
                );
            }
        }
    }
}
