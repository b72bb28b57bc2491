//! The image captcha: our own renderer over pre-rasterised glyphs, encoded as
//! JPEG by our own encoder for this one image shape (`jpeg.rs`).
//!
//! Each alphabet glyph is rasterised once, at start, into a coverage map and
//! a hollow (outline) map. Drawing a captcha then only samples those maps
//! through a per-glyph affine transform (rotation, scale, shear) and one
//! shared sine warp, so no outline is rasterised per request. At least two
//! glyphs of each captcha are hollow; strokes in text inks and cuts in the
//! paper colour cross the text (BENCHMARKS.md has what each did to
//! tesseract). The font is DejaVu Sans Bold (Bitstream Vera licence, shipped
//! in `assets/fonts/`).

mod jpeg;

use std::f32::consts::PI;

use ab_glyph::{Font, FontRef, PxScale};
use rand::{Rng, RngExt};

pub const WIDTH: usize = 160;
pub const HEIGHT: usize = 60;
pub const LEN: usize = 4;

/// Symbols without look-alikes: both sides of 0/O/Q/D, 1/I/L/J, 2/Z, 5/S,
/// 8/B, 6/G, U/V and T/7 are left out. Answers are compared in upper case.
pub const ALPHABET: &[u8] = b"ACEFHKMNPRWXY3479";

const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");
/// Pixel height glyphs are rasterised at; drawn glyphs are scaled around it.
const RASTER_PX: f32 = 46.0;
const JPEG_QUALITY: u8 = 75;

/// A drawn captcha: the answer and the JPEG a person reads it from.
pub struct Captcha {
    pub text: String,
    pub jpeg: Vec<u8>,
}

struct GlyphMap {
    w: usize,
    h: usize,
    coverage: Vec<f32>,
}

impl GlyphMap {
    /// Bilinear sample; zero outside the map. The map has a one-pixel zero
    /// margin, so any sample whose taps would leave the map is exactly zero
    /// and the taps inside need no bounds logic.
    fn sample(&self, u: f32, v: f32) -> f32 {
        let u = u - 0.5;
        let v = v - 0.5;
        if !(u >= 0.0 && v >= 0.0 && u < (self.w - 1) as f32 && v < (self.h - 1) as f32) {
            return 0.0;
        }
        let (x0, y0) = (u as usize, v as usize);
        let (fx, fy) = (u - x0 as f32, v - y0 as f32);
        let i = y0 * self.w + x0;
        let c = &self.coverage;
        let top = c[i] + (c[i + 1] - c[i]) * fx;
        let bottom = c[i + self.w] + (c[i + self.w + 1] - c[i + self.w]) * fx;
        top + (bottom - top) * fy
    }
}

