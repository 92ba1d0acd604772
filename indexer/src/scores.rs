//! Stage 3, the scores: `logit[t, s] = sum_h w'[t,h] * relu(dot(q8[t,h], k8[s]) * k_scale[s])`
//! with FP8 tensor-core MMA, over a contiguous key buffer (prefill, ragged ranges) or through
//! block tables into the paged cache (decode).

use crate::config::IndexerConfig;
use crate::error::{IndexerError, Result, check_opt_ptr, check_ptr};
use crate::launch::{SCORES, launch};
use crate::variant::{
    DECODE_BLOCKS_MMA, DECODE_BLOCKS_WGMMA, DECODE_STEP, DECODE_WARPS, PREFILL_THREADS_WGMMA,
    PREFILL_TILE, PREFILL_WARPS, ScoresVariant,
};
use cudarc::driver::{CudaStream, DeviceRepr, LaunchConfig};
use dsa_jit_cache::DeviceInfo;
use std::sync::Arc;

/// Largest number of logit columns a prefill block scores (keeps causal work balanced).
const PREFILL_MAX_COLS: usize = 2048;
/// Blocks per SM (times two) the prefill split heuristic aims for.
const BLOCKS_PER_SM: usize = 8;

/// Decode blocks one SM holds at once: the kernel's register budget (its launch bounds) and
/// shared memory (about 42 KB a block) allow this many on the device's path (wgmma on sm_90,
/// `mma.sync` elsewhere).
pub fn decode_blocks_per_sm(device: &DeviceInfo) -> u32 {
    if device.compute_capability == (9, 0) {
        DECODE_BLOCKS_WGMMA
    } else {
        DECODE_BLOCKS_MMA
    }
}

/// The prefill scores kernel's block shape on a device. sm_90 (compiled as sm_90a) runs the
/// wgmma kernel: one warpgroup scores [`ScoresVariant::prefill_tokens_wgmma`] consecutive
/// tokens with dynamic shared memory; every other device runs the `mma.sync` kernel, one warp
/// per token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefillLaunch {
    /// Tokens per block (`gridDim.x = ceil(T / tokens_per_block)`).
    pub tokens_per_block: u32,
    /// Threads per block.
    pub threads: u32,
    /// Dynamic shared memory per block, bytes.
    pub smem_bytes: u32,
}

impl PrefillLaunch {
    /// The shape for `config` on a device of `compute_capability`.
    pub fn of(config: &IndexerConfig, compute_capability: (u32, u32)) -> Self {
        let v = ScoresVariant::of(config);
        if compute_capability == (9, 0) {
            PrefillLaunch {
                tokens_per_block: v.prefill_tokens_wgmma(),
                threads: PREFILL_THREADS_WGMMA,
                smem_bytes: v.prefill_smem_wgmma(),
            }
        } else {
            PrefillLaunch {
                tokens_per_block: PREFILL_WARPS,
                threads: 32 * PREFILL_WARPS,
                smem_bytes: 0,
            }
        }
    }
}

/// How a scores launch splits the logit columns: `splits` blocks of `cols_per_split` per row
/// group. Depends on host-known sizes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnSplit {
    /// Blocks along the columns (`gridDim.y`).
    pub splits: u32,
    /// Columns per block, a multiple of the kernel's step.
    pub cols_per_split: u32,
}

impl ColumnSplit {
    /// Decode: one wave of blocks. Each request gets `floor(slots / batch)` blocks (at least
    /// one), `slots` being the blocks the device holds at once ([`decode_blocks_per_sm`] per
    /// SM), so a long context is split across the whole device and no second, mostly empty,
    /// wave is launched; a block scores whole 64-column tiles.
    pub fn decode(batch: usize, stride: usize, device: &DeviceInfo) -> Self {
        let step = (DECODE_STEP * DECODE_WARPS) as usize;
        let slots = device.sm_count as usize * decode_blocks_per_sm(device) as usize;
        let target = slots / batch.max(1);
        Self::fit(
            stride,
            target.clamp(1, stride.div_ceil(step)),
            step,
            usize::MAX,
        )
    }

