//! The `phoneauth` command itself: subcommands, config errors, redaction.

use std::process::Output;

use crate::helpers::TempDir;

fn phoneauth(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_phoneauth"));
    cmd.args(args)
        .current_dir(&dir.0)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run phoneauth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_every_command() {
    let dir = TempDir::new();
    let out = phoneauth(&dir, &["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["serve", "check-config", "migrate", "sms-test"] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let dir = TempDir::new();
    let secret = "ab".repeat(32);
    let out = phoneauth(
        &dir,
        &["check-config"],
        &[
            ("PHONEAUTH_SERVER__SECRET", &secret),
            ("PHONEAUTH_LIMITS__SMS_COOLDOWN_SECS", "90"),
            (
                "DATABASE_URL",
                "postgres://app:hunter2@db.internal/phoneauth",
            ),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("sms_cooldown_secs = 90"), "{shown}");
    assert!(
        shown.contains("postgres://app:<redacted>@db.internal/phoneauth"),
        "{shown}"
    );
    assert!(
        !shown.contains(&secret) && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn a_bad_value_stops_the_start_and_names_the_key_and_its_source() {
    let dir = TempDir::new();
    for args in [&["check-config"][..], &["serve"][..]] {
        let out = phoneauth(
            &dir,
            args,
            &[("PHONEAUTH_SERVER__LISTEN", "not-an-address")],
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("server.listen") && err.contains("PHONEAUTH_SERVER__LISTEN"),
            "{err}"
        );
    }
    std::fs::write(
        dir.0.join("phoneauth.toml"),
        "[store]\nurl = \"memcached://x\"\n",
    )
    .expect("write");
    let out = phoneauth(&dir, &["check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("store.url"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = TempDir::new();
    let out = phoneauth(&dir, &["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.0.join("phoneauth.db").exists());
}

#[test]
fn sms_test_sends_through_the_configured_chain_without_printing_the_number() {
    let dir = TempDir::new();
    let out = phoneauth(&dir, &["sms-test", "13812345678"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("138****5678") && shown.contains("log"),
        "{shown}"
    );
    assert!(!shown.contains("13812345678"));
    let out = phoneauth(&dir, &["sms-test", "12345"], &[]);
    assert!(!out.status.success());
}

#[test]
fn operators_manage_lists_users_and_read_the_audit_log_from_the_command_line() {
    let dir = TempDir::new();
    let run = |args: &[&str]| phoneauth(&dir, args, &[]);
    let json = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    };
    let added = json(&run(&["block", "add", "prefix", "+86139"]));
    assert_eq!(added["entry"]["value"], "86139");
    assert_eq!(added["changed"], true);
    assert_eq!(
        json(&run(&["block", "add", "prefix", "86139"]))["changed"],
        false
    );
    json(&run(&["safe", "add", "number", "+86 150 0000 0001"]));
    let listed = json(&run(&["block", "list"]));
    assert_eq!(
        listed["entries"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let safe = json(&run(&["safe", "list"]));
    assert_eq!(safe["entries"][0]["value"], "+8615000000001");

    let bad = run(&["block", "add", "country", "ZZ"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("ISO 3166"),
        "{}",
        text(&bad.stderr)
    );

    let missing = run(&["user", "show", "--mobile", "13800000000"]);
    assert!(!missing.status.success());
    let stats = json(&run(&["stats"]));
    assert!(stats["last_hour"]["sends"].is_u64(), "{stats}");
    let audit = json(&run(&["audit", "--event", "list_changed"]));
    let details: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(details.contains(&"block add prefix 86139"), "{details:?}");
    assert!(
        details.contains(&"safe add number 150****0001"),
        "numbers are masked: {details:?}"
    );
    assert_eq!(
        details.len(),
        2,
        "an entry already there is no change: {details:?}"
    );
    json(&run(&["block", "remove", "prefix", "86139"]));
    assert_eq!(
        json(&run(&["block", "list"]))["entries"],
        serde_json::json!([])
    );
}

#[test]
fn check_config_names_the_templates_a_vendor_lacks() {
    let dir = TempDir::new();
    let out = phoneauth(
        &dir,
        &["check-config"],
        &[
            ("PHONEAUTH_SMS__PROVIDER", "aliyun"),
            ("PHONEAUTH_SMS__ALIYUN__ACCESS_KEY_ID", "LTAIEXAMPLE"),
            ("PHONEAUTH_SMS__ALIYUN__ACCESS_KEY_SECRET", "secret"),
            ("PHONEAUTH_SMS__ALIYUN__SIGN_NAME", "测试"),
            ("PHONEAUTH_SMS__ALIYUN__TEMPLATE_CODE", "SMS_1"),
            ("PHONEAUTH_SMS__ALIYUN__TEMPLATES__LOGIN", "SMS_2"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let notes = text(&out.stderr);
    assert!(
        notes.contains("sms.aliyun: no template of its own for register/zh"),
        "{notes}"
    );
    assert!(!notes.contains("login/zh"), "login has its own: {notes}");
    assert!(
        notes.contains("sms.aliyun: no template for notice"),
        "{notes}"
    );
    let bad = phoneauth(
        &dir,
        &["check-config"],
        &[("PHONEAUTH_SMS__TWILIO__TEMPLATES__SIGNUP", "x")],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("sms.twilio.templates.signup"),
        "{}",
        text(&bad.stderr)
    );
}
