//! The scores: `logit[t, s] = sum_h w'[t,h] * relu(dot(q8[t,h], k8[s]) * k_scale[s])`.

use super::cache::PagedCache;
use super::fp8::{Quantized, fp8_decode};

/// Contiguous keys: `[S, D]` codes and `[S]` scales.
pub type KeyRows = Quantized;

/// Keys reached through block tables.
#[derive(Clone, Copy, Debug)]
pub struct PagedKeys<'a> {
    /// The cache.
    pub cache: &'a PagedCache,
    /// `[batch, stride]` i32 page ids.
    pub block_table: &'a [i32],
    /// Entries between block-table rows.
    pub bt_stride: usize,
    /// Valid columns of each row.
    pub bt_cols: usize,
    /// `[batch]` context lengths.
    pub context_lens: &'a [i32],
}

/// The values of all 256 e4m3 codes in f64 (NaN for the two NaN codes).
fn decode_table() -> [f64; 256] {
    std::array::from_fn(|b| fp8_decode(b as u8))
}

/// Longest rows [`exact_dot`] sums in any order (see there).
const MAX_EXACT_DIM: usize = 1 << 17;

/// `sum_i a[i] * b[i]` of e4m3 values, exactly, hence bit for bit the left-to-right f64 sum
/// (up to the sign of a zero, which the relu does not see). Every e4m3 value is an integer
/// times 2^-9 of magnitude below 2^18 · 2^-9, so every product is an integer times 2^-18 below
/// 2^36 · 2^-18 and every partial sum of at most 2^17 of them fits f64's 53-bit significand:
/// no rounding in any order, so eight independent accumulators (vectorised) are exact too. A
/// NaN in either row makes the sum NaN in any order. Longer rows take the literal sum.
fn exact_dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    if n > MAX_EXACT_DIM {
        return a.iter().zip(b).map(|(x, y)| x * y).sum();
    }
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[i] += x * y;
    }
    acc.iter().sum()
}

/// One token's logit against one key, in f64, rounded to f32: `q` is the token's `[heads, d]`
/// decoded query, `w` its `[heads]` weights, `key` the decoded key. `relu(NaN)` is 0.
fn logit(q: &[f64], d: usize, w: &[f32], key: &[f64], scale: f32) -> f32 {
    let mut sum = 0.0f64;
    for (h, &wh) in w.iter().enumerate() {
        let x = exact_dot(&q[h * d..(h + 1) * d], key) * scale as f64;
        sum += wh as f64 * if x > 0.0 { x } else { 0.0 };
    }
    sum as f32
}

/// Decodes `codes` into `out` (replacing its contents) through `table`.
fn decode_into(table: &[f64; 256], codes: &[u8], out: &mut Vec<f64>) {
    out.clear();
    out.extend(codes.iter().map(|&c| table[c as usize]));
}

/// Runs `f(row, out_row, scratch)` for every `stride`-long row of `out`, rows shared out to
/// every core (each row is written by one call, so the result does not depend on the split).
fn for_each_row<F>(out: &mut [f32], stride: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut [Vec<f64>; 2]) + Sync,
{
    if stride == 0 || out.is_empty() {
        return;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(out.len() / stride);
    let rows = std::sync::Mutex::new(out.chunks_mut(stride).enumerate());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut scratch = [Vec::new(), Vec::new()];
                loop {
                    let next = rows.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((r, row)) = next else { break };
                    f(r, row, &mut scratch);
                }
            });
        }
    });
}

/// Row `t`'s `[heads, d]` queries of `q8` (`[T * heads, d]` codes), decoded into `out`;
/// returns `d`.
fn decode_query(
    table: &[f64; 256],
    q8: &Quantized,
    t: usize,
    heads: usize,
    out: &mut Vec<f64>,
) -> usize {
    let d = q8.codes.len() / q8.scales.len().max(1);
    decode_into(table, &q8.codes[t * heads * d..(t + 1) * heads * d], out);
    d
}

