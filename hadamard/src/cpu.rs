//! The float64 reference: the contract of [`crate`] implemented literally, used as the test
//! oracle (and usable on hosts without a GPU).

/// `H_n[i][j] = (-1)^popcount(i & j)` (Sylvester order, as `scipy.linalg.hadamard`), row-major.
/// `n` must be a power of two.
pub fn hadamard_matrix(n: usize) -> Vec<f64> {
    (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            if (i & j).count_ones() % 2 == 0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// `y = x @ H_n * scale` for one row, by the matrix product (O(n^2); the literal definition).
pub fn hadamard_row_naive(x: &[f64], scale: f64) -> Vec<f64> {
    let n = x.len();
    let h = hadamard_matrix(n);
    (0..n)
        .map(|j| (0..n).map(|i| x[i] * h[i * n + j]).sum::<f64>() * scale)
        .collect()
}

/// `y = x @ H_n * scale` for one row by the fast butterfly (O(n log n)); `n` a power of two.
pub fn hadamard_row(x: &[f64], scale: f64) -> Vec<f64> {
    let mut y = x.to_vec();
    let mut h = 1;
    while h < y.len() {
        for i in (0..y.len()).step_by(2 * h) {
            for j in i..i + h {
                let (a, b) = (y[j], y[j + h]);
                y[j] = a + b;
                y[j + h] = a - b;
            }
        }
        h *= 2;
    }
    y.iter_mut().for_each(|v| *v *= scale);
    y
}

/// Every row of a strided `[rows, n]` input (element `r * stride + i`), out contiguous.
pub fn hadamard_rows(x: &[f64], rows: usize, n: usize, stride: usize, scale: f64) -> Vec<f64> {
    (0..rows)
        .flat_map(|r| hadamard_row(&x[r * stride..r * stride + n], scale))
        .collect()
}

/// The default scale, `1/sqrt(n)` rounded to f32.
pub fn default_scale(n: usize) -> f32 {
    (1.0 / (n as f64).sqrt()) as f32
}

/// FP8 e4m3 (OCP e4m3fn: bias 7, no infinities, max 448, NaN `S.1111.111`) encoding of `x`:
/// round to nearest even, saturate to ±448 (infinities included), NaN stays NaN. Bit-exact with
/// the device prelude's `dsa::fp8e4m3_encode2`.
pub fn fp8e4m3_encode(x: f32) -> u8 {
    let b = x.to_bits();
    let sign = ((b >> 24) & 0x80) as u8;
    let a = b & 0x7fff_ffff;
    if a > 0x7f80_0000 {
        return sign | 0x7f;
    }
    if a >= 0x43e0_0000 {
        return sign | 0x7e;
    }
    if a < 0x3c80_0000 {
        // Subnormal range (< 2^-6): quantum 2^-9; the product is exact, round half to even.
        let q = f32::from_bits(a) * 512.0;
        return sign | q.round_ties_even() as u8;
    }
    let exp = (a >> 23) + 7 - 127;
    let keep = (a >> 20) & 0x7;
    let rest = a & 0xf_ffff;
    let mut code = (exp << 3) | keep;
    if rest > 0x8_0000 || (rest == 0x8_0000 && keep & 1 == 1) {
        code += 1;
    }
    sign | code.min(0x7e) as u8
}

/// The value of an e4m3 byte (NaN for `S.1111.111`).
pub fn fp8e4m3_decode(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = (b >> 3) & 0xf;
    let m = (b & 0x7) as f32;
    if e == 0xf && b & 0x7 == 0x7 {
        return f32::NAN;
    }
    if e == 0 {
        return sign * m * 2f32.powi(-9);
    }
    sign * (1.0 + m / 8.0) * 2f32.powi(e as i32 - 7)
}

/// The scale rule for one group: `max(amax, 1e-4) / 448`, rounded up to a power of two when
/// `pow2`. f32 arithmetic, as on the device.
pub fn fp8_scale(amax: f32, pow2: bool) -> f32 {
    let s = amax.max(1e-4) / 448.0;
    if !pow2 {
        return s;
    }
    let b = s.to_bits();
    if b & 0x7f_ffff == 0 {
        s
    } else {
        f32::from_bits((b & 0xff80_0000) + 0x80_0000)
    }
}

/// Quantize contiguous rows of f32 values (the transform's output) with one scale per `group`
/// elements: returns the e4m3 bytes (`[rows, n]`) and scales (`[rows, n / group]`).
pub fn quantize_fp8(values: &[f32], n: usize, group: usize, pow2: bool) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / group);
    for g in values.chunks(group.min(n)) {
        let amax = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let s = fp8_scale(amax, pow2);
        let inv = 1.0 / s;
        scales.push(s);
        bytes.extend(g.iter().map(|&v| fp8e4m3_encode(v * inv)));
    }
    (bytes, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_matrices_by_hand() {
        assert_eq!(hadamard_matrix(2), vec![1.0, 1.0, 1.0, -1.0]);
        #[rustfmt::skip]
        let h4 = vec![
            1.0,  1.0,  1.0,  1.0,
            1.0, -1.0,  1.0, -1.0,
            1.0,  1.0, -1.0, -1.0,
            1.0, -1.0, -1.0,  1.0,
        ];
        assert_eq!(hadamard_matrix(4), h4);
        // [1, 2, 3, 4] @ H_4 = [10, -2, -4, 0]
        assert_eq!(
            hadamard_row(&[1.0, 2.0, 3.0, 4.0], 1.0),
            vec![10.0, -2.0, -4.0, 0.0]
        );
        assert_eq!(hadamard_row(&[3.0, 5.0], 0.5), vec![4.0, -1.0]);
    }

    #[test]
    fn butterfly_matches_the_matrix_product() {
        for log_n in 1..=9 {
            let n = 1usize << log_n;
            let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 113) as f64 - 56.0).collect();
            let (a, b) = (hadamard_row(&x, 0.25), hadamard_row_naive(&x, 0.25));
            assert_eq!(a, b, "n={n}");
        }
    }

    #[test]
    fn orthonormal_scale_is_an_involution() {
        for log_n in 1..=15 {
            let n = 1usize << log_n;
            let s = 1.0 / (n as f64).sqrt();
            let x: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.731).sin()).collect();
            let back = hadamard_row(&hadamard_row(&x, s), s);
            let err = x
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-12, "n={n}: {err}");
        }
    }

    #[test]
    fn strided_rows() {
        let x = [1.0, 2.0, 99.0, 3.0, 5.0, 99.0];
        assert_eq!(hadamard_rows(&x, 2, 2, 3, 1.0), vec![3.0, -1.0, 8.0, -2.0]);
    }

    /// The e4m3 rule by definition: the nearest of the finite values, ties to the even code.
    fn encode_by_definition(table: &[f64], x: f32) -> u8 {
        let sign = if x.is_sign_negative() { 0x80 } else { 0 };
        if x.is_nan() {
            return sign | 0x7f;
        }
        let a = x.abs() as f64;
        if a >= 448.0 {
            return sign | 0x7e;
        }
        let mut best = 0usize;
        for code in 1..table.len() {
            let (d, db) = ((table[code] - a).abs(), (table[best] - a).abs());
            if d < db || (d == db && code % 2 == 0) {
                best = code;
            }
        }
        sign | best as u8
    }

    #[test]
    fn fp8_decode_table() {
        assert_eq!(fp8e4m3_decode(0x7e), 448.0);
        assert_eq!(fp8e4m3_decode(0x01), 2f32.powi(-9));
        assert_eq!(fp8e4m3_decode(0x08), 2f32.powi(-6));
        assert_eq!(fp8e4m3_decode(0x38), 1.0);
        assert_eq!(fp8e4m3_decode(0xb8), -1.0);
        assert!(fp8e4m3_decode(0x7f).is_nan() && fp8e4m3_decode(0xff).is_nan());
    }

    #[test]
    fn fp8_encode_follows_the_rule() {
        // Every code round-trips; every midpoint and its f32 neighbours round by the rule.
        let mut probes = vec![0.0f32, -0.0, 447.9, 448.0, 460.0, 464.0, 1e9, f32::INFINITY];
        for code in 0..=0x7eu8 {
            let v = fp8e4m3_decode(code);
            assert_eq!(fp8e4m3_encode(v), code);
            assert_eq!(fp8e4m3_encode(-v), code | 0x80);
            let mid = ((v as f64 + fp8e4m3_decode(code + 1) as f64) / 2.0) as f32;
            for p in [
                v,
                mid,
                f32::from_bits(mid.to_bits() - 1),
                f32::from_bits(mid.to_bits() + 1),
            ] {
                probes.extend([p, -p]);
            }
        }
        // A sweep over f32 bit patterns up to 512 (every 4099th pattern).
        probes.extend((0..0x4400_0000u32).step_by(4099).map(f32::from_bits));
        let table: Vec<f64> = (0..=0x7eu8).map(|c| fp8e4m3_decode(c) as f64).collect();
        for p in probes {
            assert_eq!(
                fp8e4m3_encode(p),
                encode_by_definition(&table, p),
                "{p:e} ({:#x})",
                p.to_bits()
            );
        }
        assert_eq!(fp8e4m3_encode(f32::NAN), 0x7f);
        assert_eq!(fp8e4m3_encode(f32::NEG_INFINITY), 0xfe);
    }

    #[test]
    fn fp8_scale_rule() {
        assert_eq!(fp8_scale(448.0, false), 1.0);
        assert_eq!(fp8_scale(0.0, false), 1e-4 / 448.0);
        assert_eq!(fp8_scale(448.0, true), 1.0);
        assert_eq!(fp8_scale(449.0, true), 2.0);
        assert_eq!(fp8_scale(100.0, true), 0.25);
        let (bytes, scales) = quantize_fp8(&[448.0, -224.0, 1.0, 0.0], 4, 2, false);
        assert_eq!(scales, vec![1.0, 1.0 / 448.0]);
        assert_eq!(bytes, vec![0x7e, 0xf6, 0x7e, 0x00]);
    }
}
