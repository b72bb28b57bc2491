//! One argon2id hash at the configured parameters (OWASP's by default), timed
//! alone: `cargo run --release --example hash_cost -- [COUNT]`. Prints the
//! median and the minimum in milliseconds as JSON; `bench/compare.sh` divides
//! the core count by the median to get the most registrations a second the
//! machine can hash.

use std::time::Instant;

use phoneauth::config::Config;
use phoneauth::domain::{Password, PasswordPolicy};
use phoneauth::passwords::PasswordHasher;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let cfg = Config::default();
    let hasher = PasswordHasher::new(&cfg.password)?;
    let password = Password::parse("load-test-password", &PasswordPolicy::default())
        .map_err(|_| "password")?;
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let t = Instant::now();
        hasher.hash(&password).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "{{\"hashes\":{},\"median_ms\":{:.2},\"min_ms\":{:.2},\"memory_kib\":{},\"iterations\":{},\"parallelism\":{}}}",
        ms.len(),
        ms[ms.len() / 2],
        ms[0],
        cfg.password.argon2_memory_kib,
        cfg.password.argon2_iterations,
        cfg.password.argon2_parallelism
    );
    Ok(())
}
