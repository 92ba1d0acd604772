//! Shared pieces of the indexer pipeline tests: random inputs rounded to the input dtype,
//! random caches with shuffled pages, uploads, and comparisons.

#![allow(dead_code)] // each test binary uses a subset

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DeviceRepr};
use dsa_indexer::cpu::{PagedCache, Quantized, TokenInputs};
use dsa_indexer::{DType, IndexerConfig};
use dsa_jit_cache::{DeviceInfo, dptr};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// The GPU, a fresh stream, its facts.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub info: DeviceInfo,
}

pub fn gpu() -> Gpu {
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.new_stream().unwrap();
    let info = DeviceInfo::of(&ctx).unwrap();
    Gpu { ctx, stream, info }
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Rounds to the dtype (the reference sees what the GPU sees) and returns the device bytes.
pub fn to_dtype(v: &mut [f32], dtype: DType) -> Vec<u8> {
    v.iter_mut()
        .flat_map(|x| match dtype {
            DType::Bf16 => {
                let h = half::bf16::from_f32(*x);
                *x = h.to_f32();
                h.to_le_bytes().to_vec()
            }
            DType::F16 => {
                let h = half::f16::from_f32(*x);
                *x = h.to_f32();
                h.to_le_bytes().to_vec()
            }
            DType::F32 => x.to_le_bytes().to_vec(),
        })
        .collect()
}

pub fn up<T: DeviceRepr>(s: &Arc<CudaStream>, v: &[T]) -> CudaSlice<T> {
    s.clone_htod(v).unwrap()
}

pub fn down<T: DeviceRepr + Default + Clone>(s: &Arc<CudaStream>, d: &CudaSlice<T>) -> Vec<T> {
    s.clone_dtoh(d).unwrap()
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn i32s(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Host copies of one call's per-token inputs (already rounded) and their device bytes.
pub struct TokenData {
    pub q: Vec<f32>,
    pub weights: Vec<f32>,
    pub k: Vec<f32>,
    pub ln_weight: Vec<f32>,
    pub ln_bias: Vec<f32>,
    pub positions: Vec<i64>,
    pub cos_sin: Vec<f32>,
    pub bytes: [Vec<u8>; 4], // q, k, ln_weight, ln_bias in the input dtype
}

impl TokenData {
    /// Random queries/keys (keys with a non-zero mean, as real projections have), random
    /// weights, a real RoPE table (theta 10000) for `max_pos` positions.
    pub fn random(r: &mut StdRng, c: &IndexerConfig, positions: Vec<i64>, max_pos: usize) -> Self {
        let n = positions.len();
        let mut q: Vec<f32> = (0..n * c.heads * c.dim)
            .map(|_| r.random_range(-2.0..2.0))
            .collect();
        let mut k: Vec<f32> = (0..n * c.dim).map(|_| r.random_range(-1.0..3.0)).collect();
        let mut g: Vec<f32> = (0..c.dim).map(|_| r.random_range(0.5..1.5)).collect();
        let mut b: Vec<f32> = (0..c.dim).map(|_| r.random_range(-0.2..0.2)).collect();
        let weights = (0..n * c.heads)
            .map(|_| r.random_range(-1.0..1.0))
            .collect();
        let half = c.rope_dim / 2;
        let mut cos_sin = Vec::with_capacity(max_pos * c.rope_dim);
        for p in 0..max_pos {
            let angles: Vec<f64> = (0..half)
                .map(|j| p as f64 / 10000f64.powf(2.0 * j as f64 / c.rope_dim as f64))
                .collect();
            cos_sin.extend(angles.iter().map(|a| a.cos() as f32));
            cos_sin.extend(angles.iter().map(|a| a.sin() as f32));
        }
        let bytes = [
            to_dtype(&mut q, c.input),
            to_dtype(&mut k, c.input),
            to_dtype(&mut g, c.input),
            to_dtype(&mut b, c.input),
        ];
        TokenData {
            q,
            weights,
            k,
            ln_weight: g,
            ln_bias: b,
            positions,
            cos_sin,
            bytes,
        }
    }

    pub fn inputs(&self) -> TokenInputs<'_> {
        TokenInputs {
            q: &self.q,
            weights: &self.weights,
            k: &self.k,
            ln_weight: Some(&self.ln_weight),
            ln_bias: Some(&self.ln_bias),
            positions: &self.positions,
            cos_sin: &self.cos_sin,
        }
    }
}

/// Device copies of a [`TokenData`] plus the cache slots.
pub struct TokenBuffers {
    pub q: CudaSlice<u8>,
    pub k: CudaSlice<u8>,
    pub g: CudaSlice<u8>,
    pub b: CudaSlice<u8>,
    pub weights: CudaSlice<f32>,
    pub positions: CudaSlice<i64>,
    pub cos_sin: CudaSlice<f32>,
    pub loc: CudaSlice<i64>,
}

impl TokenBuffers {
    pub fn new(s: &Arc<CudaStream>, t: &TokenData, loc: &[i64]) -> Self {
        let table = if t.cos_sin.is_empty() {
            vec![0.0]
        } else {
            t.cos_sin.clone()
        };
        TokenBuffers {
            q: up(s, &t.bytes[0]),
            k: up(s, &t.bytes[1]),
            g: up(s, &t.bytes[2]),
            b: up(s, &t.bytes[3]),
            weights: up(s, &t.weights),
            positions: up(s, &t.positions),
            cos_sin: up(s, &table),
            loc: up(
                s,
                &if loc.is_empty() {
                    vec![-1]
                } else {
                    loc.to_vec()
                },
            ),
        }
    }

    /// Overwrite the buffers with `t` and the cache slots `loc` (same sizes as at creation).
    pub fn upload(&mut self, s: &Arc<CudaStream>, t: &TokenData, loc: &[i64]) {
        for (h, d) in t
            .bytes
            .iter()
            .zip([&mut self.q, &mut self.k, &mut self.g, &mut self.b])
        {
            s.memcpy_htod(h, d).unwrap();
        }
        s.memcpy_htod(&t.weights, &mut self.weights).unwrap();
        s.memcpy_htod(&t.positions, &mut self.positions).unwrap();
        s.memcpy_htod(&t.cos_sin, &mut self.cos_sin).unwrap();
        s.memcpy_htod(loc, &mut self.loc).unwrap();
    }

    pub fn args(&self, s: &Arc<CudaStream>, cache: u64) -> dsa_indexer::TokenArgs {
        dsa_indexer::TokenArgs {
            q: dptr(&self.q, s),
            weights: dptr(&self.weights, s),
            k: dptr(&self.k, s),
            ln_weight: dptr(&self.g, s),
            ln_bias: dptr(&self.b, s),
            positions: dptr(&self.positions, s),
            cos_sin: dptr(&self.cos_sin, s),
            out_cache_loc: dptr(&self.loc, s),
            cache,
        }
    }
}

/// A decode shape of `batch` requests of up to `stride` tokens, its block-table width, and
/// cache pages for all of them plus a few spare.
pub fn decode_shape(c: &IndexerConfig, batch: usize, stride: usize) -> dsa_indexer::DecodeShape {
    let bt_stride = stride.div_ceil(c.page_size);
    dsa_indexer::DecodeShape {
        batch,
        stride,
        bt_stride,
        max_positions: stride,
        cache_pages: batch * bt_stride + 4,
    }
}

/// Per request of context length `lens[b]`: its positions (last token's, 0 for none) and the
/// cache slot of its newest key through `table` (-1 for an empty context).
pub fn newest_tokens(
    c: &IndexerConfig,
    lens: &[i32],
    table: &[i32],
    bt_stride: usize,
) -> (Vec<i64>, Vec<i64>) {
    let p = c.page_size;
    let positions = lens.iter().map(|&l| (l as i64 - 1).max(0)).collect();
    let locs = lens
        .iter()
        .enumerate()
        .map(|(b, &l)| {
            if l == 0 {
                return -1;
            }
            let last = l as usize - 1;
            table[b * bt_stride + last / p] as i64 * p as i64 + (last % p) as i64
        })
        .collect();
    (positions, locs)
}

/// Random FP8 keys (no NaN codes) with positive scales, `n` rows of `dim`.
pub fn random_keys(r: &mut StdRng, n: usize, dim: usize) -> Quantized {
    Quantized {
        codes: (0..n * dim)
            .map(|_| {
                let b: u8 = r.random();
                if b & 0x7f == 0x7f { b ^ 1 } else { b }
            })
            .collect(),
        scales: (0..n).map(|_| r.random_range(0.001..0.02)).collect(),
    }
}

/// A cache of `pages` pages of random keys and a block table giving each request the pages it
/// needs, drawn without replacement from a shuffled pool (never contiguous in order).
pub fn random_cache_and_table(
    r: &mut StdRng,
    c: &IndexerConfig,
    pages: usize,
    lens: &[i32],
    bt_stride: usize,
) -> (PagedCache, Vec<i32>) {
    let layout = c.cache_layout();
    let mut cache = PagedCache::new(layout, pages, 0);
    let keys = random_keys(r, pages * c.page_size, c.dim);
    for slot in 0..pages * c.page_size {
        cache.store(slot as i64, &keys, slot);
    }
    let mut pool: Vec<i32> = (0..pages as i32).collect();
    pool.shuffle(r);
    let mut table = vec![-1i32; lens.len() * bt_stride];
    let mut next = 0;
    for (b, &len) in lens.iter().enumerate() {
        for col in 0..(len.max(1) as usize).div_ceil(c.page_size).min(bt_stride) {
            table[b * bt_stride + col] = pool[next];
            next += 1;
        }
    }
    (cache, table)
}

/// Scores agree within `rel` of the sum of absolute terms (bounded by sum |w'| * |dot| * s),
/// and `-inf` exactly where the reference has `-inf`.
pub fn assert_scores_close(
    what: &str,
    got: &[f32],
    want: &[f32],
    scale: &[f32],
    stride: usize,
    rel: f32,
) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut worst = 0.0f32;
    for i in 0..got.len() {
        let (g, w) = (got[i], want[i]);
        if w == f32::NEG_INFINITY || g == f32::NEG_INFINITY {
            assert_eq!(
                g,
                w,
                "{what}: row {} col {} mask differs",
                i / stride,
                i % stride
            );
            continue;
        }
        let err = (g - w).abs() / (scale[i / stride] + 1e-12);
        worst = worst.max(err);
        assert!(
            err <= rel,
            "{what}: row {} col {}: gpu {g} vs ref {w} (rel to row scale {err:e})",
            i / stride,
            i % stride
        );
    }
    eprintln!("{what}: worst scaled score error {worst:e}");
}

/// Fraction of reference indices (non -1) the GPU also selected, over all rows.
pub fn overlap(got: &[i32], want: &[i32], k: usize) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for (g, w) in got.chunks(k).zip(want.chunks(k)) {
        let set: std::collections::HashSet<i32> = g.iter().copied().filter(|&i| i >= 0).collect();
        for &i in w.iter().filter(|&&i| i >= 0) {
            total += 1;
            hit += set.contains(&i) as usize;
        }
    }
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}

