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

/// One token's logit against one key, in f64, rounded to f32. `relu(NaN)` is 0.
fn logit(q8: &Quantized, wq: &[f32], t: usize, heads: usize, key: &[u8], scale: f32) -> f32 {
    let mut sum = 0.0f64;
    for h in 0..heads {
        let q = q8.row(t * heads + h);
        let dot: f64 = q
            .iter()
            .zip(key)
            .map(|(&a, &b)| fp8_decode(a) * fp8_decode(b))
            .sum();
        let x = dot * scale as f64;
        sum += wq[t * heads + h] as f64 * if x > 0.0 { x } else { 0.0 };
    }
    sum as f32
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
    let mut out = vec![f32::NEG_INFINITY; ks.len() * stride];
    for t in 0..ks.len() {
        let lo = (ks[t] as i64).clamp(0, n);
        let hi = (ke[t] as i64).clamp(lo, n);
        for s in lo as usize..(hi as usize).min(stride) {
            out[t * stride + s] = logit(q8, wq, t, heads, keys.row(s), keys.scales[s]);
        }
    }
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
    let mut out = vec![f32::NEG_INFINITY; batch * stride];
    for b in 0..batch {
        let len = (keys.context_lens[b] as i64).clamp(0, cap) as usize;
        for s in 0..len {
            let page = keys.block_table[b * keys.bt_stride + s / p];
            if page < 0 || page as usize >= keys.cache.pages() {
                continue;
            }
            let (key, scale) = keys.cache.key(page as usize * p + s % p);
            out[b * stride + s] = logit(q8, wq, b, heads, key, scale);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::fp8_encode;

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
