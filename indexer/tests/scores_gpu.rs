//! The decode scores kernel alone against the f64 reference, on what the pipeline tests do not
//! reach: block-table entries outside the cache inside a context, key scales that are zero,
//! negative or NaN (the literal per-head epilogue), contexts ending inside a 64-key tile and
//! inside a page, every page size class (one page per tile, several pages per tile, a tile
//! inside a larger page), one-wave splits of many blocks per row and batches larger than a
//! wave (one block per row), and explicit column splits. And the prefill scores kernel alone
//! (sm_90a: blocks of 2, 4 or 8 consecutive tokens in two wgmma banks): token counts that are
//! not a multiple of the block's tokens, key ranges that are not multiples of 64 (empty,
//! reversed, negative, past the keys, disjoint within a block), zero/negative/NaN key scales,
//! every token-block shape (H = 16, 32, 48, 64 at D = 128; 80, 128 at D = 64), explicit splits,
//! and 8192 causal tokens (rows sampled).

mod pipeline_common;

use dsa_indexer::cpu::{self, PagedKeys, Quantized};
use dsa_indexer::scores::{
    ColumnSplit, PagedScoresArgs, RaggedScoresArgs, launch_scores_paged, launch_scores_ragged,
};
use dsa_indexer::{IndexerConfig, ScaleFormat};
use dsa_jit_cache::dptr;
use pipeline_common::*;
use rand::Rng;

/// Random queries and weights, a random cache with odd scales and a table with bad pages, one
/// launch with `split` (default: the plan's), every logit compared with the reference.
/// The sum over heads of |w'| |scale| sum |q| |k| of one (token, key): what a logit's error is
/// measured against (FP8 tensor-core sums keep fewer bits than f32, so a logit that cancels
/// down to a small value is only as exact as its largest terms).
struct AbsTerms<'a> {
    decoded: Vec<f64>,
    q8: &'a [u8],
    wq: &'a [f32],
    h: usize,
    d: usize,
}

impl<'a> AbsTerms<'a> {
    fn new(q8: &'a [u8], wq: &'a [f32], h: usize, d: usize) -> Self {
        let decoded = (0..=255u8).map(|c| cpu::fp8_decode(c).abs()).collect();
        AbsTerms {
            decoded,
            q8,
            wq,
            h,
            d,
        }
    }

    fn of(&self, token: usize, key: &[u8], scale: f32) -> f64 {
        let scale = if scale.is_nan() {
            0.0
        } else {
            scale.abs() as f64
        };
        (0..self.h)
            .map(|hh| {
                let q = &self.q8[(token * self.h + hh) * self.d..][..self.d];
                let dot: f64 = q
                    .iter()
                    .zip(key)
                    .map(|(&x, &y)| self.decoded[x as usize] * self.decoded[y as usize])
                    .sum();
                (self.wq[token * self.h + hh] as f64).abs() * scale * dot
            })
            .sum()
    }
}

/// One GPU logit `g` against the reference `w`: masks (-inf) must agree exactly, else the error
/// relative to `terms()` must be at most 1e-3. Returns that error (0 for a mask).
fn check_logit(at: &str, g: f32, w: f32, terms: impl FnOnce() -> f64) -> f64 {
    if w == f32::NEG_INFINITY || g == f32::NEG_INFINITY {
        assert_eq!(g, w, "{at}: mask differs");
        return 0.0;
    }
    let err = (g as f64 - w as f64).abs() / (terms() + 1e-30);
    assert!(
        err <= 1e-3,
        "{at}: gpu {g} vs ref {w} (rel to the absolute terms {err:e})"
    );
    err
}

