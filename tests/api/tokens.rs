//! SPEC §11 tokens: EdDSA JWTs verified against the published JWKS by an
//! independent library (PyJWT), never by our own code alone.

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, fresh_mobile, plain_client, spawn_app};

/// PyJWT verifying `token` against `jwks`; its output, or why it refused.
fn pyjwt(token: &str, jwks: &Value, issuer: &str) -> Option<Result<Value, String>> {
    const SCRIPT: &str = r#"
import json, sys, jwt
token, jwks, issuer = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
keys = jwt.PyJWKSet.from_dict(jwks)
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in keys.keys if k.key_id == kid)
try:
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience="phoneauth", issuer=issuer)
except jwt.InvalidTokenError as e:
    print(type(e).__name__, file=sys.stderr)
    sys.exit(3)
print(json.dumps(claims))
"#;
    if !crate::helpers::python_has("jwt, cryptography", "'PyJWT[crypto]'") {
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", SCRIPT, token, &jwks.to_string(), issuer])
        .output()
        .expect("run python3");
    Some(if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("claims"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

#[tokio::test]
async fn tokens_verify_against_the_jwks_with_pyjwt() {
    let app = spawn_app().await;
    let m = fresh_mobile();
    assert_eq!(app.sign_up(&m, "a good password").await["errno"], "0");
    let id = app.user().await["data"]["user_id"].as_i64().expect("id");
    let resp = app
        .client
        .post(app.url("/api/v1.0/session/token"))
        .send()
        .await
        .expect("token");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["errno"], "0", "{v}");
    assert_eq!(v["data"]["token_type"], "Bearer");
    assert!(v["data"]["expires_in"].as_u64().is_some_and(|s| s <= 900));
    let token = v["data"]["token"].as_str().expect("token").to_owned();
    let jwks = app.get_json_any("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private half is published"
    );

    let issuer = app.base.clone();
    let Some(verified) = pyjwt(&token, &jwks, &issuer) else {
        return;
    };
    let claims = verified.expect("PyJWT verifies the token");
    assert_eq!(claims["sub"], id.to_string());
    assert_eq!(claims["aud"], "phoneauth");
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!((1..=900).contains(&lifetime), "{lifetime}");

    // A changed payload, a wrong audience or issuer: PyJWT refuses.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = serde_json::to_string(
        &json!({ "sub": "1", "aud": "phoneauth", "iss": issuer, "exp": 4_102_444_800i64 }),
    )
    .expect("json");
    parts[1] = base64_url(forged.as_bytes());
    let refused = pyjwt(&parts.join("."), &jwks, &issuer).expect("pyjwt");
    assert!(refused.is_err(), "a forged payload verified: {refused:?}");
    assert!(
        pyjwt(&token, &jwks, "https://elsewhere.example")
            .expect("pyjwt")
            .is_err()
    );

    // The key set does not change between two reads.
    let again = app.get_json_any("/.well-known/jwks.json").await;
    assert_eq!(again, jwks);

    // No session, no token; a disabled user has no session.
    let anon: Value = plain_client()
        .post(app.url("/api/v1.0/session/token"))
        .send()
        .await
        .expect("anon")
        .json()
        .await
        .expect("json");
    assert_eq!(anon["errno"], "4101");
    let admin = app.admin.as_deref().expect("admin");
    let resp = plain_client()
        .request(Method::POST, format!("{admin}/admin/users/{id}/disable"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("disable");
    assert_eq!(resp.status(), 200);
    let v: Value = app
        .client
        .post(app.url("/api/v1.0/session/token"))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    assert_eq!(v["errno"], "4101", "a disabled user gets no token: {v}");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