    /// Prefill: at most 2048 columns per block, more splits when the token
    /// groups (of [`PrefillLaunch::tokens_per_block`]) alone do not fill the device.
    pub fn prefill(
        config: &IndexerConfig,
        tokens: usize,
        stride: usize,
        device: &DeviceInfo,
    ) -> Self {
        let step = PREFILL_TILE as usize;
        let per_block = PrefillLaunch::of(config, device.compute_capability).tokens_per_block;
        let groups = tokens.div_ceil(per_block as usize).max(1);
        let target = (device.sm_count as usize * BLOCKS_PER_SM / 2).div_ceil(groups);
        Self::fit(
            stride,
            target.clamp(1, stride.div_ceil(step)),
            step,
            PREFILL_MAX_COLS,
        )
    }

    fn fit(stride: usize, splits: usize, step: usize, max_cols: usize) -> Self {
        let min_cols = stride.div_ceil(u16::MAX as usize); // gridDim.y <= 65535
        let cols = stride
            .div_ceil(splits)
            .min(max_cols)
            .max(min_cols)
            .div_ceil(step)
            * step;
        ColumnSplit {
            splits: stride.div_ceil(cols).max(1) as u32,
            cols_per_split: cols as u32,
        }
    }
}

/// Device pointers of the prefill (ragged) scores. `T` tokens, `S` keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaggedScoresArgs {
    /// Tokens `T`.
    pub tokens: usize,
    /// `[T, H, D]` u8 quantized queries, 16-byte aligned.
    pub q_fp8: u64,
    /// `[T, H]` f32 folded weights.
    pub weights: u64,
    /// `[S, D]` u8 contiguous keys, 16-byte aligned.
    pub keys_fp8: u64,
    /// `[S]` f32 key scales.
    pub keys_scale: u64,
    /// Keys `S`.
    pub num_keys: usize,
    /// `[T]` i32 first key of each token (clamped on device to `[0, S]`).
    pub ks: u64,
    /// `[T]` i32 end key of each token (clamped on device to `[ks, S]`).
    pub ke: u64,
    /// `[T, stride]` f32 logits out (`stride >= S`).
    pub logits: u64,
    /// Logit row stride.
    pub stride: usize,
    /// `[T]` i32 out: the clamped `ks` (0: not written).
    pub starts_out: u64,
    /// `[T]` i32 out: the clamped range lengths (0: not written).
    pub lengths_out: u64,
}

/// Device pointers of the decode (paged) scores. `B` requests, one query token each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagedScoresArgs {
    /// Requests `B`.
    pub batch: usize,
    /// `[B, H, D]` u8 quantized queries, 16-byte aligned.
    pub q_fp8: u64,
    /// `[B, H]` f32 folded weights.
    pub weights: u64,
    /// The paged index-key cache, 16-byte aligned.
    pub cache: u64,
    /// Pages in the cache (a block-table entry outside `[0, pages)` scores `-inf`).
    pub cache_pages: usize,
    /// `[B, bt_stride]` i32 page ids.
    pub block_table: u64,
    /// Entries between block-table rows.
    pub bt_stride: usize,
    /// Valid columns per block-table row (`<= bt_stride`).
    pub bt_cols: usize,
    /// `[B]` i32 context lengths (clamped on device to `[0, min(stride, bt_cols * P)]`).
    pub context_lens: u64,
    /// `[B, stride]` f32 logits out.
    pub logits: u64,
    /// Logit row stride (the largest context).
    pub stride: usize,
    /// `[B]` i32 out: the identity `0..B`, top-k's request map (0: not written).
    pub row_map_out: u64,
}

