//! Timing entry points for the CLI (`dsa bench indexer`) and BENCHMARKS.md: decode scores at
//! batch 64 x 64K context, causal prefill scores, and the whole decode step eager and as a
//! CUDA graph; plus the host-only arithmetic of their floors ([`decode_cache_bytes`],
//! [`causal_prefill_flops`], [`l2_copies`]).
//!
//! Inputs are synthetic and random, never zeros (FP8 keys over pages in a shuffled order,
//! random queries, keys and weights); buffers are allocated here, outside the timed region.
//! Each figure is the median of [`Runs::iters`] runs after [`Runs::warmup`], each run between
//! its own pair of CUDA events. Decode inputs whose key cache would fit in L2 are replicated
//! ([`l2_copies`]) and the runs rotate through the copies, so every run reads its keys from
//! HBM. The context of `stream` should have event tracking disabled
//! (`CudaContext::disable_event_tracking`) for the graph timing.

use crate::config::IndexerConfig;
use crate::error::{IndexerError, Result};
use crate::pipeline::{DecodeArgs, Indexer, PrefillArgs, TokenArgs};
use crate::plan::{DecodeShape, PrefillShape};
use cudarc::driver::{CudaSlice, CudaStream, DeviceRepr, sys};
use dsa_jit_cache::{DeviceInfo, dptr, median_gpu_us};
use std::sync::Arc;

/// How many runs a figure takes: `warmup` discarded, then the median of `iters` timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runs {
    /// Runs before timing (JIT, caches, clocks).
    pub warmup: usize,
    /// Timed runs (at least 1).
    pub iters: usize,
}

impl Default for Runs {
    /// 10 warm-up runs, median of 100.
    fn default() -> Self {
        Runs {
            warmup: 10,
            iters: 100,
        }
    }
}

/// Bytes of the paged key cache a decode scores launch must read: `batch * context` keys of
/// `D` FP8 bytes plus one f32 scale each (the block table and the queries are extra).
pub fn decode_cache_bytes(config: &IndexerConfig, batch: usize, context: usize) -> usize {
    batch * context * (config.dim + 4)
}

/// Useful FLOPs of causal prefill scores over `tokens` tokens (`ks = 0`, `ke = t + 1`):
/// `2 * H * D` per (token, key) pair in range, `T (T + 1) / 2` pairs.
pub fn causal_prefill_flops(config: &IndexerConfig, tokens: usize) -> f64 {
    let pairs = tokens as f64 * (tokens as f64 + 1.0) / 2.0;
    2.0 * (config.heads * config.dim) as f64 * pairs
}

/// Copies of an input of `bytes` bytes that make a working set of at least three times the L2
/// (`l2_bytes`), 1 to 64: rotating through them keeps each run's reads out of L2.
pub fn l2_copies(bytes: usize, l2_bytes: usize) -> usize {
    (3 * l2_bytes).div_ceil(bytes.max(1)).clamp(1, 64)
}

/// Decode scores: time and achieved key-cache read bandwidth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeScoresTiming {
    /// Median microseconds per launch.
    pub us: f64,
    /// Key-cache bytes the launch must read (`batch * context * (D + 4)`).
    pub bytes: usize,
    /// `bytes / time`, GB/s (compare with the HBM bandwidth for the floor).
    pub gbs: f64,
    /// Copies of the cache the runs rotate through ([`l2_copies`]).
    pub copies: usize,
}

/// Prefill scores: time and achieved FP8 throughput.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrefillScoresTiming {
    /// Median microseconds per launch.
    pub us: f64,
    /// Useful FLOPs: `2 * H * D` per (token, key) pair in range.
    pub flops: f64,
    /// `flops / time`, TFLOP/s.
    pub tflops: f64,
}

/// The whole decode step, eager and replayed from a CUDA graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeStepTiming {
    /// Median microseconds of an eager step (every stage launched, host checks included).
    pub eager_us: f64,
    /// Median microseconds of a graph replay of the same step.
    pub graph_us: f64,
    /// Copies of the cache (one graph each) the runs rotate through ([`l2_copies`]).
    pub copies: usize,
}

/// A fast deterministic generator for synthetic data (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn upload<T: DeviceRepr>(stream: &Arc<CudaStream>, v: &[T]) -> Result<CudaSlice<T>> {
    stream
        .clone_htod(v)
        .map_err(|e| IndexerError::driver("uploading timing inputs", e))
}

