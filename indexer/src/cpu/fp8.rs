//! FP8 e4m3 emulation and the per-row quantizer.

use crate::config::ScaleFormat;

/// e4m3 encoding of `x` (round to nearest even, saturate to ±448 including infinities, NaN stays
/// NaN): the hadamard crate's encoder, bit-exact with the prelude's `dsa::fp8e4m3_encode2`.
pub fn fp8_encode(x: f32) -> u8 {
    dsa_hadamard::cpu::fp8e4m3_encode(x)
}

/// The value of an e4m3 byte (NaN for `S.1111.111`).
pub fn fp8_decode(b: u8) -> f64 {
    dsa_hadamard::cpu::fp8e4m3_decode(b) as f64
}

/// Rows of FP8 codes with one f32 scale per row; `code * scale` dequantizes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quantized {
    /// `[rows, dim]` e4m3 bytes.
    pub codes: Vec<u8>,
    /// `[rows]` scales.
    pub scales: Vec<f32>,
}

impl Quantized {
    /// Row `r`'s codes.
    pub fn row(&self, r: usize) -> &[u8] {
        let dim = self.codes.len() / self.scales.len().max(1);
        &self.codes[r * dim..(r + 1) * dim]
    }

    /// Appends a quantized row.
    pub fn push(&mut self, codes: &[u8], scale: f32) {
        self.codes.extend_from_slice(codes);
        self.scales.push(scale);
    }
}

/// Quantizes one row with one scale: `amax` of the values rounded to f32,
/// `s = max(amax, 1e-4) / 448` in f32 (rounded up to a power of two for
/// [`ScaleFormat::Pow2`]), `inv = 1 / s` in f32, `code = e4m3(f32(v * inv))`.
pub fn quantize_row(values: &[f64], format: ScaleFormat) -> (Vec<u8>, f32) {
    let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs() as f32));
    let s = dsa_hadamard::cpu::fp8_scale(amax, format == ScaleFormat::Pow2);
    let inv = 1.0f32 / s;
    let codes = values
        .iter()
        .map(|&v| fp8_encode((v * inv as f64) as f32))
        .collect();
    (codes, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The nearest finite e4m3 value by brute force over all 254 finite codes, ties to the
    /// even code, saturating: an independent statement of the encoding rule.
    fn brute_force(x: f32) -> u8 {
        if x.is_nan() {
            return if x.is_sign_negative() { 0xff } else { 0x7f };
        }
        let sign = if x.is_sign_negative() { 0x80 } else { 0 };
        let a = (x.abs() as f64).min(448.0);
        let mut best = 0u8;
        for code in 0u8..=0x7e {
            let (d, e) = ((fp8_decode(code) - a).abs(), (fp8_decode(best) - a).abs());
            if d < e || (d == e && code % 2 == 0 && best % 2 == 1) {
                best = code;
            }
        }
        sign | best
    }

    #[test]
    fn encoder_matches_brute_force_nearest_even() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut xs: Vec<f32> = (0..20000)
            .map(|_| {
                let m: f32 = rng.random_range(-1.0..1.0);
                m * 2f32.powi(rng.random_range(-12..10))
            })
            .collect();
        // Every code's value and every midpoint between neighbours (the ties).
        for code in 0u8..0x7e {
            let (a, b) = (fp8_decode(code), fp8_decode(code + 1));
            xs.extend([a as f32, ((a + b) / 2.0) as f32, -((a + b) / 2.0) as f32]);
        }
        xs.extend([
            448.0,
            464.0,
            480.0,
            1e9,
            f32::INFINITY,
            -f32::INFINITY,
            0.0,
            -0.0,
        ]);
        xs.extend([2f32.powi(-10), 2f32.powi(-9) * 1.5, -2f32.powi(-7) * 0.75]);
        for x in xs {
            assert_eq!(fp8_encode(x), brute_force(x), "x = {x:e}");
        }
        assert_eq!(fp8_encode(f32::NAN) & 0x7f, 0x7f);
    }

    #[test]
    fn hand_checked_codes_and_values() {
        assert_eq!(fp8_encode(1.0), 0x38);
        assert_eq!(fp8_encode(-2.0), 0xc0);
        assert_eq!(fp8_encode(448.0), 0x7e);
        assert_eq!(fp8_encode(1e6), 0x7e);
        assert_eq!(fp8_encode(-f32::INFINITY), 0xfe);
        assert_eq!(fp8_encode(2f32.powi(-9)), 0x01); // smallest subnormal
        assert_eq!(fp8_encode(2f32.powi(-10)), 0x00); // tie to even: zero
        assert_eq!(fp8_encode(1.0625), 0x38); // halfway 1 and 1.125: even mantissa
        assert_eq!(fp8_encode(1.1875), 0x3a); // halfway 1.125 and 1.25: even is 1.25
        assert_eq!(fp8_decode(0x7e), 448.0);
        assert!(fp8_decode(0x7f).is_nan());
    }

    #[test]
    fn quantize_row_scale_rule() {
        let (codes, s) = quantize_row(&[448.0, -224.0, 0.0, 1.0], ScaleFormat::F32);
        assert_eq!(s, 1.0);
        assert_eq!(codes, vec![0x7e, 0xf6, 0x00, 0x38]);
        // A zero row uses the floor 1e-4 / 448 and encodes zeros.
        let (codes, s) = quantize_row(&[0.0; 4], ScaleFormat::F32);
        assert_eq!(s, 1e-4f32 / 448.0);
        assert_eq!(codes, vec![0; 4]);
        // Pow2: 3/448 rounds up to 2^-7; the amax then maps below 448.
        let (codes, s) = quantize_row(&[3.0, -1.5], ScaleFormat::Pow2);
        assert_eq!(s, 2f32.powi(-7));
        assert_eq!(codes[0], fp8_encode(384.0));
        // The amax element always lands on ±448 with f32 scales (up to one rounding).
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let v: Vec<f64> = (0..64).map(|_| rng.random_range(-5.0..5.0)).collect();
            let (codes, s) = quantize_row(&v, ScaleFormat::F32);
            let top = codes
                .iter()
                .map(|&c| fp8_decode(c).abs())
                .fold(0.0, f64::max);
            assert_eq!(top, 448.0);
            for (x, c) in v.iter().zip(&codes) {
                let back = fp8_decode(*c) * s as f64;
                assert!((back - x).abs() <= x.abs() / 16.0 + 2f64.powi(-9) * s as f64 + 1e-12);
            }
        }
    }
}
