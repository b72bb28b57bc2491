//! A bounded, loopback-only load generator for phoneauth and the Flask
//! original (both answer the same API and `/dev/*` hooks).
//!
//! ```sh
//! cargo run --release --example loadgen -- http://127.0.0.1:8000 send \
//!     --concurrency 16 --seconds 20 --server-pid 1234
//! ```
//!
//! Scenarios: `image` (a captcha with a fresh id), `send` (captcha → answer
//! from `/dev/captcha` → SMS code to a fresh mobile), `register` (send →
//! `/dev/sms` → `POST /users`), `sessions` (`GET /user/sessions` as a user
//! logged in once per worker, with 3 sessions), `code-login` (send with
//! purpose `login` → `POST /sessions/sms` on a fresh number; the service
//! needs `accounts.sign_up_by_code`, so each call also creates the account).
//! The cost of one `POST /sessions/sms` is `code-login` less `send`.
//! `verify` is `GET /auth/verify` (forward auth) with a worker's session.
//! Flows run for `--warmup` seconds unrecorded
//! (connections, pools, caches), then for `--seconds`. Prints one summary
//! line per run and, with `--json`, one JSON object: throughput, p50/p99/max
//! latency per flow, failures by errno, and the CPU seconds per completed
//! flow of the server processes (`--server-pid`, repeatable) and of its
//! backends (`--backend-pid`: Redis, PostgreSQL), from `/proc/<pid>/stat`.
//!
//! Against phoneauth, raise the per-client limits first (every request comes
//! from 127.0.0.1), e.g. `PHONEAUTH_LIMITS__CAPTCHA_PER_IP_PER_MINUTE=100000000`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rand::RngExt;
use serde_json::{Value, json};

const MAX_SECONDS: u64 = 120;
const MAX_CONCURRENCY: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Image,
    Send,
    Register,
    Sessions,
    CodeLogin,
    Verify,
}

struct Args {
    base: String,
    scenario: Scenario,
    concurrency: usize,
    seconds: u64,
    warmup: u64,
    server_pids: Vec<u32>,
    backend_pids: Vec<u32>,
    json: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen BASE_URL image|send|register|sessions|code-login|verify [--concurrency N] [--seconds S] [--warmup S] \
         [--server-pid PID]... [--backend-pid PID]... [--json]\n  \
         BASE_URL must be on 127.0.0.1 or localhost; S ≤ {MAX_SECONDS}"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let base = it.next().unwrap_or_else(|| usage());
    let scenario = match it.next().as_deref() {
        Some("image") => Scenario::Image,
        Some("send") => Scenario::Send,
        Some("register") => Scenario::Register,
        Some("sessions") => Scenario::Sessions,
        Some("code-login") => Scenario::CodeLogin,
        Some("verify") => Scenario::Verify,
        _ => usage(),
    };
    let mut a = Args {
        base: base.trim_end_matches('/').to_owned(),
        scenario,
        concurrency: 16,
        seconds: 20,
        warmup: 2,
        server_pids: Vec::new(),
        backend_pids: Vec::new(),
        json: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--concurrency" => a.concurrency = value().parse().unwrap_or_else(|_| usage()),
            "--seconds" => a.seconds = value().parse().unwrap_or_else(|_| usage()),
            "--warmup" => a.warmup = value().parse().unwrap_or_else(|_| usage()),
            "--server-pid" => a
                .server_pids
                .push(value().parse().unwrap_or_else(|_| usage())),
            "--backend-pid" => a
                .backend_pids
                .push(value().parse().unwrap_or_else(|_| usage())),
            "--json" => a.json = true,
            _ => usage(),
        }
    }
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !loopback.iter().any(|p| a.base.starts_with(p)) {
        eprintln!("loadgen only targets this machine's loopback address");
        usage();
    }
    a.seconds = a.seconds.clamp(1, MAX_SECONDS);
    a.warmup = a.warmup.min(MAX_SECONDS);
    a.concurrency = a.concurrency.clamp(1, MAX_CONCURRENCY);
    a
}

/// utime + stime of a process, in seconds (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU of the processes we were told about (all their threads).
fn total_cpu(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| cpu_seconds(p)).sum()
}

