//! A baseline JPEG encoder for one image shape: the captcha's `WIDTH ×
//! HEIGHT` RGB, 4:2:0, at one fixed quality.
//!
//! The general encoder (`jpeg-encoder`) spent half of a captcha's CPU on
//! work that is the same for every image: headers, Huffman lookup tables,
//! full-resolution chroma conversion, generic block extraction. This one
//! takes everything constant from that encoder's own output once, at start:
//! the header bytes up to the scan (quantisation and Huffman tables
//! included), so the files it writes carry exactly the tables a reference
//! encoder chose. Per image it only converts colour (chroma averaged over
//! each 2×2 square), runs a float AAN DCT over 8×8 blocks, quantises and
//! entropy-codes.

use super::{CaptchaError, HEIGHT, WIDTH};

/// Zigzag position → natural (row-major) index.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Zigzag position → index in the transposed block `fdct` leaves.
const TRANSPOSED_ZIGZAG: [usize; 64] = {
    let mut t = [0; 64];
    let mut k = 0;
    while k < 64 {
        t[k] = (ZIGZAG[k] % 8) * 8 + ZIGZAG[k] / 8;
        k += 1;
    }
    t
};

/// Luma rows padded to whole 16-row MCUs; chroma is half in each direction.
const Y_ROWS: usize = HEIGHT.div_ceil(16) * 16;
const C_W: usize = WIDTH / 2;
const C_ROWS: usize = Y_ROWS / 2;

#[derive(Clone)]
struct Huffman {
    code: [u16; 256],
    len: [u8; 256],
}

impl Huffman {
    const EMPTY: Self = Self {
        code: [0; 256],
        len: [0; 256],
    };

    /// Canonical codes from a DHT table's 16 counts and its symbols (T.81 C).
    fn from_dht(counts: &[u8], symbols: &[u8]) -> Self {
        let mut h = Self {
            code: [0; 256],
            len: [0; 256],
        };
        let mut code = 0u16;
        let mut k = 0;
        for (bits, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                if let Some(&s) = symbols.get(k) {
                    h.code[usize::from(s)] = code;
                    h.len[usize::from(s)] = bits as u8 + 1;
                }
                code = code.wrapping_add(1);
                k += 1;
            }
            code <<= 1;
        }
        h
    }
}

/// Per-component tables, in scan order: Y, Cb, Cr.
struct Tables {
    /// Multipliers that undo the AAN scaling and divide by the quantiser,
    /// in the transposed layout `fdct` leaves (index `u * 8 + v` holds the
    /// coefficient of row frequency `v` and column frequency `u`).
    quant: [[f32; 64]; 3],
    dc: [Huffman; 3],
    ac: [Huffman; 3],
}

pub struct JpegEncoder {
    /// Everything before the entropy-coded data: SOI … SOS.
    header: Vec<u8>,
    tables: Tables,
}

impl JpegEncoder {
    pub fn new(quality: u8) -> Result<Self, CaptchaError> {
        // A reference encoding of a blank image gives the headers and tables.
        let mut reference = Vec::new();
        jpeg_encoder::Encoder::new(&mut reference, quality)
            .encode(
                &[255u8; WIDTH * HEIGHT * 3],
                WIDTH as u16,
                HEIGHT as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .map_err(|e| CaptchaError::Encode(e.to_string()))?;
        parse_reference(&reference).ok_or_else(|| {
            CaptchaError::Encode("the reference JPEG has an unexpected layout".into())
        })
    }

    /// Encodes `rgb` (`WIDTH × HEIGHT × 3` bytes) as a baseline JPEG.
    pub fn encode(&self, rgb: &[u8]) -> Result<Vec<u8>, CaptchaError> {
        if rgb.len() != WIDTH * HEIGHT * 3 {
            return Err(CaptchaError::Encode("wrong image size".into()));
        }
        let (y, cb, cr) = planes(rgb);
        let mut out = Vec::with_capacity(self.header.len() + 4096);
        out.extend_from_slice(&self.header);
        let mut bits = BitWriter::new(out);
        let mut prev_dc = [0i32; 3];
        let mut block = [[0f32; 8]; 8];
        for my in 0..Y_ROWS / 16 {
            for mx in 0..WIDTH / 16 {
                for (by, bx) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
                    load(&mut block, &y, WIDTH, my * 16 + by, mx * 16 + bx);
                    self.code_block(&mut bits, &mut block, 0, &mut prev_dc[0]);
                }
                load(&mut block, &cb, C_W, my * 8, mx * 8);
                self.code_block(&mut bits, &mut block, 1, &mut prev_dc[1]);
                load(&mut block, &cr, C_W, my * 8, mx * 8);
                self.code_block(&mut bits, &mut block, 2, &mut prev_dc[2]);
            }
        }
        let mut out = bits.finish();
        out.extend_from_slice(&[0xFF, 0xD9]);
        Ok(out)
    }