/// Mirrors `sc::RaggedParams` in scores.cu field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct RaggedParams {
    q8: u64,
    wq: u64,
    k8: u64,
    kscale: u64,
    ks: u64,
    ke: u64,
    logits: u64,
    starts_out: u64,
    lengths_out: u64,
    stride: i64,
    tokens: i32,
    num_keys: i32,
    cols_per_split: i32,
    pad: i32,
}

/// Mirrors `sc::PagedParams` in scores.cu field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PagedParams {
    q8: u64,
    wq: u64,
    cache: u64,
    block_table: u64,
    context_lens: u64,
    logits: u64,
    row_map: u64,
    stride: i64,
    bt_stride: i64,
    num_pages: i64,
    batch: i32,
    bt_cols: i32,
    page_log2: i32,
    cols_per_split: i32,
}

// SAFETY: both are `repr(C)` plain data matching the kernels' by-value parameters.
unsafe impl DeviceRepr for RaggedParams {}
// SAFETY: as above.
unsafe impl DeviceRepr for PagedParams {}

const MAX_I32: usize = i32::MAX as usize;

fn ragged_params(a: &RaggedScoresArgs, split: ColumnSplit) -> Result<RaggedParams> {
    check_ptr("q_fp8", a.q_fp8, 16)?;
    check_ptr("weights", a.weights, 4)?;
    check_ptr("keys_fp8", a.keys_fp8, 16)?;
    check_ptr("keys_scale", a.keys_scale, 4)?;
    check_ptr("ks", a.ks, 4)?;
    check_ptr("ke", a.ke, 4)?;
    check_ptr("logits", a.logits, 4)?;
    check_opt_ptr("starts_out", a.starts_out, 4)?;
    check_opt_ptr("lengths_out", a.lengths_out, 4)?;
    if a.tokens > MAX_I32
        || a.num_keys > MAX_I32
        || a.stride < a.num_keys.max(1)
        || split.cols_per_split == 0
    {
        return Err(IndexerError::Shape(format!(
            "prefill scores: {} tokens, {} keys, stride {}, {} columns per block (need stride >= max(keys, 1), columns per block >= 1, sizes <= i32::MAX)",
            a.tokens, a.num_keys, a.stride, split.cols_per_split
        )));
    }
    Ok(RaggedParams {
        q8: a.q_fp8,
        wq: a.weights,
        k8: a.keys_fp8,
        kscale: a.keys_scale,
        ks: a.ks,
        ke: a.ke,
        logits: a.logits,
        starts_out: a.starts_out,
        lengths_out: a.lengths_out,
        stride: a.stride as i64,
        tokens: a.tokens as i32,
        num_keys: a.num_keys as i32,
        cols_per_split: split.cols_per_split as i32,
        pad: 0,
    })
}

fn paged_params(
    config: &IndexerConfig,
    a: &PagedScoresArgs,
    split: ColumnSplit,
) -> Result<PagedParams> {
    check_ptr("q_fp8", a.q_fp8, 16)?;
    check_ptr("weights", a.weights, 4)?;
    check_ptr("cache", a.cache, 16)?;
    check_ptr("block_table", a.block_table, 4)?;
    check_ptr("context_lens", a.context_lens, 4)?;
    check_ptr("logits", a.logits, 4)?;
    check_opt_ptr("row_map_out", a.row_map_out, 4)?;
    if a.batch > MAX_I32 || a.bt_cols > a.bt_stride || a.bt_cols > MAX_I32 || a.stride == 0 {
        return Err(IndexerError::Shape(format!(
            "decode scores: batch {}, block table {} of {} columns valid, stride {}",
            a.batch, a.bt_cols, a.bt_stride, a.stride
        )));
    }
    Ok(PagedParams {
        q8: a.q_fp8,
        wq: a.weights,
        cache: a.cache,
        block_table: a.block_table,
        context_lens: a.context_lens,
        logits: a.logits,
        row_map: a.row_map_out,
        stride: a.stride as i64,
        bt_stride: a.bt_stride as i64,
        num_pages: a.cache_pages as i64,
        batch: a.batch as i32,
        bt_cols: a.bt_cols as i32,
        page_log2: config.page_size.trailing_zeros() as i32,
        cols_per_split: split.cols_per_split as i32,
    })
}