/// Prefill: `[T, stride]` logits; row `t` has keys `s` in `[ks[t], ke[t])` (clamped to
/// `[0, S]`), every other column `-inf`.
pub fn scores_ragged(
    heads: usize,
    q8: &Quantized,
    wq: &[f32],
    keys: &KeyRows,
    ks: &[i32],
    ke: &[i32],
    stride: usize,
) -> Vec<f32> {
    let n = keys.scales.len() as i64;
    let table = decode_table();
    let mut out = vec![f32::NEG_INFINITY; ks.len() * stride];
    for_each_row(&mut out, stride, |t, row, [q, key]| {
        let lo = (ks[t] as i64).clamp(0, n);
        let hi = (ke[t] as i64).clamp(lo, n);
        if lo as usize >= (hi as usize).min(stride) {
            return; // nothing to decode the query for
        }
        let d = decode_query(&table, q8, t, heads, q);
        let w = &wq[t * heads..(t + 1) * heads];
        let (lo, hi) = (lo as usize, (hi as usize).min(stride));
        for (s, cell) in row[lo..hi].iter_mut().enumerate().map(|(i, c)| (lo + i, c)) {
            decode_into(&table, keys.row(s), key);
            *cell = logit(q, d, w, key, keys.scales[s]);
        }
    });
    out
}

