//! One store operation pair, as `GET /image_codes` and the answer check spend
//! it: `set` a captcha MAC with expiry, then `take` it. `cargo bench --bench
//! store`. The embedded store always; Redis when `TEST_REDIS_URL` (or
//! 127.0.0.1:6379) answers.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use phoneauth::clock::SystemClock;
use phoneauth::domain::CaptchaId;
use phoneauth::store::{KvStore, MemoryStore, keys};

/// The key the flow writes for a captcha with a 32-character page id.
fn captcha_key(i: u64) -> String {
    let id = CaptchaId::parse(&format!("{i:032x}")).expect("a valid id");
    keys::captcha(&id)
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mac = [0x5au8; 32];
    let ttl = Duration::from_secs(300);
    let memory = MemoryStore::new(std::sync::Arc::new(SystemClock), 256 << 20);
    let mut i = 0u64;
    c.bench_function("store/memory set+take captcha", |b| {
        b.iter(|| {
            i += 1;
            let key = captcha_key(i);
            rt.block_on(async {
                memory.set(&key, &mac, ttl).await.expect("set");
                memory.take(&key).await.expect("take")
            })
        })
    });

    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = rt.block_on(async {
        let s = phoneauth::store::redis::RedisStore::open(
            &url,
            "phoneauth-bench:",
            phoneauth::store::redis::RedisTimeouts::default(),
        )
        .await
        .ok()?;
        s.ping().await.ok()?;
        Some(s)
    });
    match redis {
        Some(redis) => {
            c.bench_function("store/redis set+take captcha", |b| {
                b.iter(|| {
                    i += 1;
                    let key = captcha_key(i);
                    rt.block_on(async {
                        redis.set(&key, &mac, ttl).await.expect("set");
                        redis.take(&key).await.expect("take")
                    })
                })
            });
        }
        None => eprintln!(
            "\n*** SKIPPED: no Redis at {url}; only the embedded store was measured ***\n"
        ),
    };
}

criterion_group!(benches, store);
criterion_main!(benches);