fn check_paged(
    what: &str,
    c: IndexerConfig,
    lens: &[i32],
    stride: usize,
    split: Option<ColumnSplit>,
    seed: u64,
) {
    let g = gpu();
    let s = &g.stream;
    let mut r = rng(seed);
    let (h, d, p) = (c.heads, c.dim, c.page_size);
    let batch = lens.len();
    let bt_stride = stride.div_ceil(p) + 1;
    let pages: usize = lens
        .iter()
        .map(|&l| (l.max(1) as usize).div_ceil(p))
        .sum::<usize>()
        + 3;
    let (mut cache, mut table) = random_cache_and_table(&mut r, &c, pages, lens, bt_stride);
    // Bad page ids inside some contexts: -1 and past the cache.
    for b in (0..batch).step_by(3) {
        let cols = (lens[b].max(0) as usize).div_ceil(p);
        if cols > 1 {
            table[b * bt_stride + r.random_range(0..cols)] = -1;
            table[b * bt_stride + r.random_range(0..cols)] = (pages + 7) as i32;
        }
    }
    // Odd scales on a few slots: zero, negative, NaN.
    let layout = c.cache_layout();
    for i in 0..(pages * p / 50).max(3) {
        let slot = r.random_range(0..pages * p);
        let v = [0.0f32, -0.01, f32::NAN][i % 3];
        let at = layout.scale_offset(slot);
        cache.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    // Queries as the query path makes them: each (token, head) row of spread-out values
    // quantized with its own amax (random code bytes would span every binade).
    let mut q8 = Quantized::default();
    for _ in 0..batch * h {
        let row: Vec<f64> = (0..d)
            .map(|_| r.random_range(-1.0..1.0f64).powi(3))
            .collect();
        let (codes, _) = cpu::quantize_row(&row, ScaleFormat::F32);
        q8.push(&codes, 1.0);
    }
    let wq: Vec<f32> = (0..batch * h)
        .map(|_| r.random_range(-1.0..1.0) / 100.0)
        .collect();
    let bt_cols = bt_stride.min(stride.div_ceil(p));
    let split = split.unwrap_or_else(|| ColumnSplit::decode(batch, stride, &g.info));

    let q8_d = up(s, &q8.codes);
    let wq_d = up(s, &wq);
    let cache_d = up(s, &cache.bytes);
    let table_d = up(s, &table);
    let lens_d = up(s, lens);
    let logits = up(s, &vec![f32::NAN; batch * stride]);
    let row_map = up(s, &vec![-5i32; batch]);
    let args = PagedScoresArgs {
        batch,
        q_fp8: dptr(&q8_d, s),
        weights: dptr(&wq_d, s),
        cache: dptr(&cache_d, s),
        cache_pages: pages,
        block_table: dptr(&table_d, s),
        bt_stride,
        bt_cols,
        context_lens: dptr(&lens_d, s),
        logits: dptr(&logits, s),
        stride,
        row_map_out: dptr(&row_map, s),
    };
    // SAFETY: every buffer above has the shape `PagedScoresArgs` documents.
    unsafe { launch_scores_paged(&c, s, &args, split) }.unwrap();
    let got = down(s, &logits);
    let keys = PagedKeys {
        cache: &cache,
        block_table: &table,
        bt_stride,
        bt_cols,
        context_lens: lens,
    };
    let want = cpu::scores_paged(h, &q8, &wq, &keys, stride);
    assert!(
        got.iter().all(|v| !v.is_nan()),
        "{what}: a logit was not written ({split:?})"
    );
    // Yardstick per cell: the sum of absolute terms, sum_h |w'| |s| sum_k |q k| (Hopper's FP8
    // tensor-core sums keep fewer bits than f32, so a logit that cancels down to a small value
    // is only as exact as its largest terms).
    let terms = AbsTerms::new(&q8.codes, &wq, h, d);
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        let (b, col) = (i / stride, i % stride);
        let err = check_logit(
            &format!("{what}: row {b} col {col} ({split:?})"),
            g,
            w,
            || {
                let page = table[b * bt_stride + col / p];
                let (key, scale) = cache.key(page as usize * p + col % p);
                terms.of(b, key, scale)
            },
        );
        worst = worst.max(err);
    }
    eprintln!("{what}: worst error relative to the absolute terms {worst:e}");
    assert_eq!(
        down(s, &row_map),
        (0..batch as i32).collect::<Vec<_>>(),
        "{what}: row map"
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn decode_scores_bad_pages_odd_scales_every_page_size() {
    let lens = [0, 1, 63, 64, 65, 127, 129, 1000, 4097, 3000, 5000, 77];
    for (i, page_size) in [64usize, 4, 16, 128, 256].into_iter().enumerate() {
        let c = IndexerConfig {
            page_size,
            ..IndexerConfig::default()
        };
        check_paged(
            &format!("P={page_size}"),
            c,
            &lens,
            5003,
            None,
            40 + i as u64,
        );
    }
    let small = IndexerConfig {
        heads: 48,
        dim: 64,
        rope_dim: 32,
        page_size: 32,
        ..IndexerConfig::default()
    };
    check_paged("h48 d64 P=32", small, &lens, 5000, None, 50);
    let wide = IndexerConfig {
        heads: 128,
        dim: 64,
        rope_dim: 32,
        ..IndexerConfig::default()
    };
    check_paged("h128 d64", wide, &lens[..6], 300, None, 51);
    let narrow = IndexerConfig {
        heads: 16,
        ..IndexerConfig::default()
    };
    check_paged("h16 d128", narrow, &lens, 5000, None, 52);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn decode_scores_wave_shapes_and_explicit_splits() {
    let c = IndexerConfig::default();
    // One long row: hundreds of blocks of a few tiles each.
    check_paged("1 x 65536", c, &[65536], 65536, None, 60);
    check_paged("1 x 65000 of 65536", c, &[65000], 65536, None, 61);
    // More rows than one wave holds: one block per row, many tiles each.
    let mut r = rng(62);
    let lens: Vec<i32> = (0..600).map(|_| r.random_range(0..1500)).collect();
    check_paged("600 rows", c, &lens, 1500, None, 63);
    // Explicit splits: one tile per block, and blocks longer than every row.
    let lens = [5000, 4999, 1, 0, 2049, 64];
    for cols in [64u32, 192, 8192] {
        let split = ColumnSplit {
            splits: 5000u32.div_ceil(cols),
            cols_per_split: cols,
        };
        check_paged(
            &format!("split {cols}"),
            c,
            &lens,
            5000,
            Some(split),
            64 + cols as u64,
        );
    }
}

/// Random queries (as the query path makes them) and weights, `n_keys` random keys with odd
/// scales, one prefill launch with `split` (default: the plan's), the logits of every `every`-th
/// row and the last rows compared with the reference, judged against their absolute terms.
#[allow(clippy::too_many_arguments)]
fn check_ragged(
    what: &str,
    c: IndexerConfig,
    ks: &[i32],
    ke: &[i32],
    n_keys: usize,
    split: Option<ColumnSplit>,
    every: usize,
    seed: u64,
) {
    let g = gpu();
    let s = &g.stream;
    let mut r = rng(seed);
    let (h, d) = (c.heads, c.dim);
    let tokens = ks.len();
    let stride = n_keys + 5;
    let mut keys = random_keys(&mut r, n_keys, d);
    for i in 0..(n_keys / 50).max(3).min(n_keys) {
        let k = r.random_range(0..n_keys);
        keys.scales[k] = [0.0f32, -0.01, f32::NAN][i % 3];
    }
    let mut q8 = Quantized::default();
    for _ in 0..tokens * h {
        let row: Vec<f64> = (0..d)
            .map(|_| r.random_range(-1.0..1.0f64).powi(3))
            .collect();
        let (codes, _) = cpu::quantize_row(&row, ScaleFormat::F32);
        q8.push(&codes, 1.0);
    }
    let wq: Vec<f32> = (0..tokens * h)
        .map(|_| r.random_range(-1.0..1.0) / 100.0)
        .collect();
    let split = split.unwrap_or_else(|| ColumnSplit::prefill(&c, tokens, stride, &g.info));
    let q8_d = up(s, &q8.codes);
    let wq_d = up(s, &wq);
    let k8_d = up(s, &keys.codes);
    let ksc_d = up(s, &keys.scales);
    let ks_d = up(s, ks);
    let ke_d = up(s, ke);
    let logits = up(s, &vec![f32::NAN; tokens * stride]);
    let starts = up(s, &vec![-5i32; tokens]);
    let lengths = up(s, &vec![-5i32; tokens]);
    let args = RaggedScoresArgs {
        tokens,
        q_fp8: dptr(&q8_d, s),
        weights: dptr(&wq_d, s),
        keys_fp8: dptr(&k8_d, s),
        keys_scale: dptr(&ksc_d, s),
        num_keys: n_keys,
        ks: dptr(&ks_d, s),
        ke: dptr(&ke_d, s),
        logits: dptr(&logits, s),
        stride,
        starts_out: dptr(&starts, s),
        lengths_out: dptr(&lengths, s),
    };
    // SAFETY: every buffer above has the shape `RaggedScoresArgs` documents.
    unsafe { launch_scores_ragged(&c, s, &args, split) }.unwrap();
    let got = down(s, &logits);
    assert!(
        got.iter().all(|v| !v.is_nan()),
        "{what}: a logit was not written ({split:?})"
    );
    let n = n_keys as i32;
    let lo: Vec<i32> = ks.iter().map(|&v| v.clamp(0, n)).collect();
    let len: Vec<i32> = (0..tokens).map(|t| ke[t].clamp(lo[t], n) - lo[t]).collect();
    assert_eq!(down(s, &starts), lo, "{what}: starts");
    assert_eq!(down(s, &lengths), len, "{what}: lengths");
    // The reference for the sampled rows only.
    let rows: Vec<usize> = (0..tokens)
        .filter(|&t| t % every == 0 || t + 3 >= tokens)
        .collect();
    let mut q_sub = Quantized::default();
    let mut w_sub = Vec::new();
    for &t in &rows {
        for hh in 0..h {
            q_sub.push(&q8.codes[(t * h + hh) * d..][..d], 1.0);
        }
        w_sub.extend_from_slice(&wq[t * h..(t + 1) * h]);
    }
    let ks_sub: Vec<i32> = rows.iter().map(|&t| ks[t]).collect();
    let ke_sub: Vec<i32> = rows.iter().map(|&t| ke[t]).collect();
    let want = cpu::scores_ragged(h, &q_sub, &w_sub, &keys, &ks_sub, &ke_sub, stride);
    let terms = AbsTerms::new(&q8.codes, &wq, h, d);
    let mut worst = 0.0f64;
    for (i, &t) in rows.iter().enumerate() {
        for col in 0..stride {
            let (g, w) = (got[t * stride + col], want[i * stride + col]);
            let err = check_logit(
                &format!("{what}: row {t} col {col} ({split:?})"),
                g,
                w,
                || terms.of(t, keys.row(col), keys.scales[col]),
            );
            worst = worst.max(err);
        }
    }
    eprintln!("{what}: worst error relative to the absolute terms {worst:e}");
}

/// Causal ranges over a prefix: token `t` sees keys `[0, prefix + t + 1)`, or the last
/// `window` of them.
fn causal(prefix: usize, tokens: usize, window: Option<usize>) -> (Vec<i32>, Vec<i32>) {
    let ke: Vec<i32> = (0..tokens).map(|t| (prefix + t + 1) as i32).collect();
    let ks = ke
        .iter()
        .map(|&e| window.map_or(0, |w| (e - w as i32).max(0)))
        .collect();
    (ks, ke)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn prefill_scores_odd_ranges_odd_scales_every_block_shape() {
    let base = IndexerConfig::default();
    let configs = [
        ("h64 d128", base),
        ("h16 d128", IndexerConfig { heads: 16, ..base }),
        ("h32 d128", IndexerConfig { heads: 32, ..base }),
        ("h48 d128", IndexerConfig { heads: 48, ..base }),
        (
            "h80 d64",
            IndexerConfig {
                heads: 80,
                dim: 64,
                rope_dim: 32,
                ..base
            },
        ),
        (
            "h128 d64",
            IndexerConfig {
                heads: 128,
                dim: 64,
                rope_dim: 32,
                ..base
            },
        ),
    ];
    for (i, (name, c)) in configs.into_iter().enumerate() {
        let seed = 70 + 10 * i as u64;
        // 1, 2, 3, 5, 7, 9, 13 tokens (never a multiple of every block's token count), causal
        // over a prefix that is not a multiple of 64.
        for tokens in [1usize, 2, 3, 5, 7, 9, 13] {
            let (ks, ke) = causal(37, tokens, None);
            check_ragged(
                &format!("{name} {tokens} causal"),
                c,
                &ks,
                &ke,
                37 + tokens,
                None,
                1,
                seed,
            );
        }
        // Random ranges: empty, reversed, negative, past the keys, far apart within a block.
        let mut r = rng(seed + 1);
        let n_keys = 777;
        let (mut ks, mut ke) = (Vec::new(), Vec::new());
        for _ in 0..45 {
            let a = r.random_range(-20..n_keys as i32 + 20);
            let b = a + r.random_range(-5..300);
            ks.push(a);
            ke.push(b);
        }
        ks[3] = 10;
        ke[3] = 10;
        check_ragged(
            &format!("{name} random ranges"),
            c,
            &ks,
            &ke,
            n_keys,
            None,
            1,
            seed + 2,
        );
        let (ks, ke) = causal(5, 299, Some(100));
        check_ragged(
            &format!("{name} window 100"),
            c,
            &ks,
            &ke,
            304,
            None,
            1,
            seed + 3,
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn prefill_scores_explicit_splits_and_8192_causal() {
    let c = IndexerConfig::default();
    let (ks, ke) = causal(0, 1000, Some(300));
    for cols in [64u32, 192, 2048] {
        let stride = 1000 + 5;
        let split = ColumnSplit {
            splits: (stride as u32).div_ceil(cols),
            cols_per_split: cols,
        };
        let what = format!("1000 window 300 split {cols}");
        check_ragged(&what, c, &ks, &ke, 1000, Some(split), 1, 90 + cols as u64);
    }
    let (ks, ke) = causal(0, 8192, None);
    check_ragged("8192 causal", c, &ks, &ke, 8192, None, 61, 99);
    let (ks, ke) = causal(4096, 4093, None);
    check_ragged("4096 + 4093 causal", c, &ks, &ke, 8189, None, 67, 98);
}

/// The figures of issue #5 (`dsa bench indexer` times the same launches): decode scores at
/// 64 x 65536, 1 x 65536 and 64 x 8192 against the copy bandwidth, prefill scores at 8192
/// causal tokens. Prints only; run with `--nocapture`.
#[test]
#[ignore = "needs a CUDA GPU"]
fn decode_and_prefill_scores_timings() {
    use dsa_indexer::timing::{self, Runs};
    let g = gpu();
    let c = IndexerConfig::default();
    let runs = Runs {
        warmup: 5,
        iters: 30,
    };
    let copy = dsa_jit_cache::gpu::copy_bandwidth_gbs(&g.stream, 1 << 30).unwrap_or(f64::NAN);
    eprintln!("device copy bandwidth {copy:.0} GB/s");
    for (batch, context) in [(64, 65536), (1, 65536), (64, 8192), (128, 32768)] {
        let t = timing::decode_scores(&g.stream, &c, batch, context, runs).unwrap();
        eprintln!(
            "decode scores {batch} x {context}: {:.1} us, {:.0} GB/s ({:.0}% of copy)",
            t.us,
            t.gbs,
            100.0 * t.gbs / copy
        );
    }
    let p = timing::prefill_scores(&g.stream, &c, 8192, runs).unwrap();
    eprintln!("prefill scores 8192 causal: {p:?}");
}