fn zeros(stream: &Arc<CudaStream>, bytes: usize) -> Result<CudaSlice<u8>> {
    stream
        .alloc_zeros::<u8>(bytes.max(16))
        .map_err(|e| IndexerError::driver("allocating timing buffers", e))
}

/// Per-token device inputs for `tokens` tokens (bf16/f16/f32 per the config).
struct Tokens {
    q: CudaSlice<u8>,
    weights: CudaSlice<f32>,
    k: CudaSlice<u8>,
    positions: CudaSlice<i64>,
    cos_sin: CudaSlice<f32>,
    loc: CudaSlice<i64>,
}

fn encode(config: &IndexerConfig, v: &[f32]) -> Vec<u8> {
    use crate::config::DType;
    match config.input {
        DType::Bf16 => v
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect(),
        DType::F16 => v
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
        DType::F32 => v.iter().flat_map(|&x| x.to_le_bytes()).collect(),
    }
}

fn tokens(
    stream: &Arc<CudaStream>,
    c: &IndexerConfig,
    n: usize,
    max_pos: usize,
    locs: &[i64],
) -> Result<Tokens> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let q: Vec<f32> = (0..n * c.heads * c.dim).map(|_| rng.unit()).collect();
    let w: Vec<f32> = (0..n * c.heads).map(|_| rng.unit()).collect();
    let k: Vec<f32> = (0..n * c.dim).map(|_| rng.unit()).collect();
    let pos: Vec<i64> = (0..n).map(|t| (t % max_pos) as i64).collect();
    let table: Vec<f32> = (0..max_pos * c.rope_dim).map(|_| rng.unit()).collect();
    Ok(Tokens {
        q: upload(stream, &encode(c, &q))?,
        weights: upload(stream, &w)?,
        k: upload(stream, &encode(c, &k))?,
        positions: upload(stream, &pos)?,
        cos_sin: upload(stream, &if table.is_empty() { vec![0.0] } else { table })?,
        loc: upload(stream, locs)?,
    })
}

/// Random FP8 codes (no NaN, no exponent 1111) and positive scales for `pages` cache pages.
fn random_cache(c: &IndexerConfig, pages: usize) -> Vec<u8> {
    let layout = c.cache_layout();
    let mut rng = Rng(0x5151_2026);
    let mut bytes = vec![0u8; pages * layout.page_bytes()];
    for page in bytes.chunks_mut(layout.page_bytes()) {
        let (keys, scales) = page.split_at_mut(c.page_size * c.dim);
        for word in keys.chunks_mut(8) {
            let codes = (rng.next() & 0xf7f7_f7f7_f7f7_f7f7).to_le_bytes();
            word.copy_from_slice(&codes[..word.len()]);
        }
        for s in scales.chunks_mut(4) {
            s.copy_from_slice(&(0.01 + 0.01 * rng.unit().abs()).to_le_bytes());
        }
    }
    bytes
}

/// Device buffers of a decode step over `batch` requests of `context` keys each, in `copies`
/// disjoint copies of the cache (one block table and one set of new-token slots per copy), the
/// pages of every request in a shuffled order.
struct DecodeSetup {
    plan: crate::DecodePlan,
    tokens: Tokens,
    copies: usize,
    /// Pages of one copy.
    pages: usize,
    cache: CudaSlice<u8>,
    /// `copies` block tables of `[batch, pages / batch]`, back to back.
    table: CudaSlice<i32>,
    lens: CudaSlice<i32>,
    logits: CudaSlice<u8>,
    indices: CudaSlice<u8>,
    ws: CudaSlice<u8>,
}

