//! A pumping attack beside a legitimate population, against a running
//! phoneauth on loopback (SPEC §10's simulation; `bench/pumping.sh` starts
//! the service and runs this in `enforce` and `shadow` mode).
//!
//! ```sh
//! cargo run --release --example pumping -- http://127.0.0.1:18082 \
//!     --legit 600 --attack 400 --metrics http://127.0.0.1:19102/metrics
//! ```
//!
//! - The legitimate population: `--legit` numbers spread over many prefixes
//!   (as real users are), each from its own address; nine in ten use their
//!   code (they register).
//! - The attack: `--attack` sends into one prefix, each from its own
//!   address, never using a code.
//!
//! Both run interleaved. The service must trust 127.0.0.1 as a proxy
//! (`PHONEAUTH_SERVER__TRUSTED_PROXIES=127.0.0.1`) so that each send can
//! come from its own address, and expose the development hooks. Prints one
//! JSON line: attack sends let through before the first refusal and in all,
//! refusals of each population, and (with `--metrics`) the shadow refusals
//! counted.

use serde_json::{Value, json};

const MAX_SENDS: usize = 5_000;

struct Args {
    base: String,
    legit: usize,
    attack: usize,
    metrics: Option<String>,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let base = it.next().unwrap_or_else(|| usage());
    if !(base.starts_with("http://127.0.0.1") || base.starts_with("http://localhost")) {
        usage();
    }
    let mut a = Args {
        base: base.trim_end_matches('/').to_owned(),
        legit: 600,
        attack: 400,
        metrics: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--legit" => a.legit = value.parse().unwrap_or_else(|_| usage()),
            "--attack" => a.attack = value.parse().unwrap_or_else(|_| usage()),
            "--metrics" => a.metrics = Some(value),
            _ => usage(),
        }
    }
    if a.legit + a.attack > MAX_SENDS {
        usage();
    }
    a
}

fn usage() -> ! {
    eprintln!(
        "usage: pumping BASE_URL [--legit N] [--attack N] [--metrics URL]\n  \
         BASE_URL on 127.0.0.1 or localhost; at most {MAX_SENDS} sends in all"
    );
    std::process::exit(2)
}

/// A register code request for `mobile` from client address `ip`; the errno.
async fn send(
    http: &reqwest::Client,
    base: &str,
    ip: &str,
    mobile: &str,
) -> Result<String, String> {
    let id = phoneauth::secret::random_hex(16);
    http.get(format!("{base}/api/v1.0/image_codes/{id}"))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let dev: Value = get(http, &format!("{base}/dev/captcha/{id}")).await?;
    let answer = dev["data"]["text"].as_str().ok_or("no captcha answer")?;
    let url = format!("{base}/api/v1.0/sms_codes/{mobile}?image_code={answer}&image_code_id={id}");
    let resp = http
        .get(url)
        .header("x-forwarded-for", ip)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    Ok(v["errno"].as_str().unwrap_or("?").to_owned())
}

async fn get(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    resp.json().await.map_err(|e| e.to_string())
}

/// Uses the code sent to `mobile` (registers the number).
async fn verify(http: &reqwest::Client, base: &str, mobile: &str) -> Result<(), String> {
    let dev = get(http, &format!("{base}/dev/sms/{mobile}")).await?;
    let code = dev["data"]["code"].as_str().ok_or("no code")?;
    let body = json!({ "mobile": mobile, "sms_code": code, "password": "simulation-password" });
    let resp = http
        .post(format!("{base}/api/v1.0/users"))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    match v["errno"].as_str() {
        Some("0") => Ok(()),
        other => Err(format!("registration answered {other:?}")),
    }
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| {
            eprintln!("client: {e}");
            std::process::exit(1)
        });
    let run = format!("{:02}", std::process::id() % 100);
    let (mut through, mut through_before_first_refusal, mut attack_refused) = (0, None, 0);
    let (mut legit_ok, mut legit_refused, mut errors) = (0, 0, 0);
    for i in 0..a.legit.max(a.attack) {
        if i < a.legit {
            // 130–139, then two more digits: a prefix per user, as in life.
            let m = format!("13{}{:02}{run}{:04}", i % 10, (i / 10) % 100, i);
            let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
            match send(&http, &a.base, &ip, &m).await.as_deref() {
                Ok("0") => {
                    legit_ok += 1;
                    if i % 10 != 0 && verify(&http, &a.base, &m).await.is_err() {
                        errors += 1;
                    }
                }
                Ok(_) => legit_refused += 1,
                Err(_) => errors += 1,
            }
        }
        if i < a.attack {
            let m = format!("1860{run}{:05}", i % 100_000);
            let m = &m[..11];
            let ip = format!("10.2.{}.{}", i / 250, i % 250 + 1);
            match send(&http, &a.base, &ip, m).await.as_deref() {
                Ok("0") => through += 1,
                Ok(_) => {
                    attack_refused += 1;
                    through_before_first_refusal.get_or_insert(through);
                }
                Err(_) => errors += 1,
            }
        }
    }
    let shadow = match &a.metrics {
        Some(url) => http
            .get(url)
            .send()
            .await
            .ok()
            .map(|r| async move { r.text().await.unwrap_or_default() }),
        None => None,
    };
    let shadow_refusals = match shadow {
        Some(text) => text
            .await
            .lines()
            .filter(|l| l.starts_with("phoneauth_defence_shadow_refusals_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
            .abs(),
        None => 0.0,
    };
    println!(
        "{}",
        json!({
            "legit_sends": a.legit,
            "legit_let_through": legit_ok,
            "legit_refused": legit_refused,
            "attack_sends": a.attack,
            "attack_let_through": through,
            "attack_let_through_before_first_refusal": through_before_first_refusal,
            "attack_refused": attack_refused,
            "shadow_refusals_counted": shadow_refusals,
            "errors": errors,
        })
    );
}