/// FP8 codes agree up to one step of the e4m3 grid (values computed in f32 on the GPU and in
/// f64 on the host may round to neighbouring codes), and at least `min_equal` are identical.
pub fn assert_codes_close(what: &str, got: &[u8], want: &[u8], min_equal: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let ordinal = |c: u8| {
        if c & 0x80 != 0 {
            -((c & 0x7f) as i32)
        } else {
            c as i32
        }
    };
    let mut equal = 0usize;
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        equal += (a == b) as usize;
        assert!(
            (ordinal(a) - ordinal(b)).abs() <= 1,
            "{what}: byte {i}: 0x{a:02x} vs 0x{b:02x}"
        );
    }
    let frac = equal as f64 / want.len().max(1) as f64;
    assert!(
        frac >= min_equal,
        "{what}: only {frac} of the codes are identical"
    );
}

/// Values agree within `rel` relative error (exactly where either is non-finite).
pub fn assert_rel_close(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let ok = if a.is_finite() && b.is_finite() {
            (a - b).abs() <= rel * b.abs() + 1e-30
        } else {
            a.to_bits() == b.to_bits()
        };
        assert!(ok, "{what}: element {i}: {a:e} vs {b:e}");
    }
}

/// Largest finite |logit| of each reference row (floor 1e-6): the yardstick for score errors.
pub fn row_scales(want: &[f32], stride: usize) -> Vec<f32> {
    want.chunks(stride)
        .map(|row| {
            row.iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()))
                .max(1e-6)
        })
        .collect()
}