    fn code_block(
        &self,
        bits: &mut BitWriter,
        block: &mut [[f32; 8]; 8],
        c: usize,
        prev: &mut i32,
    ) {
        fdct(block);
        // `fdct` leaves the block transposed, so flat index `m * 8 + k` holds
        // natural coefficient `k * 8 + m`; the tables are laid out to match.
        let q = &self.tables.quant[c];
        let flat = block.as_flattened();
        let mut quantised = [0i32; 64];
        for ((out, &v), &m) in quantised.iter_mut().zip(flat).zip(q) {
            // Round to nearest through the float mantissa: exact for |x| < 2²²
            // and free of the checks a saturating cast adds.
            const MAGIC: f32 = 12_582_912.0; // 1.5 × 2²³
            *out = ((v * m + MAGIC).to_bits() as i32) - MAGIC.to_bits() as i32;
        }
        let mut coef = [0i32; 64];
        let mut nonzero = 0u64;
        for (k, (&t, out)) in TRANSPOSED_ZIGZAG.iter().zip(coef.iter_mut()).enumerate() {
            *out = quantised[t];
            nonzero |= u64::from(*out != 0) << k;
        }
        let (dc, ac) = (&self.tables.dc[c], &self.tables.ac[c]);

        let diff = coef[0] - *prev;
        *prev = coef[0];
        let (size, value) = magnitude(diff);
        bits.put_symbol(dc, size, value, size);

        // Walk the non-zero AC coefficients only: the run before each is the
        // gap between set bits.
        let mut rest = nonzero & !1;
        let mut last = 0u32;
        while rest != 0 {
            let k = rest.trailing_zeros();
            rest &= rest - 1;
            let mut run = k - last - 1;
            while run > 15 {
                bits.put_symbol(ac, 0xF0, 0, 0);
                run -= 16;
            }
            let (size, value) = magnitude(coef[k as usize]);
            bits.put_symbol(ac, (run as u8) << 4 | size, value, size);
            last = k;
        }
        if last != 63 {
            bits.put_symbol(ac, 0x00, 0, 0);
        }
    }
}

/// The category (bit count) of `v` and its bits as T.81 F.1.2.1 writes them.
fn magnitude(v: i32) -> (u8, u16) {
    let a = v.unsigned_abs();
    let size = (32 - a.leading_zeros()) as u8;
    let bits = if v < 0 { v - 1 } else { v };
    (size, (bits as u32 & ((1u32 << size) - 1)) as u16)
}

/// Level-shifted Y, Cb and Cr planes; rows past the image repeat its last row.
fn planes(rgb: &[u8]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut y = Vec::with_capacity(WIDTH * Y_ROWS);
    y.extend(rgb.chunks_exact(3).map(|px| {
        let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
        0.299 * r + 0.587 * g + 0.114 * b - 128.0
    }));
    for _ in HEIGHT..Y_ROWS {
        y.extend_from_within(WIDTH * (HEIGHT - 1)..WIDTH * HEIGHT);
    }

    let mut cb = vec![0f32; C_W * C_ROWS];
    let mut cr = vec![0f32; C_W * C_ROWS];
    for cy in 0..C_ROWS {
        // Chroma rows past the image repeat the last one that has pixels.
        let sy = (cy * 2).min(HEIGHT - 2);
        for cx in 0..C_W {
            let mut sum = [0f32; 3];
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let i = ((sy + dy) * WIDTH + cx * 2 + dx) * 3;
                for (s, &v) in sum.iter_mut().zip(&rgb[i..i + 3]) {
                    *s += f32::from(v);
                }
            }
            let [r, g, b] = sum.map(|s| s * 0.25);
            cb[cy * C_W + cx] = -0.168_736 * r - 0.331_264 * g + 0.5 * b;
            cr[cy * C_W + cx] = 0.5 * r - 0.418_688 * g - 0.081_312 * b;
        }
    }
    (y, cb, cr)
}