/// Draws captchas. Build once and share: construction rasterises the alphabet.
pub struct CaptchaRenderer {
    glyphs: Vec<GlyphMap>,
    /// The same glyphs, hollow.
    outlines: Vec<GlyphMap>,
    jpeg: jpeg::JpegEncoder,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptchaError {
    #[error("the embedded font cannot be read")]
    Font,
    #[error("the embedded font has no glyph for {0:?}")]
    MissingGlyph(char),
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

impl CaptchaRenderer {
    pub fn new() -> Result<Self, CaptchaError> {
        let font = FontRef::try_from_slice(FONT_BYTES).map_err(|_| CaptchaError::Font)?;
        let glyphs = ALPHABET
            .iter()
            .map(|&b| rasterise(&font, char::from(b)))
            .collect::<Result<Vec<_>, _>>()?;
        let outlines = glyphs.iter().map(|g| hollow(g, 2.5)).collect();
        Ok(Self {
            glyphs,
            outlines,
            jpeg: jpeg::JpegEncoder::new(JPEG_QUALITY)?,
        })
    }

    /// A fresh captcha with a random answer, from the thread's CSPRNG.
    pub fn generate(&self) -> Result<Captcha, CaptchaError> {
        let mut rng = rand::rng();
        let text: String = (0..LEN)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        let jpeg = self.render_jpeg(&text, &mut rng)?;
        Ok(Captcha { text, jpeg })
    }

    pub fn render_jpeg<R: Rng>(&self, text: &str, rng: &mut R) -> Result<Vec<u8>, CaptchaError> {
        let rgb = self.render_rgb(text, rng);
        self.encode(&rgb)
    }

    /// Encodes a drawn image (`WIDTH × HEIGHT` RGB) with the captcha's own
    /// JPEG encoder.
    pub fn encode(&self, rgb: &[u8]) -> Result<Vec<u8>, CaptchaError> {
        self.jpeg.encode(rgb)
    }

    /// Draws `text` (symbols of [`ALPHABET`]; others are skipped) into an RGB
    /// buffer of `WIDTH × HEIGHT`.
    pub fn render_rgb<R: Rng>(&self, text: &str, rng: &mut R) -> Vec<u8> {
        let mut canvas = Canvas::background(rng);

        // Thin background curves in mid tones, under the text.
        for _ in 0..2 {
            let colour = random_colour(rng, 120, 200);
            let thickness = rng.random_range(1.0..1.6);
            canvas.curve(rng, colour, thickness, 10.0..HEIGHT as f32 - 10.0);
        }

        let warp = Warp::random(rng);
        let symbols: Vec<usize> = text
            .bytes()
            .filter_map(|b| ALPHABET.iter().position(|&a| a == b.to_ascii_uppercase()))
            .collect();
        // At least two glyphs are hollow: a captcha of four filled glyphs is
        // the one tesseract reads most often.
        let hollow_mask = loop {
            let m: u32 = rng.random_range(0..16);
            if m.count_ones() >= 2 {
                break m;
            }
        };
        // The text is set tight, so that wide neighbours touch, and placed at
        // a random offset along the line.
        let n = symbols.len().max(1) as f32;
        let line = rng.random_range(118.0..134.0f32);
        let start = rng.random_range(8.0..(WIDTH as f32 - 8.0 - line));
        let pitch = line / n;
        let mut hollow = Vec::new();
        for (i, &g) in symbols.iter().enumerate() {
            let place = Placement {
                cx: start + pitch * (i as f32 + 0.5) + rng.random_range(-2.0..2.0),
                cy: HEIGHT as f32 / 2.0 + rng.random_range(-5.0..5.0),
                angle: rng.random_range(-0.4..0.4f32),
                scale: rng.random_range(0.82..1.08f32),
                shear: rng.random_range(-0.25..0.25f32),
            };
            if hollow_mask & (1 << i) != 0 {
                // Thin strokes get the darker inks.
                hollow.push((g, place, random_colour(rng, 10, 80)));
            } else {
                let colour = random_colour(rng, 10, 110);
                canvas.glyph(&self.glyphs[g], &place, &warp, colour);
            }
        }

        // Cuts in the paper colour: a reader joins the pieces, a recogniser
        // sees broken strokes. One cuts only the filled glyphs (the hollow
        // ones are drawn after it), one cuts everything.
        let text_band = HEIGHT as f32 / 2.0 - 9.0..HEIGHT as f32 / 2.0 + 9.0;
        let cut = |canvas: &mut Canvas, rng: &mut R| {
            let paper = random_colour(rng, 225, 255);
            let thickness = rng.random_range(1.4..2.0);
            canvas.curve(rng, paper, thickness, text_band.clone());
        };
        cut(&mut canvas, rng);
        for (g, place, colour) in &hollow {
            canvas.glyph(&self.outlines[*g], place, &warp, *colour);
        }
        cut(&mut canvas, rng);

        // Strokes through the text in text-like inks defeat segmentation;
        // specks break up thresholding.
        for _ in 0..2 {
            let colour = random_colour(rng, 30, 120);
            let thickness = rng.random_range(1.3..1.9);
            canvas.curve(rng, colour, thickness, text_band.clone());
        }
        canvas.specks(rng, 90);
        canvas.into_rgb()
    }
}

fn rasterise(font: &FontRef<'_>, c: char) -> Result<GlyphMap, CaptchaError> {
    let id = font.glyph_id(c);
    if id.0 == 0 {
        return Err(CaptchaError::MissingGlyph(c));
    }
    let glyph = id.with_scale(PxScale::from(RASTER_PX));
    let outlined = font
        .outline_glyph(glyph)
        .ok_or(CaptchaError::MissingGlyph(c))?;
    let bounds = outlined.px_bounds();
    // One pixel of margin on each side keeps bilinear edges soft.
    let w = bounds.width().ceil() as usize + 2;
    let h = bounds.height().ceil() as usize + 2;
    let mut coverage = vec![0.0f32; w * h];
    outlined.draw(|x, y, cov| {
        let (x, y) = (x as usize + 1, y as usize + 1);
        if x < w && y < h {
            coverage[y * w + x] = cov.clamp(0.0, 1.0);
        }
    });
    Ok(GlyphMap { w, h, coverage })
}

/// The glyph drawn as its outline: coverage minus its grey erosion by a disc
/// of `radius` pixels. A recogniser trained on filled text sees two thin
/// contours where a person sees the letter.
fn hollow(g: &GlyphMap, radius: f32) -> GlyphMap {
    let r = radius.ceil() as isize;
    let (w, h) = (g.w as isize, g.h as isize);
    let mut coverage = vec![0.0f32; g.w * g.h];
    for y in 0..h {
        for x in 0..w {
            let mut eroded = 1.0f32;
            for dy in -r..=r {
                for dx in -r..=r {
                    if ((dx * dx + dy * dy) as f32) > radius * radius {
                        continue;
                    }
                    let (sx, sy) = (x + dx, y + dy);
                    let c = if sx < 0 || sy < 0 || sx >= w || sy >= h {
                        0.0
                    } else {
                        g.coverage[(sy * w + sx) as usize]
                    };
                    eroded = eroded.min(c);
                }
            }
            let i = (y * w + x) as usize;
            coverage[i] = (g.coverage[i] - eroded).max(0.0);
        }
    }
    GlyphMap {
        w: g.w,
        h: g.h,
        coverage,
    }
}

struct Placement {
    cx: f32,
    cy: f32,
    angle: f32,
    scale: f32,
    shear: f32,
}

/// A sine displacement of the whole text line: columns move up and down,
/// rows move sideways. Both depend on one coordinate only, so they are
/// tabulated once per image instead of evaluated per pixel.
struct Warp {
    /// Vertical shift of each column.
    dy: [f32; WIDTH],
    /// Horizontal shift of each row.
    dx: [f32; HEIGHT],
    reach: f32,
}

impl Warp {
    fn random<R: Rng>(rng: &mut R) -> Self {
        let amp_y: f32 = rng.random_range(2.0..4.5);
        let freq_y = 2.0 * PI / rng.random_range(60.0..110.0f32);
        let phase_y: f32 = rng.random_range(0.0..2.0 * PI);
        let amp_x: f32 = rng.random_range(1.0..2.5);
        let freq_x = 2.0 * PI / rng.random_range(30.0..60.0f32);
        let phase_x: f32 = rng.random_range(0.0..2.0 * PI);
        let mut dy = [0.0; WIDTH];
        for (x, d) in dy.iter_mut().enumerate() {
            *d = amp_y * (freq_y * (x as f32 + 0.5) + phase_y).sin();
        }
        let mut dx = [0.0; HEIGHT];
        for (y, d) in dx.iter_mut().enumerate() {
            *d = amp_x * (freq_x * (y as f32 + 0.5) + phase_x).sin();
        }
        Self {
            dy,
            dx,
            reach: amp_x.max(amp_y) + 1.0,
        }
    }
}

fn random_colour<R: Rng>(rng: &mut R, lo: u8, hi: u8) -> [f32; 3] {
    [0; 3].map(|_: u8| f32::from(rng.random_range(lo..hi)))
}

/// The image being drawn, as the RGB bytes the encoder takes: the gradient is
/// written row by row, and only pixels something is drawn on are blended.
struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    /// A light two-colour horizontal gradient.
    fn background<R: Rng>(rng: &mut R) -> Self {
        let a = random_colour(rng, 215, 255);
        let b = random_colour(rng, 215, 255);
        let mut row = Vec::with_capacity(WIDTH * 3);
        for x in 0..WIDTH {
            let t = x as f32 / (WIDTH - 1) as f32;
            row.extend([0, 1, 2].map(|i| (a[i] * (1.0 - t) + b[i] * t + 0.5) as u8));
        }
        Self {
            px: row.repeat(HEIGHT),
        }
    }

    fn blend(&mut self, x: usize, y: usize, colour: [f32; 3], alpha: f32) {
        let i = (y * WIDTH + x) * 3;
        for (c, target) in self.px[i..i + 3].iter_mut().zip(colour) {
            let p = f32::from(*c);
            // `as` saturates; adding 0.5 rounds without a libm call.
            *c = (p + (target - p) * alpha + 0.5) as u8;
        }
    }

    fn glyph(&mut self, g: &GlyphMap, at: &Placement, warp: &Warp, colour: [f32; 3]) {
        let (sin, cos) = at.angle.sin_cos();
        let inv = 1.0 / at.scale;
        let half_w = g.w as f32 / 2.0;
        let half_h = g.h as f32 / 2.0;

        // Bounding box: the map's corners through the forward transform
        // (shear, scale, rotate), widened by the warp's reach.
        let (mut lo_x, mut hi_x, mut lo_y, mut hi_y) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for (u, v) in [
            (0.0, 0.0),
            (g.w as f32, 0.0),
            (0.0, g.h as f32),
            (g.w as f32, g.h as f32),
        ] {
            let ry = v - half_h;
            let rx = u - half_w + at.shear * ry;
            let dx = at.scale * (cos * rx - sin * ry);
            let dy = at.scale * (sin * rx + cos * ry);
            lo_x = lo_x.min(at.cx + dx);
            hi_x = hi_x.max(at.cx + dx);
            lo_y = lo_y.min(at.cy + dy);
            hi_y = hi_y.max(at.cy + dy);
        }
        let x0 = (lo_x - warp.reach).floor().max(0.0) as usize;
        let x1 = ((hi_x + warp.reach).ceil().max(0.0) as usize).min(WIDTH);
        let y0 = (lo_y - warp.reach).floor().max(0.0) as usize;
        let y1 = ((hi_y + warp.reach).ceil().max(0.0) as usize).min(HEIGHT);

        for y in y0..y1 {
            let row_shift = warp.dx[y];
            for x in x0..x1 {
                let dx = x as f32 + 0.5 + row_shift - at.cx;
                let dy = y as f32 + 0.5 + warp.dy[x] - at.cy;
                // Inverse of: shear, then scale, then rotate.
                let rx = (cos * dx + sin * dy) * inv;
                let ry = (-sin * dx + cos * dy) * inv;
                let a = g.sample(rx - at.shear * ry + half_w, ry + half_h);
                if a > 0.0 {
                    self.blend(x, y, colour, a);
                }
            }
        }
    }

    /// A gentle random curve across the image, anti-aliased per column; its
    /// middle crosses `band` (a range of rows).
    fn curve<R: Rng>(
        &mut self,
        rng: &mut R,
        colour: [f32; 3],
        thickness: f32,
        band: std::ops::Range<f32>,
    ) {
        let y_mid = rng.random_range(band);
        let slope = rng.random_range(-0.18..0.18f32);
        let y_start = y_mid - slope * WIDTH as f32 / 2.0;
        let amp = rng.random_range(3.0..10.0f32);
        let freq = 2.0 * PI / rng.random_range(70.0..200.0f32);
        let phase = rng.random_range(0.0..2.0 * PI);
        let x_from = rng.random_range(0..WIDTH / 5);
        let x_to = WIDTH - rng.random_range(0..WIDTH / 5);
        let half = thickness / 2.0;
        for x in x_from..x_to {
            let xf = x as f32;
            let yc = y_start + slope * xf + amp * (freq * xf + phase).sin();
            let lo = (yc - half - 1.0).floor().max(0.0) as usize;
            let hi = ((yc + half + 1.0).ceil().max(0.0) as usize).min(HEIGHT);
            for y in lo..hi {
                let d = ((y as f32 + 0.5) - yc).abs();
                let a = (half + 0.5 - d).clamp(0.0, 1.0);
                if a > 0.0 {
                    self.blend(x, y, colour, a);
                }
            }
        }
    }

    fn specks<R: Rng>(&mut self, rng: &mut R, count: usize) {
        for _ in 0..count {
            let x = rng.random_range(0..WIDTH);
            let y = rng.random_range(0..HEIGHT);
            let colour = random_colour(rng, 40, 220);
            self.blend(x, y, colour, rng.random_range(0.5..1.0));
        }
    }

    fn into_rgb(self) -> Vec<u8> {
        self.px
    }
}

/// The same image through the general `jpeg-encoder` crate: the reference
/// the captcha's own encoder is measured and tested against.
pub fn encode_jpeg(rgb: &[u8]) -> Result<Vec<u8>, CaptchaError> {
    let mut out = Vec::with_capacity(4096);
    let encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    encoder
        .encode(
            rgb,
            WIDTH as u16,
            HEIGHT as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| CaptchaError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn alphabet_has_no_look_alikes() {
        for c in b"0O1IL2Z5S8B6GUVQDJT" {
            assert!(
                !ALPHABET.contains(c),
                "{} must not be drawn",
                char::from(*c)
            );
        }
    }

    #[test]
    fn captcha_is_a_160_by_60_jpeg_with_a_four_symbol_answer() {
        let r = CaptchaRenderer::new().expect("renderer");
        let c = r.generate().expect("captcha");
        assert_eq!(c.text.len(), LEN);
        assert!(c.text.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(&c.jpeg[..3], &[0xFF, 0xD8, 0xFF], "JPEG magic");
        // SOF0 segment carries height then width.
        let sof = c
            .jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("SOF0");
        let h = u16::from_be_bytes([c.jpeg[sof + 5], c.jpeg[sof + 6]]);
        let w = u16::from_be_bytes([c.jpeg[sof + 7], c.jpeg[sof + 8]]);
        assert_eq!((w, h), (160, 60));
    }

    #[test]
    fn text_is_actually_drawn_in_dark_ink() {
        let r = CaptchaRenderer::new().expect("renderer");
        let mut rng = StdRng::seed_from_u64(7);
        let with_text = r.render_rgb("AC34", &mut rng);
        let mut rng = StdRng::seed_from_u64(7);
        let without = r.render_rgb("", &mut rng);
        let dark = |img: &[u8]| {
            img.chunks(3)
                .filter(|p| p.iter().map(|&c| u32::from(c)).sum::<u32>() < 3 * 120)
                .count()
        };
        assert!(
            dark(&with_text) > dark(&without) + 600,
            "glyphs should add many dark pixels"
        );
    }

    #[test]
    fn hollow_glyphs_keep_the_edges_and_empty_the_strokes() {
        let r = CaptchaRenderer::new().expect("renderer");
        for (filled, hollow) in r.glyphs.iter().zip(&r.outlines) {
            let ink = |g: &GlyphMap| g.coverage.iter().sum::<f32>();
            let (full, outline) = (ink(filled), ink(hollow));
            assert!(
                outline > 0.2 * full && outline < 0.8 * full,
                "an outline keeps part of the ink: {outline} of {full}"
            );
            // Wherever the filled glyph is solid two pixels deep, the hollow
            // one is empty.
            let solid_inside = (2..filled.h - 2).any(|y| {
                (2..filled.w - 2).any(|x| {
                    let around = (y - 2..=y + 2).all(|yy| {
                        (x - 2..=x + 2).all(|xx| filled.coverage[yy * filled.w + xx] >= 1.0)
                    });
                    around && hollow.coverage[y * filled.w + x] > 0.0
                })
            });
            assert!(!solid_inside, "the inside of a stroke must be cut out");
        }
    }

    #[test]
    fn same_seed_draws_the_same_image() {
        let r = CaptchaRenderer::new().expect("renderer");
        let a = r.render_rgb("WXY9", &mut StdRng::seed_from_u64(1));
        let b = r.render_rgb("WXY9", &mut StdRng::seed_from_u64(1));
        let c = r.render_rgb("WXY9", &mut StdRng::seed_from_u64(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
