//! Timing entry points for the CLI and BENCHMARKS.md (GPU only): decode scores at batch 64 x
//! 64K context, causal prefill scores, and the whole decode step eager and as a CUDA graph.
//!
//! Inputs are synthetic (random FP8 keys over pages in a shuffled order); buffers are
//! allocated here, outside the timed region. The context of `stream` should have event
//! tracking disabled (`CudaContext::disable_event_tracking`) for the graph timing.

use crate::config::IndexerConfig;
use crate::error::{IndexerError, Result};
use crate::pipeline::{DecodeArgs, Indexer, PrefillArgs, TokenArgs};
use crate::plan::{DecodeShape, PrefillShape};
use cudarc::driver::{CudaSlice, CudaStream, DeviceRepr, sys};
use dsa_jit_cache::{DeviceInfo, dptr, median_gpu_us};
use std::sync::Arc;

const WARMUP: usize = 3;
const ITERS: usize = 20;

/// Decode scores: time and achieved key-cache read bandwidth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeScoresTiming {
    /// Median microseconds per launch.
    pub us: f64,
    /// Key-cache bytes the launch must read (`batch * context * (D + 4)`).
    pub bytes: usize,
    /// `bytes / time`, GB/s (compare with the HBM bandwidth for the floor).
    pub gbs: f64,
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
    /// Median microseconds of an eager step (5 launches).
    pub eager_us: f64,
    /// Median microseconds of a graph replay of the same step.
    pub graph_us: f64,
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

/// Random FP8 codes (no NaN) and scales for `pages` cache pages.
fn random_cache(c: &IndexerConfig, pages: usize) -> Vec<u8> {
    let layout = c.cache_layout();
    let mut rng = Rng(0x5151_2026);
    let mut bytes = vec![0u8; pages * layout.page_bytes()];
    for page in bytes.chunks_mut(layout.page_bytes()) {
        let (keys, scales) = page.split_at_mut(c.page_size * c.dim);
        keys.iter_mut()
            .for_each(|b| *b = (rng.next() >> 56) as u8 & 0xf7);
        for s in scales.chunks_mut(4) {
            s.copy_from_slice(&(0.01 + 0.01 * rng.unit().abs()).to_le_bytes());
        }
    }
    bytes
}

/// Device buffers of a decode step over `batch` requests of `context` keys each, the pages of
/// every request in a shuffled order.
struct DecodeSetup {
    plan: crate::DecodePlan,
    tokens: Tokens,
    cache: CudaSlice<u8>,
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
        let indexer = Indexer::new(*config)?;
        let device = DeviceInfo::of(stream.context())?;
        let per_req = context.div_ceil(config.page_size);
        let pages = batch * per_req;
        let shape = DecodeShape {
            batch,
            stride: context,
            bt_stride: per_req,
            max_positions: context,
            cache_pages: pages,
        };
        let plan = indexer.plan_decode(shape, &device)?;
        let mut rng = Rng(7);
        let mut order: Vec<i32> = (0..pages as i32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        let last = (context - 1) as i64;
        let p = config.page_size as i64;
        let locs: Vec<i64> = (0..batch)
            .map(|b| order[b * per_req + (last / p) as usize] as i64 * p + last % p)
            .collect();
        Ok(DecodeSetup {
            tokens: tokens(stream, config, batch, context, &locs)?,
            cache: upload(stream, &random_cache(config, pages))?,
            table: upload(stream, &order)?,
            lens: upload(stream, &vec![context as i32; batch])?,
            logits: zeros(stream, batch * context * 4)?,
            indices: zeros(stream, batch * config.k * 4)?,
            ws: zeros(stream, plan.workspace_bytes())?,
            plan,
        })
    }

    fn args(&self, s: &Arc<CudaStream>) -> DecodeArgs {
        let t = &self.tokens;
        DecodeArgs {
            tokens: TokenArgs {
                q: dptr(&t.q, s),
                weights: dptr(&t.weights, s),
                k: dptr(&t.k, s),
                positions: dptr(&t.positions, s),
                cos_sin: dptr(&t.cos_sin, s),
                out_cache_loc: dptr(&t.loc, s),
                cache: dptr(&self.cache, s),
                ..TokenArgs::default()
            },
            block_table: dptr(&self.table, s),
            context_lens: dptr(&self.lens, s),
            logits: dptr(&self.logits, s),
            indices: dptr(&self.indices, s),
            workspace: dptr(&self.ws, s),
            workspace_bytes: self.plan.workspace_bytes(),
        }
    }
}

