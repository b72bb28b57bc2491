//! Writes sample captchas as JPEG files: `cargo run --example captcha_samples -- DIR [COUNT]`.
//! The file name is the answer, so a person can check that each one reads right.

use std::path::PathBuf;

use phoneauth::captcha::CaptchaRenderer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "captcha-samples".into()));
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(6);
    std::fs::create_dir_all(&dir)?;
    let renderer = CaptchaRenderer::new()?;
    for i in 0..count {
        let c = renderer.generate()?;
        let path = dir.join(format!("sample{}_{}.jpg", i + 1, c.text));
        std::fs::write(&path, &c.jpeg)?;
        println!("{}", path.display());
    }
    Ok(())
}
