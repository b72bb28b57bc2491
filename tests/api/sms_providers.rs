//! The vendor clients against local mock vendors (wiremock): exact requests,
//! answers and error classes, malformed answers, HTTP 500, a vendor that
//! hangs; then failover through the whole service.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use phoneauth::clock::{ManualClock, SharedClock};
use phoneauth::config::{AliyunConfig, CloopenConfig, Config, TencentConfig, TwilioConfig};
use phoneauth::domain::{Lang, Mobile, MobilePolicy, Purpose};
use phoneauth::sms::aliyun::{self, Acs3Request, Aliyun};
use phoneauth::sms::cloopen::{self, Cloopen};
use phoneauth::sms::tencent::{self, Tc3Request, Tencent};
use phoneauth::sms::twilio::{self, Twilio};
use phoneauth::sms::{SmsError, SmsErrorKind, SmsMessage, SmsReceipt, SmsSender};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{fresh_mobile, spawn_app_with};

/// 2024-01-01T00:00:00Z.
const NOW_MS: u64 = 1_704_067_200_000;

fn clock() -> SharedClock {
    ManualClock::at(NOW_MS)
}

fn http_client(total: Duration) -> reqwest::Client {
    phoneauth::sms::http::client(Duration::from_secs(2), total).expect("client")
}

fn mobile() -> Mobile {
    Mobile::parse("13812345678", &MobilePolicy::default()).expect("mobile")
}

async fn send(p: &dyn SmsSender) -> Result<SmsReceipt, SmsError> {
    let m = mobile();
    p.send(&SmsMessage {
        mobile: &m,
        code: "123456",
        ttl_minutes: 5,
        lang: Lang::Zh,
        notice: false,
        purpose: Purpose::Register,
        send_id: "",
    })
    .await
}

fn host_of(server: &MockServer) -> String {
    server.uri().trim_start_matches("http://").to_owned()
}

/// Runs `sender` against `server` answering `status` + `body`, and returns
/// the error class (`None` for success).
async fn outcome(
    server: &MockServer,
    sender: &dyn SmsSender,
    status: u16,
    body: &str,
) -> Option<SmsErrorKind> {
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body.to_owned()))
        .mount(server)
        .await;
    send(sender).await.err().map(|e| e.kind)
}