/// Checks `args` as [`launch_scores_ragged`] does, without launching.
pub(crate) fn check_scores_ragged(args: &RaggedScoresArgs, split: ColumnSplit) -> Result<()> {
    ragged_params(args, split).map(|_| ())
}

/// Checks `args` as [`launch_scores_paged`] does, without launching.
pub(crate) fn check_scores_paged(
    config: &IndexerConfig,
    args: &PagedScoresArgs,
    split: ColumnSplit,
) -> Result<()> {
    paged_params(config, args, split).map(|_| ())
}

/// Checks `args` and launches the prefill scores with `split` (from
/// [`ColumnSplit::prefill`] for the same `tokens` and `stride`, or any split whose
/// `cols_per_split` is a positive multiple of 64), in the [`PrefillLaunch`] shape of the
/// stream's device.
///
/// # Safety
/// Every non-zero pointer must be device memory on `stream`'s context of the shape documented
/// on [`RaggedScoresArgs`], alive until the work completes.
pub unsafe fn launch_scores_ragged(
    config: &IndexerConfig,
    stream: &Arc<CudaStream>,
    args: &RaggedScoresArgs,
    split: ColumnSplit,
) -> Result<()> {
    let p = ragged_params(args, split)?;
    if args.tokens == 0 {
        return Ok(());
    }
    let (major, minor) = stream
        .context()
        .compute_capability()
        .map_err(|e| IndexerError::driver("reading the compute capability", e))?;
    let shape = PrefillLaunch::of(config, (major as u32, minor as u32));
    let grid = (
        args.tokens.div_ceil(shape.tokens_per_block as usize) as u32,
        args.stride.div_ceil(split.cols_per_split as usize) as u32,
        1,
    );
    // SAFETY: the caller vouches for the pointers; the kernel clamps every range to [0, S]
    // and writes only columns below the stride of rows below T.
    unsafe {
        launch(
            &SCORES,
            &ScoresVariant::of(config),
            "RAGGED",
            stream,
            LaunchConfig {
                grid_dim: grid,
                block_dim: (shape.threads, 1, 1),
                shared_mem_bytes: shape.smem_bytes,
            },
            &p,
        )
    }
}