/// Decode: `[batch, stride]` logits; row `b` has its first `context_lens[b]` keys (clamped to
/// `[0, min(stride, bt_cols * page_size)]`) through its block table; a key on a page id outside
/// the cache, and every column past the context, is `-inf`.
pub fn scores_paged(
    heads: usize,
    q8: &Quantized,
    wq: &[f32],
    keys: &PagedKeys,
    stride: usize,
) -> Vec<f32> {
    let p = keys.cache.layout.page_size;
    let batch = keys.context_lens.len();
    let cap = (keys.bt_cols * p).min(stride) as i64;
    let table = decode_table();
    let mut out = vec![f32::NEG_INFINITY; batch * stride];
    for_each_row(&mut out, stride, |b, row, [q, key]| {
        let len = (keys.context_lens[b] as i64).clamp(0, cap) as usize;
        if len == 0 {
            return;
        }
        let d = decode_query(&table, q8, b, heads, q);
        let w = &wq[b * heads..(b + 1) * heads];
        for (s, cell) in row.iter_mut().enumerate().take(len) {
            let page = keys.block_table[b * keys.bt_stride + s / p];
            if page < 0 || page as usize >= keys.cache.pages() {
                continue;
            }
            let (codes, scale) = keys.cache.key(page as usize * p + s % p);
            decode_into(&table, codes, key);
            *cell = logit(q, d, w, key, scale);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::fp8_encode;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The contract literally: one f64 sum per head, left to right, of decoded products.
    fn literal_logit(
        q8: &Quantized,
        wq: &[f32],
        t: usize,
        heads: usize,
        key: &[u8],
        scale: f32,
    ) -> f32 {
        let mut sum = 0.0f64;
        for h in 0..heads {
            let dot: f64 = q8
                .row(t * heads + h)
                .iter()
                .zip(key)
                .map(|(&a, &b)| fp8_decode(a) * fp8_decode(b))
                .sum();
            let x = dot * scale as f64;
            sum += wq[t * heads + h] as f64 * if x > 0.0 { x } else { 0.0 };
        }
        sum as f32
    }

    /// Codes that stress exactness: the largest (±448) and smallest (±2^-9) magnitudes side by
    /// side, random codes, and NaN codes in a few rows.
    fn stress_codes(r: &mut StdRng, rows: usize, dim: usize) -> Vec<u8> {
        let mut codes: Vec<u8> = (0..rows * dim)
            .map(|i| match r.random_range(0..4) {
                0 => [0x7e, 0xfe, 0x01, 0x81][i % 4],
                _ => r.random::<u8>() & !0x78 | (r.random_range(0..15u8) << 3),
            })
            .collect();
        for row in (0..rows).filter(|row| row % 7 == 3) {
            codes[row * dim + (row % dim)] = if row % 2 == 0 { 0x7f } else { 0xff };
        }
        codes
    }

    #[test]
    fn fast_scores_equal_the_literal_sum_bit_for_bit() {
        let mut r = StdRng::seed_from_u64(5);
        for (heads, dim, tokens, n_keys) in [
            (16, 128, 5, 40),
            (32, 64, 3, 33),
            (4, 13, 4, 9),
            (2, 2, 2, 5),
        ] {
            let q8 = Quantized {
                codes: stress_codes(&mut r, tokens * heads, dim),
                scales: vec![1.0; tokens * heads],
            };
            let mut scales: Vec<f32> = (0..n_keys).map(|_| r.random_range(1e-3..2.0)).collect();
            scales[..4].copy_from_slice(&[0.0, f32::NAN, f32::INFINITY, 1e-30]);
            let keys = Quantized {
                codes: stress_codes(&mut r, n_keys, dim),
                scales,
            };
            let mut wq: Vec<f32> = (0..tokens * heads)
                .map(|_| r.random_range(-1.0..1.0))
                .collect();
            wq[1] = 0.0;
            let ks: Vec<i32> = (0..tokens as i32).map(|t| t - 1).collect();
            let ke: Vec<i32> = (0..tokens).map(|t| (n_keys - t) as i32).collect();
            let stride = n_keys + 2;
            let got = scores_ragged(heads, &q8, &wq, &keys, &ks, &ke, stride);
            for t in 0..tokens {
                let lo = ks[t].max(0) as usize;
                for s in 0..stride {
                    let want = if (lo..ke[t] as usize).contains(&s) {
                        literal_logit(&q8, &wq, t, heads, keys.row(s), keys.scales[s])
                    } else {
                        f32::NEG_INFINITY
                    };
                    let g = got[t * stride + s];
                    assert_eq!(
                        g.to_bits(),
                        want.to_bits(),
                        "h {heads} d {dim}: row {t} col {s}: {g} vs {want}"
                    );
                }
            }
        }
        // The largest sum of the largest products, and the largest next to the smallest.
        let table = decode_table();
        let big = vec![448.0f64; 128];
        assert_eq!(exact_dot(&big, &big), 128.0 * 448.0 * 448.0);
        let mut mixed = vec![table[0x01]; 128];
        mixed[0] = 448.0;
        mixed[77] = -448.0;
        assert_eq!(
            exact_dot(&mixed, &mixed),
            2.0 * 448.0 * 448.0 + 126.0 * 2f64.powi(-18)
        );
    }

    #[test]
    fn logit_by_hand() {
        // Two heads, D = 2. q = [[1, 2], [-1, 0.5]], key = [2, 1], scale 0.5, w' = [1, 3].
        // dots: 4, -1.5 -> relu(dot * 0.5) = 2, 0 -> logit 1*2 + 3*0 = 2.
        let q8 = Quantized {
            codes: [1.0, 2.0, -1.0, 0.5].map(fp8_encode).to_vec(),
            scales: vec![1.0, 1.0],
        };
        let keys = Quantized {
            codes: [2.0, 1.0, -2.0, -1.0].map(fp8_encode).to_vec(),
            scales: vec![0.5, 0.25],
        };
        let out = scores_ragged(2, &q8, &[1.0, 3.0], &keys, &[0], &[2], 3);
        // Key 1: dots -4, 1.5 -> relu(-1) = 0, relu(0.375) -> 3 * 0.375.
        assert_eq!(out, vec![2.0, 1.125, f32::NEG_INFINITY]);
        // An empty and an inverted range are all -inf; ranges clamp to the key count.
        let q8x3 = Quantized {
            codes: q8.codes.repeat(3),
            scales: q8.scales.repeat(3),
        };
        let w = [1.0, 3.0].repeat(3);
        let out = scores_ragged(2, &q8x3, &w, &keys, &[1, 5, -4], &[1, 2, 1], 2);
        assert_eq!(&out[..4], &[f32::NEG_INFINITY; 4]);
        assert_eq!(&out[4..], &[2.0, f32::NEG_INFINITY]);
    }
}