/// A vendor that never answers is cut off by the total timeout; the request
/// had left, so the outcome is unknown (SPEC §5).
async fn assert_hang_is_bounded(server: &MockServer, sender: &dyn SmsSender) {
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(server)
        .await;
    let started = Instant::now();
    let err = send(sender).await.expect_err("a hanging vendor fails");
    assert_eq!(err.kind, SmsErrorKind::Unknown);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

// ---- Cloopen ------------------------------------------------------------------

fn cloopen_cfg(base: &str) -> CloopenConfig {
    CloopenConfig {
        base_url: base.to_owned(),
        account_sid: "aaf98f89sid".into(),
        auth_token: "token-secret".into(),
        app_id: "8a216da8app".into(),
        template_id: "1".into(),
        ..CloopenConfig::default()
    }
}

#[tokio::test]
async fn cloopen_sends_the_documented_request_and_reads_the_message_id() {
    let server = MockServer::start().await;
    let (sig, auth) = cloopen::sign("aaf98f89sid", "token-secret", "20240101080000");
    Mock::given(method("POST"))
        .and(path("/2013-12-26/Accounts/aaf98f89sid/SMS/TemplateSMS"))
        .and(query_param("sig", sig.as_str()))
        .and(header("authorization", auth.as_str()))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/json;charset=utf-8"))
        .and(body_json(json!({ "to": "13812345678", "appId": "8a216da8app", "templateId": "1", "datas": ["123456", "5"] })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "statusCode": "000000",
            "templateSMS": { "dateCreated": "20240101080000", "smsMessageSid": "ff8080813c373cab013c94b0f0512345" }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let p = Cloopen::new(
        cloopen_cfg(&server.uri()),
        http_client(Duration::from_secs(5)),
        clock(),
    )
    .expect("client");
    let r = send(&p).await.expect("accepted");
    assert_eq!(
        r.message_id.as_deref(),
        Some("ff8080813c373cab013c94b0f0512345")
    );
}

#[tokio::test]
async fn cloopen_errors_map_to_classes() {
    let server = MockServer::start().await;
    let p = Cloopen::new(
        cloopen_cfg(&server.uri()),
        http_client(Duration::from_millis(500)),
        clock(),
    )
    .expect("client");
    let cases = [
        (
            200,
            r#"{"statusCode":"160038","statusMsg":"短信验证码发送过频繁"}"#,
            Some(SmsErrorKind::RateLimited),
        ),
        (
            200,
            r#"{"statusCode":"160042","statusMsg":"号码格式有误"}"#,
            Some(SmsErrorKind::RejectedNumber),
        ),
        (
            200,
            r#"{"statusCode":"111109","statusMsg":"sig check failed"}"#,
            Some(SmsErrorKind::Config),
        ),
        (
            200,
            r#"{"statusCode":"160000","statusMsg":"system error"}"#,
            Some(SmsErrorKind::Transient),
        ),
        (200, "<html>gateway</html>", Some(SmsErrorKind::Transient)),
        (200, r#"{"unexpected":true}"#, Some(SmsErrorKind::Transient)),
        (500, "", Some(SmsErrorKind::Transient)),
    ];
    for (status, body, want) in cases {
        assert_eq!(
            outcome(&server, &p, status, body).await,
            want,
            "{status} {body}"
        );
    }
    assert_hang_is_bounded(&server, &p).await;
}

// ---- Aliyun ---------------------------------------------------------------------

fn aliyun_cfg(base: &str) -> AliyunConfig {
    AliyunConfig {
        base_url: base.to_owned(),
        access_key_id: "LTAIEXAMPLE".into(),
        access_key_secret: "EXAMPLESECRET".into(),
        sign_name: "阿里云短信测试".into(),
        template_code: "SMS_154950909".into(),
        ..AliyunConfig::default()
    }
}

#[tokio::test]
async fn aliyun_signs_the_request_over_the_host_it_addresses() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("PhoneNumbers", "13812345678"))
        .and(query_param("SignName", "阿里云短信测试"))
        .and(query_param("TemplateCode", "SMS_154950909"))
        .and(query_param("TemplateParam", r#"{"code":"123456"}"#))
        .and(header("x-acs-action", "SendSms"))
        .and(header("x-acs-version", "2017-05-25"))
        .and(header("x-acs-date", "2024-01-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "F655A8D5"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let p = Aliyun::new(
        aliyun_cfg(&server.uri()),
        http_client(Duration::from_secs(5)),
        clock(),
    )
    .expect("client");
    let r = send(&p).await.expect("accepted");
    assert_eq!(r.message_id.as_deref(), Some("900619746936498440^0"));

    // Recompute the signature from what the mock received.
    let req = &server.received_requests().await.expect("recorded")[0];
    let query: BTreeMap<String, String> = req
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let h = |n: &str| {
        req.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let nonce = h("x-acs-signature-nonce");
    assert_eq!(nonce.len(), 32, "a fresh nonce on every request");
    let signed: BTreeMap<String, String> = [
        ("host", host_of(&server)),
        ("x-acs-action", h("x-acs-action")),
        ("x-acs-content-sha256", h("x-acs-content-sha256")),
        ("x-acs-date", h("x-acs-date")),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-version", h("x-acs-version")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let want = aliyun::acs3_sign(
        &Acs3Request {
            method: "POST",
            path: "/",
            query: &query,
            headers: &signed,
            payload: &req.body,
        },
        "LTAIEXAMPLE",
        "EXAMPLESECRET",
    );
    assert_eq!(h("authorization"), want.authorization);
    assert!(req.body.is_empty());
}

#[tokio::test]
async fn aliyun_errors_map_to_classes() {
    let server = MockServer::start().await;
    let p = Aliyun::new(
        aliyun_cfg(&server.uri()),
        http_client(Duration::from_millis(500)),
        clock(),
    )
    .expect("client");
    let cases = [
        (
            200,
            r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控"}"#,
            Some(SmsErrorKind::RateLimited),
        ),
        (
            200,
            r#"{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"非法手机号"}"#,
            Some(SmsErrorKind::RejectedNumber),
        ),
        (
            400,
            r#"{"Code":"SignatureDoesNotMatch","Message":"bad signature"}"#,
            Some(SmsErrorKind::Config),
        ),
        (
            200,
            r#"{"Code":"isv.AMOUNT_NOT_ENOUGH","Message":"账户余额不足"}"#,
            Some(SmsErrorKind::Config),
        ),
        (
            200,
            r#"{"Code":"isp.SYSTEM_ERROR","Message":"isp.SYSTEM_ERROR"}"#,
            Some(SmsErrorKind::Transient),
        ),
        (200, "not json", Some(SmsErrorKind::Transient)),
        (500, "", Some(SmsErrorKind::Transient)),
    ];
    for (status, body, want) in cases {
        assert_eq!(
            outcome(&server, &p, status, body).await,
            want,
            "{status} {body}"
        );
    }
    assert_hang_is_bounded(&server, &p).await;
}

// ---- Tencent ------------------------------------------------------------------

fn tencent_cfg(base: &str) -> TencentConfig {
    TencentConfig {
        base_url: base.to_owned(),
        secret_id: "AKIDEXAMPLE".into(),
        secret_key: "EXAMPLEKEY".into(),
        sdk_app_id: "1400006666".into(),
        sign_name: "腾讯云".into(),
        template_id: "1110".into(),
        region: "ap-guangzhou".into(),
        ..TencentConfig::default()
    }
}

#[tokio::test]
async fn tencent_sends_the_exact_signed_body_and_headers() {
    let server = MockServer::start().await;
    let body = r#"{"PhoneNumberSet":["+8613812345678"],"SignName":"腾讯云","SmsSdkAppId":"1400006666","TemplateId":"1110","TemplateParamSet":["123456","5"]}"#;
    let host = host_of(&server);
    let want = tencent::tc3_sign(
        &Tc3Request {
            service: "sms",
            method: "POST",
            path: "/",
            query: "",
            headers: &[
                ("content-type", "application/json; charset=utf-8"),
                ("host", &host),
            ],
            payload: body.as_bytes(),
            timestamp: 1_704_067_200,
        },
        "AKIDEXAMPLE",
        "EXAMPLEKEY",
    );
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("content-type", "application/json; charset=utf-8"))
        .and(header("x-tc-action", "SendSms"))
        .and(header("x-tc-version", "2021-01-11"))
        .and(header("x-tc-timestamp", "1704067200"))
        .and(header("x-tc-region", "ap-guangzhou"))
        .and(body_string(body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "Response": {
            "SendStatusSet": [{ "SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": "+8613812345678",
                                "Fee": 1, "Code": "Ok", "Message": "send success", "IsoCode": "CN" }],
            "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279" } })))
        .expect(1)
        .mount(&server)
        .await;
    let p = Tencent::new(
        tencent_cfg(&server.uri()),
        http_client(Duration::from_secs(5)),
        clock(),
    )
    .expect("client");
    let r = send(&p).await.expect("accepted");
    assert_eq!(
        r.message_id.as_deref(),
        Some("5000:1045710669157053657849499619")
    );
    // Compared here rather than by a matcher: the value holds commas, which
    // header matchers read as a list.
    let req = &server.received_requests().await.expect("recorded")[0];
    assert_eq!(
        req.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(want.authorization.as_str())
    );
}

#[tokio::test]
async fn tencent_errors_map_to_classes_per_call_and_per_number() {
    let server = MockServer::start().await;
    let p = Tencent::new(
        tencent_cfg(&server.uri()),
        http_client(Duration::from_millis(500)),
        clock(),
    )
    .expect("client");
    let per_number = |code: &str| {
        json!({ "Response": { "SendStatusSet": [{ "Code": code, "Message": "x", "SerialNo": "", "PhoneNumber": "+8613812345678" }], "RequestId": "r" } }).to_string()
    };
    let call = |code: &str| {
        json!({ "Response": { "Error": { "Code": code, "Message": "x" }, "RequestId": "r" } })
            .to_string()
    };
    let cases = [
        (
            200,
            per_number("LimitExceeded.PhoneNumberThirtySecondLimit"),
            Some(SmsErrorKind::RateLimited),
        ),
        (
            200,
            per_number("InvalidParameterValue.IncorrectPhoneNumber"),
            Some(SmsErrorKind::RejectedNumber),
        ),
        (
            200,
            per_number("FailedOperation.TemplateIncorrectOrUnapproved"),
            Some(SmsErrorKind::Config),
        ),
        (
            200,
            call("AuthFailure.SignatureFailure"),
            Some(SmsErrorKind::Config),
        ),
        (
            200,
            call("RequestLimitExceeded"),
            Some(SmsErrorKind::RateLimited),
        ),
        (
            200,
            call("InternalError.Timeout"),
            Some(SmsErrorKind::Transient),
        ),
        (
            200,
            json!({ "Response": { "SendStatusSet": [], "RequestId": "r" } }).to_string(),
            Some(SmsErrorKind::Transient),
        ),
        (200, "{".to_owned(), Some(SmsErrorKind::Transient)),
        (502, "bad gateway".to_owned(), Some(SmsErrorKind::Transient)),
    ];
    for (status, body, want) in cases {
        assert_eq!(
            outcome(&server, &p, status, &body).await,
            want,
            "{status} {body}"
        );
    }
    assert_hang_is_bounded(&server, &p).await;
}

// ---- Twilio -------------------------------------------------------------------

fn twilio_cfg(base: &str) -> TwilioConfig {
    TwilioConfig {
        base_url: base.to_owned(),
        account_sid: "AC0123456789abcdef".into(),
        auth_token: "twilio-token".into(),
        from: "+15005550006".into(),
        webotp_domain: "auth.example.com".into(),
        ..TwilioConfig::default()
    }
}

#[tokio::test]
async fn twilio_posts_the_form_with_basic_auth_and_reads_the_sid() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json",
        ))
        .and(header(
            "authorization",
            twilio::basic_auth("AC0123456789abcdef", "twilio-token").as_str(),
        ))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM0123456789abcdef0123456789abcdef", "status": "queued", "error_code": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let p = Twilio::new(
        twilio_cfg(&server.uri()),
        http_client(Duration::from_secs(5)),
    )
    .expect("client");
    let r = send(&p).await.expect("accepted");
    assert_eq!(
        r.message_id.as_deref(),
        Some("SM0123456789abcdef0123456789abcdef")
    );
    let req = &server.received_requests().await.expect("recorded")[0];
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    assert_eq!(form["To"], "+8613812345678");
    assert_eq!(form["From"], "+15005550006");
    assert!(!form.contains_key("MessagingServiceSid"));
    assert_eq!(
        form["Body"],
        "您的验证码是123456，5分钟内有效。请勿告诉他人。\n\n@auth.example.com #123456"
    );
}