/// Checks `args` and launches the decode scores with `split` (from [`ColumnSplit::decode`]).
///
/// # Safety
/// Every non-zero pointer must be device memory on `stream`'s context of the shape documented
/// on [`PagedScoresArgs`], alive until the work completes.
pub unsafe fn launch_scores_paged(
    config: &IndexerConfig,
    stream: &Arc<CudaStream>,
    args: &PagedScoresArgs,
    split: ColumnSplit,
) -> Result<()> {
    let p = paged_params(config, args, split)?;
    if args.batch == 0 {
        return Ok(());
    }
    let grid = (
        args.batch as u32,
        args.stride.div_ceil(split.cols_per_split as usize) as u32,
        1,
    );
    // SAFETY: the caller vouches for the pointers; the kernel reads block-table columns below
    // `bt_cols`, only pages inside the cache, and writes rows below B, columns below stride.
    unsafe {
        launch(
            &SCORES,
            &ScoresVariant::of(config),
            "PAGED",
            stream,
            LaunchConfig {
                grid_dim: grid,
                block_dim: (32 * DECODE_WARPS, 1, 1),
                shared_mem_bytes: 0,
            },
            &p,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_match_the_kernel_layouts() {
        assert_eq!(std::mem::size_of::<RaggedParams>(), 10 * 8 + 4 * 4);
        assert_eq!(std::mem::size_of::<PagedParams>(), 10 * 8 + 4 * 4);
    }

    #[test]
    fn splits_cover_the_columns_and_fit_the_grid() {
        let dev = DeviceInfo::H100;
        let d = ColumnSplit::decode(64, 65536, &dev);
        assert_eq!(d.cols_per_split % 64, 0);
        assert!(d.splits as usize * d.cols_per_split as usize >= 65536);
        // One full wave: 64 x 8 blocks of the 132 x 4 the H100 holds.
        assert_eq!(
            d,
            ColumnSplit {
                splits: 8,
                cols_per_split: 8192
            }
        );
        let one = ColumnSplit::decode(1, 65536, &dev);
        assert!(one.splits <= 132 * DECODE_BLOCKS_WGMMA && one.splits >= 132 * 3);
        let many = ColumnSplit::decode(1000, 65536, &dev);
        assert_eq!(many.splits, 1);
        let c = IndexerConfig::default();
        let p = ColumnSplit::prefill(&c, 8192, 8192, &dev);
        assert!(p.cols_per_split as usize <= PREFILL_MAX_COLS);
        for (rows, stride) in [(1, 1), (1, 7), (3, 1 << 30), (100_000, 65), (0, 5)] {
            for s in [
                ColumnSplit::decode(rows, stride, &dev),
                ColumnSplit::prefill(&c, rows, stride, &dev),
            ] {
                assert!(s.splits >= 1 && s.splits <= 65535, "{rows} {stride} {s:?}");
                assert!(s.splits as usize * s.cols_per_split as usize >= stride);
                assert!((s.splits as usize - 1) * (s.cols_per_split as usize) < stride);
            }
        }
    }

    #[test]
    fn prefill_launch_shapes_fit_the_device() {
        let c = IndexerConfig::default();
        let h100 = PrefillLaunch::of(&c, (9, 0));
        assert_eq!(
            h100,
            PrefillLaunch {
                tokens_per_block: 4,
                threads: 128,
                smem_bytes: 4 * 64 * (128 + 4) + 4 * 64 * 128 + 1024
            }
        );
        assert_eq!(
            PrefillLaunch::of(&c, (8, 9)).tokens_per_block,
            PREFILL_WARPS
        );
        assert_eq!(PrefillLaunch::of(&c, (10, 0)).smem_bytes, 0);
        for v in ScoresVariant::all() {
            let config = IndexerConfig {
                heads: v.heads,
                dim: v.dim,
                ..c
            };
            let l = PrefillLaunch::of(&config, (9, 0));
            // Two banks of whole tokens, each at most 128 query rows (wgmma N <= 256 in all).
            assert!(l.tokens_per_block % 2 == 0 && l.tokens_per_block as usize * v.heads <= 256);
            // `PREFILL_BLOCKS_WGMMA` blocks (plus the 1 KB each reserves) in an H100 SM's 228 KB.
            let per_sm = crate::variant::PREFILL_BLOCKS_WGMMA * (l.smem_bytes + 1024);
            assert!(
                per_sm <= 228 * 1024,
                "{v}: {per_sm} bytes of shared memory per SM"
            );
            assert!(l.smem_bytes <= DeviceInfo::H100.max_smem_per_block);
        }
    }

    /// What one write of the prefill kernel puts into a logit cell.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Cell {
        /// The mask.
        NegInf,
        /// The logit of this key row (a real key of the shared-memory tile).
        Key(i64),
        /// The logit of a zero-padded tile slot (key scale 0: the value 0).
        Pad,
    }

    /// `DSA_ENTRY_RAGGED`'s index math replayed on the host, line for line (grid, column split,
    /// clamps, block range, tiles of `PREFILL_TILE`, 8-key MMA tiles, lane `c`'s keys `2c` and
    /// `2c + 1`): every write of every block, per cell of the `[T, stride]` logits.
    fn ragged_kernel_writes(
        ks: &[i32],
        ke: &[i32],
        num_keys: usize,
        stride: usize,
        split: ColumnSplit,
    ) -> Vec<Vec<(u32, Cell)>> {
        let (warps, bn) = (PREFILL_WARPS as usize, PREFILL_TILE as i64);
        let tokens = ks.len();
        let n_keys = num_keys as i32;
        let cps = split.cols_per_split as i64;
        let mut cells = vec![Vec::new(); tokens * stride];
        for bx in 0..tokens.div_ceil(warps) {
            for by in 0..stride.div_ceil(cps as usize) as i64 {
                let mut put =
                    |t: usize, s: i64, v: Cell| cells[t * stride + s as usize].push((by as u32, v));
                let rows: Vec<(usize, i64, i64)> = (bx * warps..(bx * warps + warps).min(tokens))
                    .map(|t| {
                        let lo = ks[t].max(0).min(n_keys);
                        let hi = ke[t].max(lo).min(n_keys);
                        (t, lo as i64, hi as i64)
                    })
                    .collect();
                let c0 = by * cps;
                let c1 = (c0 + cps).min(stride as i64);
                for &(t, lo, hi) in &rows {
                    for s in c0..c1 {
                        if s < lo || s >= hi {
                            put(t, s, Cell::NegInf);
                        }
                    }
                }
                let live = rows.iter().filter(|r| r.2 > r.1);
                let range0 = live.clone().map(|r| r.1).min().unwrap_or(i32::MAX as i64);
                let range1 = live.map(|r| r.2).max().unwrap_or(0);
                let (first, end) = (c0.max(range0), c1.min(range1));
                let mut tile = first;
                while tile < end {
                    let n = bn.min(end - tile);
                    for &(t, lo, hi) in &rows {
                        if hi <= tile || lo >= tile + n {
                            continue;
                        }
                        for nt in 0..bn / 8 {
                            let k0 = tile + nt * 8;
                            if k0 >= tile + n || k0 >= hi || k0 + 8 <= lo {
                                continue;
                            }
                            for c in 0..4 {
                                for j in [2 * c, 2 * c + 1] {
                                    let s = k0 + j;
                                    let v = if nt * 8 + j < n {
                                        Cell::Key(tile + nt * 8 + j)
                                    } else {
                                        Cell::Pad
                                    };
                                    if s >= lo && s < hi && s < end {
                                        put(t, s, v);
                                    }
                                }
                            }
                        }
                    }
                    tile += bn;
                }
            }
        }
        cells
    }

    /// `DSA_ENTRY_RAGGED`'s sm_90a (wgmma) index math replayed on the host, line for line (grid
    /// of `ptok`-token blocks of 128 threads, column split, clamps, the union range from its
    /// start rounded down to 8, 64-key tiles, two banks of `ptok / 2` tokens, the quad
    /// reduce-scatter: lane `c`'s slot `m` of bank `b` holds the sum of the values `4m + c`,
    /// value `2u` (`2u + 1`) being key row `r0` (`r0 + 8`) of bank token `u`): every write of
    /// every block, per cell.
    fn ragged_wgmma_writes(
        ks: &[i32],
        ke: &[i32],
        num_keys: usize,
        stride: usize,
        split: ColumnSplit,
        ptok: usize,
    ) -> Vec<Vec<(u32, Cell)>> {
        let (threads, tile) = (PREFILL_THREADS_WGMMA as i64, PREFILL_TILE as i64);
        let pbank = ptok / 2;
        let pv = if pbank < 2 { 4 } else { 2 * pbank };
        let tokens = ks.len();
        let n_keys = num_keys as i32;
        let cps = split.cols_per_split as i64;
        let mut cells = vec![Vec::new(); tokens * stride];
        for bx in 0..tokens.div_ceil(ptok) {
            let t0 = bx * ptok;
            for by in 0..stride.div_ceil(cps as usize) as i64 {
                let mut put =
                    |t: usize, s: i64, v: Cell| cells[t * stride + s as usize].push((by as u32, v));
                let c0 = by * cps;
                let c1 = (c0 + cps).min(stride as i64);
                let (mut lo, mut hi) = (vec![0i64; ptok], vec![0i64; ptok]);
                let (mut rlo, mut rhi) = (i32::MAX as i64, 0i64);
                for u in 0..ptok {
                    let t = t0 + u;
                    if t >= tokens {
                        continue;
                    }
                    lo[u] = ks[t].max(0).min(n_keys) as i64;
                    hi[u] = (ke[t].max(lo[u] as i32).min(n_keys)) as i64;
                    if hi[u] > lo[u] {
                        rlo = rlo.min(lo[u]);
                        rhi = rhi.max(hi[u]);
                    }
                    for s in c0..c1.min(lo[u]) {
                        put(t, s, Cell::NegInf);
                    }
                    for s in c0.max(hi[u])..c1 {
                        put(t, s, Cell::NegInf);
                    }
                }
                let (first, end) = (c0.max(rlo & !7), c1.min(rhi));
                if first >= end {
                    continue;
                }
                let tiles = (end - first + tile - 1) / tile;
                for it in 0..tiles {
                    let s0 = first + it * tile;
                    for tid in 0..threads {
                        let (warp, lane) = (tid / 32, tid % 32);
                        let (g, c) = (lane / 4, (lane % 4) as usize);
                        let r0 = warp * 16 + g;
                        let s = s0 + r0 + 8 * (c as i64 & 1);
                        for b in 0..2 {
                            for m in 0..pv / 4 {
                                let bank_token = 2 * m + (c >> 1);
                                let (slo, shi) = if bank_token < pbank {
                                    (lo[b * pbank + bank_token], hi[b * pbank + bank_token])
                                } else {
                                    (0, 0)
                                };
                                if !(s >= slo && s < shi && s < end) {
                                    continue;
                                }
                                // What the slot holds: value i = 4m + c of the bank.
                                let i = 4 * m + c;
                                let key = s0 + r0 + 8 * (i as i64 & 1);
                                assert_eq!(i >> 1, bank_token, "slot token vs store token");
                                let v = if key < end { Cell::Key(key) } else { Cell::Pad };
                                put(t0 + b * pbank + bank_token, s, v);
                            }
                        }
                    }
                }
            }
        }
        cells
    }

    /// Every cell is written exactly once, by the block that owns its column: the key's own
    /// logit inside the token's clamped `[ks, ke)`, `-inf` outside.
    fn assert_ragged_writes_each_cell_once(
        what: &str,
        cells: &[Vec<(u32, Cell)>],
        ks: &[i32],
        ke: &[i32],
        num_keys: usize,
        stride: usize,
        split: ColumnSplit,
    ) {
        let n = num_keys as i32;
        for (i, writes) in cells.iter().enumerate() {
            let (t, s) = (i / stride, (i % stride) as i64);
            let lo = ks[t].clamp(0, n) as i64;
            let hi = (ke[t].max(lo as i32)).min(n) as i64;
            let want = if (lo..hi).contains(&s) {
                Cell::Key(s)
            } else {
                Cell::NegInf
            };
            let owner = (s / split.cols_per_split as i64) as u32;
            assert_eq!(
                writes,
                &[(owner, want)],
                "{what}: row {t} col {s} ({split:?})"
            );
        }
    }

    /// The prefill test shapes (`check_prefill` in tests/pipeline_gpu.rs): `prefix` keys, then
    /// `tokens` causal rows, optionally windowed, with its empty, negative and overlong ranges.
    fn prefill_ranges(prefix: usize, tokens: usize, window: Option<usize>) -> (Vec<i32>, Vec<i32>) {
        let n_keys = (prefix + tokens) as i32;
        let mut ke: Vec<i32> = (0..tokens).map(|t| (prefix + t + 1) as i32).collect();
        let mut ks: Vec<i32> = ke
            .iter()
            .map(|&e| window.map_or(0, |w| (e - w as i32).max(0)))
            .collect();
        if tokens >= 3 {
            ks[0] = ke[0] + 5;
            ks[1] = -7;
            ke[2] = n_keys + 100;
        }
        (ks, ke)
    }

    #[test]
    fn ragged_kernel_writes_each_logit_once_from_its_own_key() {
        let dev = DeviceInfo::H100;
        // The H100 failure: 300 tokens, window 200, stride 303 -> 64 columns per block; the
        // block range of tokens 200..207 starts at key 1, so its last 8-key tile reached past
        // column 63 into the next block's column 64 with a zero-padded key.
        for (prefix, tokens, window) in [
            (0, 300, Some(200)),
            (5, 989, Some(64)),
            (37, 99, None),
            (500, 1, None),
            (1000, 1000, None),
            (0, 130, Some(3)),
            (7, 77, Some(61)),
        ] {
            let (ks, ke) = prefill_ranges(prefix, tokens, window);
            let (num_keys, stride) = (prefix + tokens, prefix + tokens + 3);
            let what = format!("{prefix}+{tokens} window {window:?}");
            let planned = ColumnSplit::prefill(&IndexerConfig::default(), tokens, stride, &dev);
            let explicit = [64usize, 128, 192].map(|cols| ColumnSplit {
                splits: stride.div_ceil(cols) as u32,
                cols_per_split: cols as u32,
            });
            for split in std::iter::once(planned).chain(explicit) {
                let cells = ragged_kernel_writes(&ks, &ke, num_keys, stride, split);
                assert_ragged_writes_each_cell_once(
                    &what, &cells, &ks, &ke, num_keys, stride, split,
                );
                for ptok in [2, 4, 8] {
                    let cells = ragged_wgmma_writes(&ks, &ke, num_keys, stride, split, ptok);
                    let what = format!("{what} wgmma {ptok} tokens");
                    assert_ragged_writes_each_cell_once(
                        &what, &cells, &ks, &ke, num_keys, stride, split,
                    );
                }
            }
        }
    }

    #[test]
    fn misuse_is_rejected_before_launch() {
        let c = IndexerConfig::default();
        let split = ColumnSplit {
            splits: 1,
            cols_per_split: 64,
        };
        let r = RaggedScoresArgs {
            tokens: 2,
            q_fp8: 0x1000,
            weights: 0x2000,
            keys_fp8: 0x3000,
            keys_scale: 0x4000,
            num_keys: 10,
            ks: 0x5000,
            ke: 0x6000,
            logits: 0x7000,
            stride: 10,
            ..RaggedScoresArgs::default()
        };
        assert!(ragged_params(&r, split).is_ok());
        assert!(ragged_params(&RaggedScoresArgs { stride: 9, ..r }, split).is_err());
        assert!(
            ragged_params(
                &RaggedScoresArgs {
                    keys_fp8: 0x3008,
                    ..r
                },
                split
            )
            .is_err()
        );
        let p = PagedScoresArgs {
            batch: 2,
            q_fp8: 0x1000,
            weights: 0x2000,
            cache: 0x3000,
            cache_pages: 4,
            block_table: 0x4000,
            bt_stride: 3,
            bt_cols: 3,
            context_lens: 0x5000,
            logits: 0x6000,
            stride: 192,
            row_map_out: 0,
        };
        assert!(paged_params(&c, &p, split).is_ok());
        assert!(paged_params(&c, &PagedScoresArgs { bt_cols: 4, ..p }, split).is_err());
        assert!(
            paged_params(
                &c,
                &PagedScoresArgs {
                    context_lens: 0,
                    ..p
                },
                split
            )
            .is_err()
        );
    }
}