/// Times the decode scores kernel alone (batch x context keys through shuffled pages).
pub fn decode_scores(
    stream: &Arc<CudaStream>,
    config: &IndexerConfig,
    batch: usize,
    context: usize,
) -> Result<DecodeScoresTiming> {
    let setup = DecodeSetup::new(stream, config, batch, context)?;
    let args = setup.args(stream);
    setup.plan.prepare(stream.context())?;
    // SAFETY: every buffer was allocated above for this plan's shape and outlives the timing.
    unsafe { setup.plan.query_path(stream, &args)? };
    // SAFETY: as above.
    let us = time(stream, || unsafe { setup.plan.scores(stream, &args) })?;
    let bytes = batch * context * (config.dim + 4);
    Ok(DecodeScoresTiming {
        us,
        bytes,
        gbs: bytes as f64 / (us * 1e3),
    })
}

/// Times the prefill scores kernel for `tokens` causal tokens over their own keys
/// (`ks = 0`, `ke = t + 1`).
pub fn prefill_scores(
    stream: &Arc<CudaStream>,
    config: &IndexerConfig,
    tokens_n: usize,
) -> Result<PrefillScoresTiming> {
    let indexer = Indexer::new(*config)?;
    let device = DeviceInfo::of(stream.context())?;
    let shape = PrefillShape {
        tokens: tokens_n,
        num_keys: tokens_n,
        stride: tokens_n.max(1),
        max_positions: tokens_n.max(1),
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
    let ks = upload(stream, &vec![0i32; tokens_n.max(1)])?;
    let ke = upload(stream, &(1..=tokens_n.max(1) as i32).collect::<Vec<_>>())?;
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
    unsafe {
        plan.key_path(s, &args)?;
        plan.query_path(s, &args)?;
    }
    // SAFETY: as above.
    let us = time(s, || unsafe { plan.scores(s, &args) })?;
    let pairs = tokens_n as f64 * (tokens_n as f64 + 1.0) / 2.0;
    let flops = 2.0 * (config.heads * config.dim) as f64 * pairs;
    Ok(PrefillScoresTiming {
        us,
        flops,
        tflops: flops / (us * 1e6),
    })
}

/// Times the whole decode step (key path, query path, scores, top-k) eager and replayed from
/// a CUDA graph captured on `stream`.
pub fn decode_step(
    stream: &Arc<CudaStream>,
    config: &IndexerConfig,
    batch: usize,
    context: usize,
) -> Result<DecodeStepTiming> {
    let setup = DecodeSetup::new(stream, config, batch, context)?;
    let args = setup.args(stream);
    setup.plan.prepare(stream.context())?;
    // SAFETY: every buffer was allocated for this plan's shape and outlives the timing.
    let eager_us = time(stream, || unsafe { setup.plan.decode(stream, &args, None) })?;
    let drv = |e| IndexerError::driver("capturing the decode step", e);
    stream
        .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .map_err(drv)?;
    // SAFETY: as above; the graph is dropped before the buffers.
    let captured = unsafe { setup.plan.decode(stream, &args, None) };
    let graph = stream
        .end_capture(sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH)
        .map_err(drv)?;
    captured?;
    let graph = graph.ok_or_else(|| IndexerError::Shape("the capture recorded no work".into()))?;
    let graph_us = time(stream, || {
        graph
            .launch()
            .map_err(|e| IndexerError::driver("replaying the decode graph", e))
    })?;
    Ok(DecodeStepTiming { eager_us, graph_us })
}

/// Median GPU microseconds of `f` (see [`median_gpu_us`]); the first error of `f` ends the
/// timing with that error.
fn time(stream: &Arc<CudaStream>, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut failure = None;
    let us = median_gpu_us(stream, WARMUP, ITERS, |_| {
        if failure.is_none() {
            failure = f().err();
        }
        Ok(())
    })?;
    failure.map_or(Ok(us), Err)
}
