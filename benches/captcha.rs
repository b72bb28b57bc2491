//! Captcha cost: drawing, JPEG encoding, and both together (what one
//! `GET /image_codes/{id}` spends on the image). `cargo bench --bench captcha`.

use criterion::{Criterion, criterion_group, criterion_main};
use phoneauth::captcha::{CaptchaRenderer, encode_jpeg};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn captcha(c: &mut Criterion) {
    let renderer = CaptchaRenderer::new().expect("renderer");
    let mut rng = StdRng::seed_from_u64(42);

    c.bench_function("captcha/render", |b| {
        b.iter(|| renderer.render_rgb(std::hint::black_box("KX7W"), &mut rng))
    });
    let rgb = renderer.render_rgb("KX7W", &mut rng);
    c.bench_function("captcha/jpeg_encode", |b| {
        b.iter(|| renderer.encode(std::hint::black_box(&rgb)).expect("encode"))
    });
    c.bench_function("captcha/jpeg_encode (jpeg-encoder crate, reference)", |b| {
        b.iter(|| encode_jpeg(std::hint::black_box(&rgb)).expect("encode"))
    });
    c.bench_function("captcha/generate (text + render + encode)", |b| {
        b.iter(|| renderer.generate().expect("captcha"))
    });
}

criterion_group!(benches, captcha);
criterion_main!(benches);