fn load(block: &mut [[f32; 8]; 8], plane: &[f32], stride: usize, top: usize, left: usize) {
    for (r, row) in block.iter_mut().enumerate() {
        let start = (top + r) * stride + left;
        row.copy_from_slice(&plane[start..start + 8]);
    }
}

/// The AAN scaled forward DCT (Arai, Agui, Nakajima), as in the IJG's float
/// DCT: columns first, with each of the 8 rows one vector of lanes, then the
/// same pass on the transpose, which is left transposed. The result is
/// scaled per coefficient; the quantisation multipliers undo it.
fn fdct(b: &mut [[f32; 8]; 8]) {
    pass(b);
    transpose(b);
    pass(b);
}

fn transpose(b: &mut [[f32; 8]; 8]) {
    let t = *b;
    for (i, row) in b.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = t[j][i];
        }
    }
}

/// One 1-D pass down the columns: `b[k]` holds sample `k` of all 8 columns.
fn pass(b: &mut [[f32; 8]; 8]) {
    let lanes = |f: &dyn Fn(usize) -> f32| -> [f32; 8] { std::array::from_fn(f) };
    let d = *b;
    let t0 = lanes(&|i| d[0][i] + d[7][i]);
    let t7 = lanes(&|i| d[0][i] - d[7][i]);
    let t1 = lanes(&|i| d[1][i] + d[6][i]);
    let t6 = lanes(&|i| d[1][i] - d[6][i]);
    let t2 = lanes(&|i| d[2][i] + d[5][i]);
    let t5 = lanes(&|i| d[2][i] - d[5][i]);
    let t3 = lanes(&|i| d[3][i] + d[4][i]);
    let t4 = lanes(&|i| d[3][i] - d[4][i]);
    for i in 0..8 {
        // Even part.
        let t10 = t0[i] + t3[i];
        let t13 = t0[i] - t3[i];
        let t11 = t1[i] + t2[i];
        let t12 = t1[i] - t2[i];
        b[0][i] = t10 + t11;
        b[4][i] = t10 - t11;
        let z1 = (t12 + t13) * 0.707_106_77;
        b[2][i] = t13 + z1;
        b[6][i] = t13 - z1;
        // Odd part.
        let t10 = t4[i] + t5[i];
        let t11 = t5[i] + t6[i];
        let t12 = t6[i] + t7[i];
        let z5 = (t10 - t12) * 0.382_683_43;
        let z2 = 0.541_196_1 * t10 + z5;
        let z4 = 1.306_563 * t12 + z5;
        let z3 = t11 * 0.707_106_77;
        let z11 = t7[i] + z3;
        let z13 = t7[i] - z3;
        b[5][i] = z13 + z2;
        b[3][i] = z13 - z2;
        b[1][i] = z11 + z4;
        b[7][i] = z11 - z4;
    }
}

/// Entropy-coded output with 0xFF stuffing (T.81 B.1.1.5).
struct BitWriter {
    out: Vec<u8>,
    /// Pending bits, the oldest highest; fewer than 32 between calls.
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> Self {
        Self { out, acc: 0, n: 0 }
    }

    /// A Huffman symbol followed by `len` extra bits (≤ 27 bits in all).
    fn put_symbol(&mut self, table: &Huffman, symbol: u8, extra: u16, len: u8) {
        let s = usize::from(symbol);
        let code_len = u32::from(table.len[s]);
        let len = u32::from(len);
        let word = (u64::from(table.code[s]) << len) | (u64::from(extra) & ((1 << len) - 1));
        self.put(word, code_len + len);
    }