#[tokio::test]
async fn twilio_uses_the_messaging_service_when_configured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "sid": "SM1", "status": "accepted" })),
        )
        .mount(&server)
        .await;
    let cfg = TwilioConfig {
        from: String::new(),
        messaging_service_sid: "MG0123".into(),
        ..twilio_cfg(&server.uri())
    };
    let p = Twilio::new(cfg, http_client(Duration::from_secs(5))).expect("client");
    send(&p).await.expect("accepted");
    let req = &server.received_requests().await.expect("recorded")[0];
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    assert_eq!(form["MessagingServiceSid"], "MG0123");
    assert!(!form.contains_key("From"));
}

#[tokio::test]
async fn twilio_errors_map_to_classes() {
    let server = MockServer::start().await;
    let p = Twilio::new(
        twilio_cfg(&server.uri()),
        http_client(Duration::from_millis(500)),
    )
    .expect("client");
    let err = |code: u32, status: u16| {
        json!({ "code": code, "message": "x", "status": status }).to_string()
    };
    let cases = [
        (429, err(20429, 429), Some(SmsErrorKind::RateLimited)),
        (400, err(21211, 400), Some(SmsErrorKind::RejectedNumber)),
        (400, err(21610, 400), Some(SmsErrorKind::RejectedNumber)),
        (401, err(20003, 401), Some(SmsErrorKind::Config)),
        (400, err(21408, 400), Some(SmsErrorKind::Config)),
        (201, "{}".to_owned(), Some(SmsErrorKind::Transient)),
        (500, "oops".to_owned(), Some(SmsErrorKind::Transient)),
    ];
    for (status, body, want) in cases {
        assert_eq!(
            outcome(&server, &p, status, &body).await,
            want,
            "{status} {body}"
        );
    }
    assert_hang_is_bounded(&server, &p).await;
}

