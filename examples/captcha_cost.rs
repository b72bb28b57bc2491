//! Draws and encodes N captchas and reports the mean time per image:
//! `cargo run --release --example captcha_cost -- 2000`. Fixed work, so
//! `perf stat -e instructions` over it compares builds exactly.

use std::time::Instant;

use phoneauth::captcha::CaptchaRenderer;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let renderer = CaptchaRenderer::new()?;
    let mut rng = StdRng::seed_from_u64(42);
    let started = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += renderer.render_jpeg("KX7W", &mut rng)?.len();
    }
    let per = started.elapsed() / n;
    println!(
        "{n} captchas: {per:?} each, {} bytes on average",
        bytes / n as usize
    );
    Ok(())
}