    fn put(&mut self, bits: u64, len: u32) {
        self.acc = (self.acc << len) | bits;
        self.n += len;
        if self.n >= 32 {
            self.n -= 32;
            let word = (self.acc >> self.n) as u32;
            // Fast path: no 0xFF byte, so nothing to stuff.
            let ff = !word;
            let has_ff = (ff.wrapping_sub(0x0101_0101) & !ff & 0x8080_8080) != 0;
            if has_ff {
                for byte in word.to_be_bytes() {
                    self.out.push(byte);
                    if byte == 0xFF {
                        self.out.push(0);
                    }
                }
            } else {
                self.out.extend_from_slice(&word.to_be_bytes());
            }
        }
    }

    /// Writes the pending bits, the last byte padded with one-bits.
    fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.n % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.n >= 8 {
            self.n -= 8;
            let byte = (self.acc >> self.n) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
        }
        self.out
    }
}

/// Takes the header and tables out of a reference encoding, checking that it
/// is the layout this encoder writes: baseline, Y 2×2 then Cb and Cr 1×1.
fn parse_reference(jpeg: &[u8]) -> Option<JpegEncoder> {
    const AAN: [f32; 8] = [
        1.0,
        1.387_039_8,
        1.306_563,
        1.175_875_6,
        1.0,
        0.785_694_96,
        0.541_196_1,
        0.275_899_38,
    ];
    let mut quant_tables: [Option<[u16; 64]>; 4] = [None; 4];
    let mut dc_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut component_quant = [0usize; 3];
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    loop {
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        let len = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        let body = jpeg.get(at + 4..at + 2 + len)?;
        match marker {
            // DQT: one or more 8-bit tables, in zigzag order.
            0xDB => {
                for t in body.chunks(65) {
                    let (pq_tq, values) = t.split_first()?;
                    if pq_tq >> 4 != 0 || values.len() != 64 {
                        return None;
                    }
                    let mut natural = [0u16; 64];
                    for (k, &v) in values.iter().enumerate() {
                        natural[ZIGZAG[k]] = u16::from(v);
                    }
                    *quant_tables.get_mut(usize::from(pq_tq & 0x0F))? = Some(natural);
                }
            }
            // SOF0: the frame must be this image, in this layout.
            0xC0 => {
                let expected = [
                    8,
                    (HEIGHT >> 8) as u8,
                    HEIGHT as u8,
                    (WIDTH >> 8) as u8,
                    WIDTH as u8,
                    3,
                ];
                if body.get(..6)? != expected {
                    return None;
                }
                for (c, comp) in body.get(6..)?.chunks(3).enumerate() {
                    let sampling = if c == 0 { 0x22 } else { 0x11 };
                    if comp.len() != 3 || comp[1] != sampling {
                        return None;
                    }
                    *component_quant.get_mut(c)? = usize::from(comp[2]);
                }
            }
            // DHT: one or more tables.
            0xC4 => {
                let mut t = body;
                while let Some((&class_id, rest)) = t.split_first() {
                    let counts = rest.get(..16)?;
                    let total: usize = counts.iter().map(|&n| usize::from(n)).sum();
                    let symbols = rest.get(16..16 + total)?;
                    let table = Some(Huffman::from_dht(counts, symbols));
                    let slot = usize::from(class_id & 0x0F);
                    match class_id >> 4 {
                        0 => *dc_tables.get_mut(slot)? = table,
                        1 => *ac_tables.get_mut(slot)? = table,
                        _ => return None,
                    }
                    t = rest.get(16 + total..)?;
                }
            }
            // SOS: which tables each component uses; the header ends here.
            0xDA => {
                if *body.first()? != 3 {
                    return None;
                }
                let mut tables = Tables {
                    quant: [[0.0; 64]; 3],
                    dc: [Huffman::EMPTY; 3],
                    ac: [Huffman::EMPTY; 3],
                };
                for (c, &cq) in component_quant.iter().enumerate() {
                    let sel = *body.get(2 + c * 2)?;
                    tables.dc[c] = dc_tables.get(usize::from(sel >> 4))?.clone()?;
                    tables.ac[c] = ac_tables.get(usize::from(sel & 0x0F))?.clone()?;
                    let q = (*quant_tables.get(cq)?)?;
                    for (t, m) in tables.quant[c].iter_mut().enumerate() {
                        let n = (t % 8) * 8 + t / 8;
                        *m = 1.0 / (f32::from(q[n]) * AAN[n / 8] * AAN[n % 8] * 8.0);
                    }
                }
                return Some(JpegEncoder {
                    header: jpeg.get(..at + 2 + len)?.to_vec(),
                    tables,
                });
            }
            _ => {}
        }
        at += 2 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CaptchaRenderer, encode_jpeg};
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn decode(jpeg: &[u8]) -> Vec<u8> {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        let px = d.decode().expect("a decodable JPEG");
        let info = d.info().expect("info");
        assert_eq!((info.width, info.height), (WIDTH as u16, HEIGHT as u16));
        assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
        px
    }

    /// Peak signal-to-noise ratio of `b` against `a`, in dB.
    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64.powi(2) / mse).log10()
    }

    #[test]
    fn encodes_captchas_as_faithfully_as_the_reference_encoder() {
        let r = CaptchaRenderer::new().expect("renderer");
        for seed in 0..20 {
            let rgb = r.render_rgb("WXY9", &mut StdRng::seed_from_u64(seed));
            let ours = r.encode(&rgb).expect("encode");
            let reference = encode_jpeg(&rgb).expect("reference");
            let (p_ours, p_ref) = (psnr(&rgb, &decode(&ours)), psnr(&rgb, &decode(&reference)));
            assert!(
                p_ours > p_ref - 0.5,
                "seed {seed}: {p_ours:.2} dB against the reference's {p_ref:.2} dB"
            );
            assert!(p_ours > 24.0, "seed {seed}: {p_ours:.2} dB");
            // Same tables, so about the same size.
            let ratio = ours.len() as f64 / reference.len() as f64;
            assert!(
                (0.8..1.2).contains(&ratio),
                "seed {seed}: size ratio {ratio:.2}"
            );
        }
    }

    #[test]
    fn flat_colours_and_extremes_survive_the_round_trip() {
        let enc = JpegEncoder::new(75).expect("encoder");
        for colour in [
            [0u8, 0, 0],
            [255, 255, 255],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [37, 190, 220],
        ] {
            let rgb: Vec<u8> = colour.repeat(WIDTH * HEIGHT);
            let back = decode(&enc.encode(&rgb).expect("encode"));
            for (i, (&a, &b)) in rgb.iter().zip(&back).enumerate() {
                assert!(
                    a.abs_diff(b) <= 6,
                    "{colour:?}: byte {i} came back as {b}, not {a}"
                );
            }
        }
    }

    #[test]
    fn high_contrast_detail_needs_byte_stuffing_and_still_decodes() {
        // A checkerboard of black and white pixels: large AC coefficients,
        // long codes, and 0xFF bytes in the entropy-coded data.
        let enc = JpegEncoder::new(75).expect("encoder");
        let mut rgb = Vec::with_capacity(WIDTH * HEIGHT * 3);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let v = if (x + y) % 2 == 0 { 0 } else { 255 };
                rgb.extend([v, 255 - v, v]);
            }
        }
        let jpeg = enc.encode(&rgb).expect("encode");
        let reference = encode_jpeg(&rgb).expect("reference");
        let back = decode(&jpeg);
        assert!(psnr(&rgb, &back) > psnr(&rgb, &decode(&reference)) - 0.5);
    }

    #[test]
    fn a_wrong_size_is_an_error_not_a_panic() {
        let enc = JpegEncoder::new(75).expect("encoder");
        assert!(enc.encode(&[0u8; 10]).is_err());
    }

    #[test]
    fn magnitude_categories_follow_the_standard() {
        assert_eq!(magnitude(0), (0, 0));
        assert_eq!(magnitude(1), (1, 1));
        assert_eq!(magnitude(-1), (1, 0));
        assert_eq!(magnitude(-3), (2, 0b00));
        assert_eq!(magnitude(5), (3, 0b101));
        assert_eq!(magnitude(-5), (3, 0b010));
        assert_eq!(magnitude(1023), (10, 1023));
    }
}