#[test]
fn vendor_timeouts_default_to_2_s_connect_and_5_s_total() {
    let c = Config::default();
    assert_eq!((c.sms.connect_timeout_ms, c.sms.timeout_ms), (2_000, 5_000));
}

// ---- failover through the service ------------------------------------------------

/// A service whose chain is tencent (primary) then cloopen (fallback), both
/// pointed at mock vendors.
async fn service_with_chain(
    primary: &MockServer,
    fallback: &MockServer,
) -> crate::helpers::TestApp {
    let (p, f) = (primary.uri(), fallback.uri());
    spawn_app_with(move |c| {
        c.sms.provider = phoneauth::config::ProviderKind::Tencent;
        c.sms.fallback = phoneauth::config::List(vec![phoneauth::config::ProviderKind::Cloopen]);
        c.sms.tencent = tencent_cfg(&p);
        c.sms.cloopen = cloopen_cfg(&f);
        c.sms.timeout_ms = 1_000;
    })
    .await
}

async fn answer(server: &MockServer, status: u16, body: Value, expected_calls: u64) {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(expected_calls)
        .mount(server)
        .await;
}

fn cloopen_ok() -> Value {
    json!({ "statusCode": "000000", "templateSMS": { "smsMessageSid": "m1" } })
}

#[tokio::test]
async fn a_primary_answering_500_falls_over_to_the_fallback() {
    let (primary, fallback) = (MockServer::start().await, MockServer::start().await);
    answer(&primary, 500, json!({}), 1).await;
    answer(&fallback, 200, cloopen_ok(), 1).await;
    let app = service_with_chain(&primary, &fallback).await;
    let (id, ans) = app.captcha().await;
    let m = fresh_mobile();
    assert_eq!(app.sms_code(&m, &ans, &id).await["errno"], "0");
    assert!(app.dev_sms(&m).await.is_some());
}

