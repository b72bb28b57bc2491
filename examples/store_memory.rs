//! Memory of the embedded store with many outstanding captchas:
//! `cargo run --release --example store_memory -- [COUNT] [BOUND_MB]`.
//!
//! Stores COUNT captcha entries exactly as the flow does (the real key with a
//! 36-character page id, a 32-byte MAC, 300 s expiry) into a store bounded at
//! BOUND_MB (the default of `store.memory_max_mb`), then lets them expire and
//! sweeps. Prints the process RSS at each step, read from /proc, and the
//! store's own accounting, as one JSON line.

use std::time::Duration;

use phoneauth::clock::ManualClock;
use phoneauth::domain::CaptchaId;
use phoneauth::store::{KvStore, MemoryStore, StoreError, keys};

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kb / 1024.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let bound_mb: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(256);
    let clock = ManualClock::new();
    let store = MemoryStore::new(clock.clone(), bound_mb << 20);
    let ttl = Duration::from_secs(300);
    let mac = [0x5au8; 32];

    let rss_start = rss_mb();
    let (mut stored, mut refused) = (0usize, 0usize);
    for i in 0..count {
        // The shape of the ids the iHome pages make (a UUID).
        let raw = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            i,
            i % 65_536,
            i % 4096,
            i % 4096,
            i
        );
        let id = CaptchaId::parse(&raw).ok_or("id")?;
        match store.set(&keys::captcha(&id), &mac, ttl).await {
            Ok(()) => stored += 1,
            Err(StoreError::Full) => refused += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let rss_full = rss_mb();
    let accounted_mb = store.used_bytes() as f64 / (1 << 20) as f64;

    clock.advance(ttl + Duration::from_secs(1));
    store.sweep();
    // A live server keeps serving after a sweep, and some allocators hand
    // freed pages back only during later activity: give them that chance.
    for round in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        for i in 0..1_000 {
            let raw = format!("after-{round}-{i}");
            let id = CaptchaId::parse(&raw).ok_or("id")?;
            store
                .set(&keys::captcha(&id), &mac, Duration::from_millis(1))
                .await?;
        }
        clock.advance(Duration::from_millis(2));
        store.sweep();
    }
    let rss_after = rss_mb();
    println!(
        "{{\"count\":{count},\"bound_mb\":{bound_mb},\"stored\":{stored},\"refused\":{refused},\
         \"rss_start_mb\":{rss_start:.1},\"rss_full_mb\":{rss_full:.1},\"accounted_mb\":{accounted_mb:.1},\
         \"rss_after_expiry_mb\":{rss_after:.1},\"left_after_sweep\":{}}}",
        store.len()
    );
    Ok(())
}