/// A mobile number no earlier flow of this run used (a random one would hit
/// the per-number cooldown now and then and count as a failure).
fn fresh_mobile() -> String {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| AtomicU32::new(rand::rng().random_range(0..100_000_000)));
    let n = next.fetch_add(1, Ordering::Relaxed) % 100_000_000;
    format!("139{n:08}")
}

fn fresh_id() -> String {
    phoneauth::secret::random_hex(16)
}

/// One flow; `Err(label)` names the failure (an errno, or an HTTP problem).
/// `http` carries the worker's cookies (the `sessions` scenario's login).
async fn flow(http: &reqwest::Client, base: &str, scenario: Scenario) -> Result<(), String> {
    if scenario == Scenario::Verify {
        let resp = http
            .get(format!("{base}/auth/verify"))
            .send()
            .await
            .map_err(|_| "http".to_owned())?;
        return match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(format!("verify {s}")),
        };
    }
    if scenario == Scenario::Sessions {
        let v = get_json(http, &format!("{base}/api/v1.0/user/sessions")).await?;
        return errno_ok(&v);
    }
    let id = fresh_id();
    let img = http
        .get(format!("{base}/api/v1.0/image_codes/{id}"))
        .send()
        .await
        .map_err(|_| "http".to_owned())?;
    if img.status() != 200 {
        return Err(format!("image {}", img.status().as_u16()));
    }
    img.bytes().await.map_err(|_| "http".to_owned())?;
    if scenario == Scenario::Image {
        return Ok(());
    }
    let dev: Value = get_json(http, &format!("{base}/dev/captcha/{id}")).await?;
    let answer = dev["data"]["text"]
        .as_str()
        .ok_or("no captcha answer")?
        .to_owned();
    let mobile = fresh_mobile();
    let sent = if scenario == Scenario::CodeLogin {
        let body = json!({ "mobile": mobile, "purpose": "login", "image_code": answer, "image_code_id": id });
        post_json(http, &format!("{base}/api/v1.0/sms_codes"), &body).await?
    } else {
        get_json(
            http,
            &format!("{base}/api/v1.0/sms_codes/{mobile}?image_code={answer}&image_code_id={id}"),
        )
        .await?
    };
    errno_ok(&sent)?;
    if scenario == Scenario::Send {
        return Ok(());
    }
    let dev = get_json(http, &format!("{base}/dev/sms/{mobile}")).await?;
    let code = dev["data"]["code"]
        .as_str()
        .ok_or("no sms code")?
        .to_owned();
    let v = if scenario == Scenario::CodeLogin {
        let body = json!({ "mobile": mobile, "sms_code": code });
        post_json(http, &format!("{base}/api/v1.0/sessions/sms"), &body).await?
    } else {
        let body = json!({ "mobile": mobile, "sms_code": code, "password": "load-test-password", "password2": "load-test-password" });
        post_json(http, &format!("{base}/api/v1.0/users"), &body).await?
    };
    errno_ok(&v)
}

async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let resp = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|_| "http".to_owned())?;
    resp.json().await.map_err(|_| "not json".to_owned())
}