#[tokio::test]
async fn a_rejected_number_does_not_try_the_fallback_and_withdraws_the_code() {
    let (primary, fallback) = (MockServer::start().await, MockServer::start().await);
    let rejected = json!({ "Response": { "SendStatusSet": [{ "Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "x" }], "RequestId": "r" } });
    answer(&primary, 200, rejected, 1).await;
    answer(&fallback, 200, cloopen_ok(), 0).await;
    let app = service_with_chain(&primary, &fallback).await;
    let (id, ans) = app.captcha().await;
    let m = fresh_mobile();
    assert_eq!(app.sms_code(&m, &ans, &id).await["errno"], "4301");
    assert_eq!(app.dev_sms(&m).await, None);
}

#[tokio::test]
async fn when_the_whole_chain_fails_each_provider_was_tried_once_and_the_answer_is_thirderr() {
    let (primary, fallback) = (MockServer::start().await, MockServer::start().await);
    answer(&primary, 503, json!({}), 1).await;
    answer(
        &fallback,
        200,
        json!({ "statusCode": "160000", "statusMsg": "system error" }),
        1,
    )
    .await;
    let app = service_with_chain(&primary, &fallback).await;
    let (id, ans) = app.captcha().await;
    let m = fresh_mobile();
    assert_eq!(app.sms_code(&m, &ans, &id).await["errno"], "4301");
    assert_eq!(app.dev_sms(&m).await, None, "the code is withdrawn");
}

#[tokio::test]
async fn a_selected_provider_without_credentials_fails_at_start_naming_the_key() {
    let mut c = Config::default();
    c.sms.provider = phoneauth::config::ProviderKind::Aliyun;
    let msg = c.validated().expect_err("no credentials").to_string();
    assert!(msg.contains("sms.aliyun.access_key_id"), "{msg}");
    assert!(
        msg.contains("PHONEAUTH_SMS__ALIYUN__ACCESS_KEY_SECRET"),
        "{msg}"
    );
    let mut c = Config::default();
    c.sms.fallback = phoneauth::config::List(vec![phoneauth::config::ProviderKind::Log]);
    assert!(
        c.validated()
            .expect_err("twice")
            .to_string()
            .contains("listed twice")
    );
}

#[tokio::test]
async fn templates_follow_the_purpose_and_language_and_notices_need_their_own() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("TemplateCode", "SMS_LOGIN_EN"))
        .and(query_param("TemplateParam", r#"{"code":"123456"}"#))
        .and(query_param("OutId", "send-0001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Code": "OK", "Message": "OK", "BizId": "B1", "RequestId": "R1"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("TemplateCode", "SMS_NOTICE"))
        .and(query_param("TemplateParam", "{}"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Code": "OK", "Message": "OK", "BizId": "B2", "RequestId": "R2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = aliyun_cfg(&server.uri());
    cfg.templates = [
        ("login_en", "SMS_LOGIN_EN"),
        ("login", "SMS_LOGIN"),
        ("notice", "SMS_NOTICE"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let p = Aliyun::new(cfg.clone(), http_client(Duration::from_secs(5)), clock()).expect("client");
    let m = mobile();
    let msg = |purpose, lang, notice| SmsMessage {
        mobile: &m,
        code: "123456",
        ttl_minutes: 5,
        lang,
        notice,
        purpose,
        send_id: "send-0001",
    };
    p.send(&msg(Purpose::Login, Lang::En, false))
        .await
        .expect("login in English");
    p.send(&msg(Purpose::Register, Lang::Zh, true))
        .await
        .expect("the notice");
    // Without a notice template, a notice is refused before any request.
    cfg.templates.clear();
    let bare = Aliyun::new(cfg, http_client(Duration::from_secs(5)), clock()).expect("client");
    let e = bare
        .send(&msg(Purpose::Register, Lang::Zh, true))
        .await
        .expect_err("no notice template");
    assert_eq!(e.kind, SmsErrorKind::Config);
}

#[tokio::test]
async fn a_route_sends_its_countries_through_its_own_chain() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "sid": "SM1" })))
        .expect(1)
        .mount(&server)
        .await;
    let sms = phoneauth::config::SmsConfig {
        twilio: twilio_cfg(&server.uri()),
        routes: serde_json::from_value(json!([{ "countries": ["GB"], "providers": ["twilio"] }]))
            .expect("routes"),
        ..Default::default()
    };
    let chain = phoneauth::sms::SmsChain::from_config(&sms, clock()).expect("chain");
    let policy = MobilePolicy::new(&["GB"]).expect("policy");
    let (cn, gb) = (
        Mobile::parse("13812345678", &policy).expect("cn"),
        Mobile::parse("+44 7400 123456", &policy).expect("gb"),
    );
    let msg = |m| SmsMessage {
        mobile: m,
        code: "123456",
        ttl_minutes: 5,
        lang: Lang::En,
        notice: false,
        purpose: Purpose::Login,
        send_id: "",
    };
    assert_eq!(
        chain.send(&msg(&gb)).await.expect("twilio").provider,
        "twilio"
    );
    assert_eq!(chain.send(&msg(&cn)).await.expect("log").provider, "log");
}