impl DecodeSetup {
    fn new(
        stream: &Arc<CudaStream>,
        config: &IndexerConfig,
        batch: usize,
        context: usize,
    ) -> Result<Self> {
        if batch == 0 || context == 0 || context > i32::MAX as usize {
            return Err(IndexerError::Shape(format!(
                "decode timing needs batch >= 1 and context in 1..=2^31-1, got {batch} x {context}"
            )));
        }
        let indexer = Indexer::new(*config)?;
        let device = DeviceInfo::of(stream.context())?;
        let copies = l2_copies(
            decode_cache_bytes(config, batch, context),
            device.l2_bytes as usize,
        );
        let per_req = context.div_ceil(config.page_size);
        let pages = batch * per_req;
        let shape = DecodeShape {
            batch,
            stride: context,
            bt_stride: per_req,
            max_positions: context,
            cache_pages: copies * pages,
        };
        let plan = indexer.plan_decode(shape, &device)?;
        let mut rng = Rng(7);
        let mut order: Vec<i32> = (0..(copies * pages) as i32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        // The new token of request b (copy c) goes to its context's last slot.
        let last = (context - 1) as i64;
        let p = config.page_size as i64;
        let locs: Vec<i64> = (0..copies * batch)
            .map(|cb| order[cb * per_req + (last / p) as usize] as i64 * p + last % p)
            .collect();
        Ok(DecodeSetup {
            tokens: tokens(stream, config, batch, context, &locs)?,
            copies,
            pages,
            cache: upload(stream, &random_cache(config, copies * pages))?,
            table: upload(stream, &order)?,
            lens: upload(stream, &vec![context as i32; batch])?,
            logits: zeros(stream, batch * context * 4)?,
            indices: zeros(stream, batch * config.k * 4)?,
            ws: zeros(stream, plan.workspace_bytes())?,
            plan,
        })
    }

    /// The step's arguments over copy `copy` of the cache.
    fn args(&self, s: &Arc<CudaStream>, copy: usize) -> DecodeArgs {
        let t = &self.tokens;
        let batch = self.plan.shape().batch as u64;
        let c = (copy % self.copies) as u64;
        DecodeArgs {
            tokens: TokenArgs {
                q: dptr(&t.q, s),
                weights: dptr(&t.weights, s),
                k: dptr(&t.k, s),
                positions: dptr(&t.positions, s),
                cos_sin: dptr(&t.cos_sin, s),
                out_cache_loc: dptr(&t.loc, s) + c * batch * 8,
                cache: dptr(&self.cache, s),
                ..TokenArgs::default()
            },
            block_table: dptr(&self.table, s) + c * self.pages as u64 * 4,
            context_lens: dptr(&self.lens, s),
            logits: dptr(&self.logits, s),
            indices: dptr(&self.indices, s),
            workspace: dptr(&self.ws, s),
            workspace_bytes: self.plan.workspace_bytes(),
        }
    }

    /// Every copy's arguments.
    fn all_args(&self, s: &Arc<CudaStream>) -> Vec<DecodeArgs> {
        (0..self.copies).map(|c| self.args(s, c)).collect()
    }
}

/// Times the decode scores kernel alone (batch x context keys through shuffled pages; run `i`
/// reads copy `i % copies` of the cache).
pub fn decode_scores(
    stream: &Arc<CudaStream>,
    config: &IndexerConfig,
    batch: usize,
    context: usize,
    runs: Runs,
) -> Result<DecodeScoresTiming> {
    let setup = DecodeSetup::new(stream, config, batch, context)?;
    let args = setup.all_args(stream);
    setup.plan.prepare(stream.context())?;
    // SAFETY: every buffer was allocated above for this plan's shape and outlives the timing.
    unsafe { setup.plan.query_path(stream, &args[0])? };
    // SAFETY: as above; every copy's block table and slots lie inside those buffers.
    let us = time(stream, runs, |i| unsafe {
        setup.plan.scores(stream, &args[i % args.len()])
    })?;
    let bytes = decode_cache_bytes(config, batch, context);
    Ok(DecodeScoresTiming {
        us,
        bytes,
        gbs: bytes as f64 / (us * 1e3),
        copies: setup.copies,
    })
}

/// Times the prefill scores kernel for `tokens` causal tokens over their own keys
/// (`ks = 0`, `ke = t + 1`; keys and queries from the key and query paths over random inputs).
pub fn prefill_scores(
    stream: &Arc<CudaStream>,
    config: &IndexerConfig,
    tokens_n: usize,
    runs: Runs,
) -> Result<PrefillScoresTiming> {
    if tokens_n == 0 || tokens_n > i32::MAX as usize {
        return Err(IndexerError::Shape(format!(
            "prefill timing needs 1..=2^31-1 tokens, got {tokens_n}"
        )));
    }
    let indexer = Indexer::new(*config)?;
    let device = DeviceInfo::of(stream.context())?;
    let shape = PrefillShape {
        tokens: tokens_n,
        num_keys: tokens_n,
        stride: tokens_n,
        max_positions: tokens_n,
        cache_pages: tokens_n.div_ceil(config.page_size),
    };
    let plan = indexer.plan_prefill(shape, &device)?;
    let locs: Vec<i64> = (0..tokens_n as i64).collect();
    let t = tokens(stream, config, tokens_n, shape.max_positions, &locs)?;
    let cache = zeros(
        stream,
        shape.cache_pages * config.cache_layout().page_bytes(),
    )?;
    let keys = zeros(stream, tokens_n * config.dim)?;
    let scales = zeros(stream, tokens_n * 4)?;
    let ks = upload(stream, &vec![0i32; tokens_n])?;
    let ke = upload(stream, &(1..=tokens_n as i32).collect::<Vec<_>>())?;
    let logits = zeros(stream, tokens_n * shape.stride * 4)?;
    let indices = zeros(stream, tokens_n * config.k * 4)?;
    let ws = zeros(stream, plan.workspace_bytes())?;
    let s = stream;
    let args = PrefillArgs {
        tokens: TokenArgs {
            q: dptr(&t.q, s),
            weights: dptr(&t.weights, s),
            k: dptr(&t.k, s),
            positions: dptr(&t.positions, s),
            cos_sin: dptr(&t.cos_sin, s),
            out_cache_loc: dptr(&t.loc, s),
            cache: dptr(&cache, s),
            ..TokenArgs::default()
        },
        keys_fp8: dptr(&keys, s),
        keys_scale: dptr(&scales, s),
        new_keys_offset: 0,
        ks: dptr(&ks, s),
        ke: dptr(&ke, s),
        topk_offsets: 0,
        logits: dptr(&logits, s),
        indices: dptr(&indices, s),
        workspace: dptr(&ws, s),
        workspace_bytes: plan.workspace_bytes(),
    };
    plan.prepare(s.context())?;
    // SAFETY: every buffer was allocated above for this plan's shape and outlives the timing.
    // The key path fills every row of the key buffer from the random keys.
    unsafe {
        plan.key_path(s, &args)?;
        plan.query_path(s, &args)?;
    }
    // SAFETY: as above.
    let us = time(s, runs, |_| unsafe { plan.scores(s, &args) })?;
    let flops = causal_prefill_flops(config, tokens_n);
    Ok(PrefillScoresTiming {
        us,
        flops,
        tflops: flops / (us * 1e6),
    })
}

/// Times the whole decode step (key path, query path, scores, top-k with the paged transform)
/// eager and replayed from CUDA graphs captured on `stream` (one per cache copy; run `i` uses
/// copy `i % copies`).
pub fn decode_step(
    stream: &Arc<CudaStream>,
    config: &IndexerConfig,
    batch: usize,
    context: usize,
    runs: Runs,
) -> Result<DecodeStepTiming> {
    let setup = DecodeSetup::new(stream, config, batch, context)?;
    let args = setup.all_args(stream);
    setup.plan.prepare(stream.context())?;
    // SAFETY: every buffer was allocated for this plan's shape and outlives the timing.
    let eager_us = time(stream, runs, |i| unsafe {
        setup.plan.decode(stream, &args[i % args.len()], None)
    })?;
    let drv = |e| IndexerError::driver("capturing the decode step", e);
    let mut graphs = Vec::with_capacity(args.len());
    for a in &args {
        stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(drv)?;
        // SAFETY: as above; the graphs are dropped before the buffers.
        let captured = unsafe { setup.plan.decode(stream, a, None) };
        let graph = stream.end_capture(sys::CUgraphInstantiate_flags(0));
        captured?;
        graphs.push(
            graph
                .map_err(drv)?
                .ok_or_else(|| IndexerError::Shape("the capture recorded no work".into()))?,
        );
    }
    let graph_us = time(stream, runs, |i| {
        graphs[i % graphs.len()]
            .launch()
            .map_err(|e| IndexerError::driver("replaying the decode graph", e))
    })?;
    stream
        .synchronize()
        .map_err(|e| IndexerError::driver("synchronising after the decode timing", e))?;
    Ok(DecodeStepTiming {
        eager_us,
        graph_us,
        copies: setup.copies,
    })
}

/// Median GPU microseconds of `f(i)` over `runs` (see [`median_gpu_us`]); the first error of
/// `f` ends the timing with that error.
fn time(
    stream: &Arc<CudaStream>,
    runs: Runs,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<f64> {
    let mut failure = None;
    let us = median_gpu_us(stream, runs.warmup, runs.iters.max(1), |i| {
        if failure.is_none() {
            failure = f(i).err();
        }
        Ok(())
    })?;
    failure.map_or(Ok(us), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_by_hand() {
        let c = IndexerConfig::default();
        // 64 x 64K keys of 128 FP8 bytes + a 4-byte scale: 553.6 MB.
        assert_eq!(decode_cache_bytes(&c, 64, 65536), 553_648_128);
        assert_eq!(decode_cache_bytes(&c, 1, 65536), 65536 * 132);
        // T = 4: pairs 1+2+3+4 = 10, 2*64*128 FLOPs each.
        assert_eq!(causal_prefill_flops(&c, 4), 10.0 * 16384.0);
        // T = 8192: 33,558,528 pairs -> 5.498e11 FLOPs.
        assert_eq!(causal_prefill_flops(&c, 8192), 16384.0 * 33_558_528.0);
        let glm = IndexerConfig { heads: 32, ..c };
        assert_eq!(causal_prefill_flops(&glm, 1), 8192.0);
    }

    #[test]
    fn copies_cover_three_l2s() {
        let l2 = 50 << 20;
        assert_eq!(l2_copies(553_648_128, l2), 1);
        assert_eq!(l2_copies(65536 * 132, l2), 19);
        assert_eq!(l2_copies(64 * 8192 * 132, l2), 3);
        assert_eq!(l2_copies(1, l2), 64);
        assert_eq!(l2_copies(0, l2), 64);
        for bytes in [1 << 20, 8_650_752, 69_206_016] {
            let n = l2_copies(bytes, l2);
            assert!(n * bytes >= 3 * l2 || n == 64, "{bytes}");
        }
    }

    #[test]
    fn random_cache_has_no_nan_codes_and_positive_scales() {
        let c = IndexerConfig {
            page_size: 4,
            ..IndexerConfig::default()
        };
        let bytes = random_cache(&c, 3);
        let l = c.cache_layout();
        assert_eq!(bytes.len(), 3 * l.page_bytes());
        let mut distinct = std::collections::HashSet::new();
        for loc in 0..12 {
            let key = &bytes[l.key_offset(loc)..][..c.dim];
            assert!(key.iter().all(|&b| b & 0x7f != 0x7f), "slot {loc}");
            distinct.extend(key.iter().copied());
            let s = f32::from_le_bytes(bytes[l.scale_offset(loc)..][..4].try_into().unwrap());
            assert!((0.01..=0.02).contains(&s), "slot {loc}: {s}");
        }
        assert!(distinct.len() > 100, "keys look random");
    }

    /// One GPU, a fresh stream, event tracking off (graph capture).
    fn gpu_stream() -> Arc<CudaStream> {
        let ctx = cudarc::driver::CudaContext::new(0).expect("a CUDA device");
        // SAFETY: the test orders all its work on one stream and synchronises explicitly.
        unsafe { ctx.disable_event_tracking() };
        ctx.new_stream().expect("a stream")
    }

    #[test]
    #[ignore = "needs a CUDA GPU"]
    fn timings_run_on_small_awkward_shapes() {
        let s = gpu_stream();
        let c = IndexerConfig::default();
        let runs = Runs {
            warmup: 1,
            iters: 3,
        };
        let d = decode_scores(&s, &c, 3, 1000, runs).unwrap();
        assert!(d.us > 0.0 && d.us.is_finite() && d.gbs > 0.0, "{d:?}");
        assert_eq!(d.bytes, 3 * 1000 * 132);
        assert!(
            d.copies > 1,
            "a 0.4 MB cache is replicated beyond L2: {d:?}"
        );
        let p = prefill_scores(&s, &c, 99, runs).unwrap();
        assert!(p.us > 0.0 && p.tflops > 0.0, "{p:?}");
        let step = decode_step(&s, &c, 2, 4099, runs).unwrap();
        assert!(step.eager_us > 0.0 && step.graph_us > 0.0, "{step:?}");
        assert!(decode_scores(&s, &c, 0, 10, runs).is_err());
        assert!(prefill_scores(&s, &c, 0, runs).is_err());
    }
}