/// A worker's own client for `sessions`: registered and logged in, with
/// two more sessions of the same user elsewhere, so the list has three.
async fn logged_in_client(base: &str, concurrency: usize) -> Result<reqwest::Client, String> {
    let http = client(concurrency).map_err(|e| e.to_string())?;
    let id = fresh_id();
    http.get(format!("{base}/api/v1.0/image_codes/{id}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let dev = get_json(&http, &format!("{base}/dev/captcha/{id}")).await?;
    let answer = dev["data"]["text"]
        .as_str()
        .ok_or("no captcha answer")?
        .to_owned();
    let mobile = fresh_mobile();
    let url = format!("{base}/api/v1.0/sms_codes/{mobile}?image_code={answer}&image_code_id={id}");
    errno_ok(&get_json(&http, &url).await?)?;
    let dev = get_json(&http, &format!("{base}/dev/sms/{mobile}")).await?;
    let code = dev["data"]["code"]
        .as_str()
        .ok_or("no sms code")?
        .to_owned();
    let password = "load-test-password";
    let body = json!({ "mobile": mobile, "sms_code": code, "password": password });
    errno_ok(&post_json(&http, &format!("{base}/api/v1.0/users"), &body).await?)?;
    for _ in 0..2 {
        let other = client(1).map_err(|e| e.to_string())?;
        let body = json!({ "mobile": mobile, "password": password });
        errno_ok(&post_json(&other, &format!("{base}/api/v1.0/sessions"), &body).await?)?;
    }
    Ok(http)
}

fn client(concurrency: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).send().await.map_err(|_| "http".to_owned())?;
    resp.json().await.map_err(|_| "not json".to_owned())
}

fn errno_ok(v: &Value) -> Result<(), String> {
    match v["errno"].as_str() {
        Some("0") => Ok(()),
        Some(e) => Err(format!("errno {e}")),
        None => Err("no errno".to_owned()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = client(a.concurrency).unwrap_or_else(|e| {
        eprintln!("client: {e}");
        std::process::exit(1)
    });
    // Phase 0: warm-up, unrecorded; phase 1: measured; phase 2: stop.
    let phase = Arc::new(AtomicU8::new(0));
    let mut workers = Vec::new();
    for _ in 0..a.concurrency {
        let http = if matches!(a.scenario, Scenario::Sessions | Scenario::Verify) {
            logged_in_client(&a.base, 1).await.unwrap_or_else(|e| {
                eprintln!("logging a worker in: {e}");
                std::process::exit(1)
            })
        } else {
            http.clone()
        };
        let (base, phase) = (a.base.clone(), phase.clone());
        let scenario = a.scenario;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::<Duration>::new();
            let mut failures = BTreeMap::<String, u64>::new();
            loop {
                let p = phase.load(Ordering::Relaxed);
                if p == 2 {
                    break;
                }
                let t = Instant::now();
                let result = flow(&http, &base, scenario).await;
                // A flow counts only if it started and ended in the measured phase.
                if p == 1 && phase.load(Ordering::Relaxed) == 1 {
                    match result {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(label) => *failures.entry(label).or_default() += 1,
                    }
                }
            }
            (latencies, failures)
        }));
    }
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let cpu_before = total_cpu(&a.server_pids);
    let backend_before = total_cpu(&a.backend_pids);
    let started = Instant::now();
    phase.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    phase.store(2, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_delta = |before: Option<f64>, pids: &[u32]| match (before, total_cpu(pids)) {
        (Some(b), Some(e)) => Some(e - b),
        _ => None,
    };
    let cpu = cpu_delta(cpu_before, &a.server_pids);
    let backend_cpu = cpu_delta(backend_before, &a.backend_pids);
    let mut lat = Vec::new();
    let mut failures = BTreeMap::<String, u64>::new();
    for w in workers {
        if let Ok((l, f)) = w.await {
            lat.extend(l);
            for (k, v) in f {
                *failures.entry(k).or_default() += v;
            }
        }
    }
    lat.sort();
    let done = lat.len();
    let name = match a.scenario {
        Scenario::Image => "image",
        Scenario::Send => "send",
        Scenario::Register => "register",
        Scenario::Sessions => "sessions",
        Scenario::CodeLogin => "code-login",
        Scenario::Verify => "verify",
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let cpu_per_flow_ms = cpu.filter(|_| done > 0).map(|c| c / done as f64 * 1e3);
    let backend_per_flow_ms = backend_cpu
        .filter(|_| done > 0)
        .map(|c| c / done as f64 * 1e3);
    let summary = json!({
        "scenario": name,
        "base": a.base,
        "concurrency": a.concurrency,
        "seconds": elapsed,
        "flows": done,
        "flows_per_second": done as f64 / elapsed,
        "p50_ms": ms(percentile(&lat, 0.50)),
        "p99_ms": ms(percentile(&lat, 0.99)),
        "max_ms": ms(lat.last().copied().unwrap_or_default()),
        "failures": failures,
        "server_cpu_seconds": cpu,
        "server_cpu_ms_per_flow": cpu_per_flow_ms,
        "backend_cpu_seconds": backend_cpu,
        "backend_cpu_ms_per_flow": backend_per_flow_ms,
    });
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "{name:>8} {:>9.1} flows/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  cpu/flow {}  failures {:?}",
            done as f64 / elapsed,
            ms(percentile(&lat, 0.50)),
            ms(percentile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default()),
            cpu_per_flow_ms.map_or("n/a".to_owned(), |c| format!("{c:.3} ms")),
            failures
        );
    }
}
