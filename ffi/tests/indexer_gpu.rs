//! The indexer through the C ABI equals the Rust API bit for bit (logits, indices, the cache,
//! the key buffer and the workspace's queries and weights) on the same inputs, eagerly and
//! replayed from a CUDA graph captured around the C call; the C fingerprint equals the CPU
//! reference. Every test needs a GPU.

mod common;

use common::indexer::{Plan, info};
use common::*;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DeviceRepr, ValidAsZeroBits, sys};
use dsa_indexer::collective::{WorkspaceLayout, fingerprint};
use dsa_indexer::{
    DType, DecodeArgs, DecodeShape, Indexer, IndexerConfig, PrefillArgs, PrefillShape, RopeStyle,
    ScaleFormat, TokenArgs,
};
use dsa_jit_cache::{DeviceInfo, dptr};
use dsa_kernels::collective::dsa_collective_fingerprint;
use dsa_kernels::indexer::*;
use dsa_kernels::{DsaDtype, DsaStatus, DsaStream};
use std::ptr::{null, null_mut};
use std::sync::Arc;

struct Gpu {
    ctx: Arc<CudaContext>,
    s: Arc<CudaStream>,
    info: DeviceInfo,
}

fn gpu() -> Gpu {
    let ctx = CudaContext::new(0).unwrap();
    let s = ctx.new_stream().unwrap();
    let info = DeviceInfo::of(&ctx).unwrap();
    Gpu { ctx, s, info }
}

fn raw(s: &Arc<CudaStream>) -> DsaStream {
    s.cu_stream() as DsaStream
}

fn up<T: DeviceRepr>(s: &Arc<CudaStream>, v: &[T]) -> CudaSlice<T> {
    s.clone_htod(v).unwrap()
}

fn down<T: DeviceRepr + Default + Clone>(s: &Arc<CudaStream>, d: &CudaSlice<T>) -> Vec<T> {
    s.clone_dtoh(d).unwrap()
}

fn zeros<T: DeviceRepr + ValidAsZeroBits>(s: &Arc<CudaStream>, n: usize) -> CudaSlice<T> {
    s.alloc_zeros::<T>(n.max(1)).unwrap()
}

/// The C config of a Rust config.
fn c_config(c: &IndexerConfig) -> DsaIndexerConfig {
    let mut d = DsaIndexerConfig::default();
    ok(dsa_indexer_config_default(&mut d));
    DsaIndexerConfig {
        heads: c.heads as i32,
        dim: c.dim as i32,
        rope_dim: c.rope_dim as i32,
        page_size: c.page_size as i32,
        k: c.k as i32,
        input_dtype: match c.input {
            DType::F32 => DsaDtype::F32,
            DType::Bf16 => DsaDtype::Bf16,
            DType::F16 => DsaDtype::F16,
        } as i32,
        rope_style: (c.rope == RopeStyle::Interleaved) as i32,
        scale_format: (c.scale_format == ScaleFormat::Pow2) as i32,
        eps: c.eps,
        ..d
    }
}

/// `n` random values of `dtype` as little-endian bytes, magnitudes in about `[0.25, 4)`.
fn values(r: &mut Rng, n: usize, dtype: DType) -> Vec<u8> {
    (0..n)
        .flat_map(|_| {
            let sign = (r.next() & 1) as u16;
            let mant = r.next() as u16;
            let exp = r.below(4) as u16; // 2^-2 .. 2^1
            match dtype {
                DType::F32 => {
                    let v = (1.0 + (mant as f32) / 65536.0) * 2f32.powi(exp as i32 - 2);
                    (if sign == 1 { -v } else { v }).to_le_bytes().to_vec()
                }
                DType::Bf16 => ((sign << 15) | ((125 + exp) << 7) | (mant & 0x7f))
                    .to_le_bytes()
                    .to_vec(),
                DType::F16 => ((sign << 15) | ((13 + exp) << 10) | (mant & 0x3ff))
                    .to_le_bytes()
                    .to_vec(),
            }
        })
        .collect()
}

/// A real RoPE table (theta 10000): per position `R/2` cosines then `R/2` sines.
fn rope_table(max_pos: usize, rope_dim: usize) -> Vec<f32> {
    let half = rope_dim / 2;
    let mut t = Vec::with_capacity(max_pos * rope_dim + 1);
    for p in 0..max_pos {
        let a: Vec<f64> = (0..half)
            .map(|j| p as f64 / 10000f64.powf(2.0 * j as f64 / rope_dim as f64))
            .collect();
        t.extend(a.iter().map(|x| x.cos() as f32));
        t.extend(a.iter().map(|x| x.sin() as f32));
    }
    t.push(0.0); // never empty
    t
}

/// Random FP8 codes (no NaN) with positive scales: `rows` keys of `dim` bytes.
fn fp8_rows(r: &mut Rng, rows: usize, dim: usize) -> (Vec<u8>, Vec<f32>) {
    let codes = (0..rows * dim)
        .map(|_| {
            let b = r.next() as u8;
            if b & 0x7f == 0x7f { b ^ 1 } else { b }
        })
        .collect();
    let scales = (0..rows).map(|_| r.f32(0.001, 0.02)).collect();
    (codes, scales)
}

/// A paged cache of random keys (sglang layout).
fn random_cache(r: &mut Rng, c: &IndexerConfig, pages: usize) -> Vec<u8> {
    let (p, d) = (c.page_size, c.dim);
    let mut bytes = Vec::with_capacity(pages * p * (d + 4));
    for _ in 0..pages {
        let (codes, scales) = fp8_rows(r, p, d);
        bytes.extend(codes);
        bytes.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
    }
    bytes
}

/// Per-token device inputs shared by the Rust and the C call.
struct Tokens {
    q: CudaSlice<u8>,
    weights: CudaSlice<f32>,
    k: CudaSlice<u8>,
    ln_weight: CudaSlice<u8>,
    ln_bias: CudaSlice<u8>,
    positions: CudaSlice<i64>,
    cos_sin: CudaSlice<f32>,
    loc: CudaSlice<i64>,
}

impl Tokens {
    fn random(
        g: &Gpu,
        r: &mut Rng,
        c: &IndexerConfig,
        positions: &[i64],
        locs: &[i64],
        max_pos: usize,
    ) -> Self {
        let (n, s) = (positions.len(), &g.s);
        let pos = if n == 0 { vec![0] } else { positions.to_vec() };
        let loc = if n == 0 { vec![-1] } else { locs.to_vec() };
        let w: Vec<f32> = (0..(n * c.heads).max(1))
            .map(|_| r.f32(-1.0, 1.0))
            .collect();
        Tokens {
            q: up(s, &values(r, (n * c.heads * c.dim).max(1), c.input)),
            weights: up(s, &w),
            k: up(s, &values(r, (n * c.dim).max(1), c.input)),
            ln_weight: up(s, &values(r, c.dim, c.input)),
            ln_bias: up(s, &values(r, c.dim, c.input)),
            positions: up(s, &pos),
            cos_sin: up(s, &rope_table(max_pos, c.rope_dim)),
            loc: up(s, &loc),
        }
    }

    fn rust(&self, s: &Arc<CudaStream>, cache: &CudaSlice<u8>) -> TokenArgs {
        TokenArgs {
            q: dptr(&self.q, s),
            weights: dptr(&self.weights, s),
            k: dptr(&self.k, s),
            ln_weight: dptr(&self.ln_weight, s),
            ln_bias: dptr(&self.ln_bias, s),
            positions: dptr(&self.positions, s),
            cos_sin: dptr(&self.cos_sin, s),
            out_cache_loc: dptr(&self.loc, s),
            cache: dptr(cache, s),
        }
    }

    fn c(&self, s: &Arc<CudaStream>, cache: &CudaSlice<u8>) -> DsaIndexerTokens {
        let t = self.rust(s, cache);
        let p = |a: u64| a as *const std::ffi::c_void;
        DsaIndexerTokens {
            q: p(t.q),
            weights: p(t.weights),
            k: p(t.k),
            ln_weight: p(t.ln_weight),
            ln_bias: p(t.ln_bias),
            positions: p(t.positions),
            cos_sin: p(t.cos_sin),
            out_cache_loc: p(t.out_cache_loc),
            cache: t.cache as *mut std::ffi::c_void,
        }
    }
}

/// Outputs of one call, for comparison; the last byte buffer is the workspace.
struct Outputs {
    f32: Vec<CudaSlice<f32>>,
    i32: Vec<CudaSlice<i32>>,
    u8: Vec<CudaSlice<u8>>,
}

/// Outputs equal bit for bit; of the workspace, the first `ws_compared` bytes (the queries,
/// weights and row info before top-k's scratch).
fn compare(s: &Arc<CudaStream>, what: &str, a: &Outputs, b: &Outputs, ws_compared: usize) {
    let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (i, (x, y)) in a.f32.iter().zip(&b.f32).enumerate() {
        assert_eq!(bits(down(s, x)), bits(down(s, y)), "{what}: f32 buffer {i}");
    }
    for (i, (x, y)) in a.i32.iter().zip(&b.i32).enumerate() {
        assert_eq!(down(s, x), down(s, y), "{what}: i32 buffer {i}");
    }
    let n = a.u8.len();
    for (i, (x, y)) in a.u8.iter().zip(&b.u8).enumerate() {
        let (x, y) = (down(s, x), down(s, y));
        let len = if i + 1 == n { ws_compared } else { x.len() };
        assert!(x[..len] == y[..len], "{what}: byte buffer {i}");
    }
}

/// A plan of `c` and `shape` on GPU 0 from `create` (a `dsa_indexer_*_plan_create`).
fn c_plan<S>(
    create: extern "C" fn(
        *const DsaIndexerConfig,
        *const S,
        i32,
        *mut *mut DsaIndexerPlan,
    ) -> DsaStatus,
    c: &IndexerConfig,
    shape: &S,
) -> Plan {
    let mut handle = null_mut();
    ok(create(&c_config(c), shape, 0, &mut handle));
    Plan(handle)
}

/// The C decode shape of a Rust one.
fn c_decode_shape(s: &DecodeShape) -> DsaIndexerDecodeShape {
    DsaIndexerDecodeShape {
        batch: s.batch as i64,
        stride: s.stride as i64,
        bt_stride: s.bt_stride as i64,
        max_positions: s.max_positions as i64,
        cache_pages: s.cache_pages as i64,
    }
}

/// Block table giving each request the pages it needs from a shuffled pool, and each request's
/// new-token slot (-1 for an empty context).
fn table_and_locs(
    r: &mut Rng,
    p: usize,
    pages: usize,
    lens: &[i32],
    bt_stride: usize,
) -> (Vec<i32>, Vec<i64>) {
    let mut pool: Vec<i32> = (0..pages as i32).collect();
    r.shuffle(&mut pool);
    let mut table = vec![-1i32; lens.len() * bt_stride];
    let mut next = 0;
    for (b, &len) in lens.iter().enumerate() {
        for col in 0..(len.max(1) as usize).div_ceil(p).min(bt_stride) {
            table[b * bt_stride + col] = pool[next];
            next += 1;
        }
    }
    let locs = lens
        .iter()
        .enumerate()
        .map(|(b, &l)| {
            if l <= 0 {
                return -1;
            }
            let last = l as usize - 1;
            table[b * bt_stride + last / p] as i64 * p as i64 + (last % p) as i64
        })
        .collect();
    (table, locs)
}

fn compare_decode(what: &str, c: IndexerConfig, lens: &[i32], stride: usize, seed: u64) {
    let g = gpu();
    let s = &g.s;
    let mut r = Rng(seed);
    let (batch, p) = (lens.len(), c.page_size);
    let bt_stride = stride.div_ceil(p) + 3;
    let pages: usize = lens
        .iter()
        .map(|&l| (l.max(1) as usize).div_ceil(p))
        .sum::<usize>()
        + 5;
    let (table, locs) = table_and_locs(&mut r, p, pages, lens, bt_stride);
    let positions: Vec<i64> = lens.iter().map(|&l| (l as i64 - 1).max(0)).collect();
    let tok = Tokens::random(&g, &mut r, &c, &positions, &locs, stride);
    let cache0 = random_cache(&mut r, &c, pages);
    let table_d = up(s, &if table.is_empty() { vec![-1] } else { table });
    let lens_d = up(
        s,
        &if lens.is_empty() {
            vec![0]
        } else {
            lens.to_vec()
        },
    );

    let shape = DecodeShape {
        batch,
        stride,
        bt_stride,
        max_positions: stride,
        cache_pages: pages,
    };
    let plan = Indexer::new(c)
        .unwrap()
        .plan_decode(shape, &g.info)
        .unwrap();
    let ws_bytes = plan.workspace_bytes();
    let run_outputs = || Outputs {
        f32: vec![zeros(s, batch * stride)],
        i32: vec![zeros(s, batch * c.k)],
        u8: vec![up(s, &cache0), zeros(s, ws_bytes)],
    };

    // The Rust API.
    let rust = run_outputs();
    let args = DecodeArgs {
        tokens: tok.rust(s, &rust.u8[0]),
        block_table: dptr(&table_d, s),
        context_lens: dptr(&lens_d, s),
        logits: dptr(&rust.f32[0], s),
        indices: dptr(&rust.i32[0], s),
        workspace: dptr(&rust.u8[1], s),
        workspace_bytes: ws_bytes,
    };
    // SAFETY: every buffer has the shape the plan documents.
    unsafe { plan.decode(s, &args, None) }.unwrap();

    // The C ABI, same inputs, its own outputs.
    let cplan = c_plan(dsa_indexer_decode_plan_create, &c, &c_decode_shape(&shape));
    let info = info(&cplan);
    assert_eq!(info.workspace_bytes, ws_bytes, "{what}");
    assert_eq!(info.logits_shape, [batch as i64, stride as i64]);
    assert_eq!(info.indices_shape, [batch as i64, c.k as i64]);
    assert_eq!(info.bt_cols, plan.bt_cols() as i64);
    ok(dsa_indexer_plan_prepare(cplan.0, raw(s)));
    let out = run_outputs();
    let cargs = DsaIndexerDecodeArgs {
        tokens: tok.c(s, &out.u8[0]),
        block_table: dptr(&table_d, s) as *const _,
        context_lens: dptr(&lens_d, s) as *const _,
        logits: dptr(&out.f32[0], s) as *mut _,
        indices: dptr(&out.i32[0], s) as *mut _,
        workspace: dptr(&out.u8[1], s) as *mut _,
        workspace_bytes: ws_bytes,
    };
    ok(dsa_indexer_decode(cplan.0, &cargs, null(), raw(s)));
    s.synchronize().unwrap();

    compare(s, what, &rust, &out, plan.regions().topk);
    if lens.iter().any(|&l| l > 0) {
        assert!(
            down(s, &out.i32[0]).iter().any(|&i| i >= 0),
            "{what}: something is selected"
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn c_decode_equals_the_rust_api_bit_for_bit() {
    let lens = [
        0, 1, 2, 63, 64, 65, 100, 2047, 2048, 2049, 3000, 4999, 5000, 777, 1,
    ];
    compare_decode("decode default", IndexerConfig::default(), &lens, 5000, 1);
    let small = IndexerConfig {
        input: DType::F16,
        heads: 32,
        rope: RopeStyle::Interleaved,
        scale_format: ScaleFormat::Pow2,
        page_size: 16,
        k: 100,
        ..IndexerConfig::default()
    };
    compare_decode(
        "decode f16",
        small,
        &[1, 99, 100, 101, 999, 1000, 500],
        1000,
        2,
    );
    let d64 = IndexerConfig {
        input: DType::F32,
        heads: 16,
        dim: 64,
        rope_dim: 0,
        page_size: 4,
        k: 7,
        ..IndexerConfig::default()
    };
    compare_decode("decode d64 no rope", d64, &[5, 0, 99, 6, 7], 99, 3);
    compare_decode("decode empty batch", IndexerConfig::default(), &[], 64, 4);
}

fn compare_prefill(
    what: &str,
    c: IndexerConfig,
    prefix: usize,
    tokens: usize,
    offsets: bool,
    seed: u64,
) {
    let g = gpu();
    let s = &g.s;
    let mut r = Rng(seed);
    let n_keys = prefix + tokens;
    let stride = n_keys + 3;
    let p = c.page_size;
    let pages = n_keys.div_ceil(p) + 2;
    let mut order: Vec<i64> = (0..pages as i64).collect();
    r.shuffle(&mut order);
    let mut locs: Vec<i64> = (0..tokens)
        .map(|t| order[(prefix + t) / p] * p as i64 + ((prefix + t) % p) as i64)
        .collect();
    if tokens > 2 {
        locs[tokens / 2] = -1;
    }
    let positions: Vec<i64> = (0..tokens).map(|t| (prefix + t) as i64).collect();
    let tok = Tokens::random(&g, &mut r, &c, &positions, &locs, n_keys.max(1));
    let mut ke: Vec<i32> = (0..tokens).map(|t| (prefix + t + 1) as i32).collect();
    let mut ks = vec![0i32; tokens];
    if tokens >= 3 {
        ks[0] = ke[0] + 5;
        ks[1] = -7;
        ke[2] = n_keys as i32 + 100;
    }
    let (codes0, scales0) = fp8_rows(&mut r, n_keys.max(1), c.dim);
    let cache0 = random_cache(&mut r, &c, pages);
    let ks_d = up(s, &if tokens == 0 { vec![0] } else { ks.clone() });
    let ke_d = up(s, &if tokens == 0 { vec![0] } else { ke.clone() });
    let off: Vec<i32> = (0..tokens.max(1) as i32).map(|t| t * 1000).collect();
    let off_d = up(s, &off);

    let shape = PrefillShape {
        tokens,
        num_keys: n_keys,
        stride,
        max_positions: n_keys.max(1),
        cache_pages: pages,
    };
    let plan = Indexer::new(c)
        .unwrap()
        .plan_prefill(shape, &g.info)
        .unwrap();
    let ws_bytes = plan.workspace_bytes();
    let run_outputs = || Outputs {
        f32: vec![zeros(s, tokens * stride), up(s, &scales0)],
        i32: vec![zeros(s, tokens * c.k)],
        u8: vec![up(s, &cache0), up(s, &codes0), zeros(s, ws_bytes)],
    };

    let rust = run_outputs();
    let args = PrefillArgs {
        tokens: tok.rust(s, &rust.u8[0]),
        keys_fp8: dptr(&rust.u8[1], s),
        keys_scale: dptr(&rust.f32[1], s),
        new_keys_offset: prefix,
        ks: dptr(&ks_d, s),
        ke: dptr(&ke_d, s),
        topk_offsets: if offsets { dptr(&off_d, s) } else { 0 },
        logits: dptr(&rust.f32[0], s),
        indices: dptr(&rust.i32[0], s),
        workspace: dptr(&rust.u8[2], s),
        workspace_bytes: ws_bytes,
    };
    // SAFETY: every buffer has the shape the plan documents.
    unsafe { plan.prefill(s, &args, None) }.unwrap();

    let cshape = DsaIndexerPrefillShape {
        tokens: tokens as i64,
        num_keys: n_keys as i64,
        stride: stride as i64,
        max_positions: n_keys.max(1) as i64,
        cache_pages: pages as i64,
    };
    let cplan = c_plan(dsa_indexer_prefill_plan_create, &c, &cshape);
    let info = info(&cplan);
    assert_eq!(info.workspace_bytes, ws_bytes, "{what}");
    assert_eq!(info.logits_shape, [tokens as i64, stride as i64]);
    ok(dsa_indexer_plan_prepare(cplan.0, raw(s)));
    let out = run_outputs();
    let cargs = DsaIndexerPrefillArgs {
        tokens: tok.c(s, &out.u8[0]),
        keys_fp8: dptr(&out.u8[1], s) as *mut _,
        keys_scale: dptr(&out.f32[1], s) as *mut _,
        new_keys_offset: prefix as i64,
        ks: dptr(&ks_d, s) as *const _,
        ke: dptr(&ke_d, s) as *const _,
        topk_offsets: if offsets {
            dptr(&off_d, s) as *const _
        } else {
            null()
        },
        logits: dptr(&out.f32[0], s) as *mut _,
        indices: dptr(&out.i32[0], s) as *mut _,
        workspace: dptr(&out.u8[2], s) as *mut _,
        workspace_bytes: ws_bytes,
    };
    ok(dsa_indexer_prefill(cplan.0, &cargs, null(), raw(s)));
    s.synchronize().unwrap();
    compare(s, what, &rust, &out, plan.regions().topk);
    if tokens >= 3 {
        let idx = down(s, &out.i32[0]);
        assert!(idx[..c.k].iter().all(|&i| i == -1), "{what}: empty range");
        assert!(idx.iter().any(|&i| i >= 0), "{what}: something is selected");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn c_prefill_equals_the_rust_api_bit_for_bit() {
    let c = IndexerConfig::default();
    compare_prefill("prefill 37+99", c, 37, 99, false, 21);
    compare_prefill("prefill 0+300 offsets", c, 0, 300, true, 22);
    compare_prefill("prefill one token", c, 500, 1, false, 23);
    compare_prefill("prefill no tokens", c, 5, 0, false, 24);
    let small = IndexerConfig {
        input: DType::F32,
        heads: 16,
        dim: 64,
        rope_dim: 16,
        scale_format: ScaleFormat::Pow2,
        k: 19,
        ..IndexerConfig::default()
    };
    compare_prefill("prefill d64", small, 5, 989, false, 25);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn c_decode_graph_replay_equals_eager_c_calls() {
    let g = gpu();
    // SAFETY: graph capture needs stream-ordered work only; the test synchronises explicitly.
    unsafe { g.ctx.disable_event_tracking() };
    let s = &g.s;
    let c = IndexerConfig::default();
    let (batch, stride) = (5usize, 3000usize);
    let p = c.page_size;
    let bt_stride = stride.div_ceil(p);
    let pages = batch * bt_stride + 2;
    let mut r = Rng(77);
    let lens0 = vec![stride as i32; batch];
    let (table0, locs0) = table_and_locs(&mut r, p, pages, &lens0, bt_stride);
    let pos0: Vec<i64> = vec![0; batch];
    let mut tok = Tokens::random(&g, &mut r, &c, &pos0, &locs0, stride);
    let mut cache = up(s, &random_cache(&mut r, &c, pages));
    let mut table = up(s, &table0);
    let mut lens = up(s, &lens0);
    let logits = zeros::<f32>(s, batch * stride);
    let indices = zeros::<i32>(s, batch * c.k);
    let shape = DecodeShape {
        batch,
        stride,
        bt_stride,
        max_positions: stride,
        cache_pages: pages,
    };
    let plan = c_plan(dsa_indexer_decode_plan_create, &c, &c_decode_shape(&shape));
    let ws = zeros::<u8>(s, info(&plan).workspace_bytes);
    let args = DsaIndexerDecodeArgs {
        tokens: tok.c(s, &cache),
        block_table: dptr(&table, s) as *const _,
        context_lens: dptr(&lens, s) as *const _,
        logits: dptr(&logits, s) as *mut _,
        indices: dptr(&indices, s) as *mut _,
        workspace: dptr(&ws, s) as *mut _,
        workspace_bytes: info(&plan).workspace_bytes,
    };
    ok(dsa_indexer_plan_prepare(plan.0, raw(s)));
    s.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .unwrap();
    ok(dsa_indexer_decode(plan.0, &args, null(), raw(s)));
    let graph = s
        .end_capture(sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH)
        .unwrap()
        .expect("a captured graph");
    for round in 0..3 {
        let lens_h: Vec<i32> = (0..batch).map(|_| r.below(stride + 1) as i32).collect();
        let (table_h, locs_h) = table_and_locs(&mut r, p, pages, &lens_h, bt_stride);
        let pos_h: Vec<i64> = lens_h.iter().map(|&l| (l as i64 - 1).max(0)).collect();
        let fresh = Tokens::random(&g, &mut r, &c, &pos_h, &locs_h, stride);
        s.memcpy_dtod(&fresh.q, &mut tok.q).unwrap();
        s.memcpy_dtod(&fresh.k, &mut tok.k).unwrap();
        s.memcpy_dtod(&fresh.weights, &mut tok.weights).unwrap();
        s.memcpy_dtod(&fresh.positions, &mut tok.positions).unwrap();
        s.memcpy_dtod(&fresh.loc, &mut tok.loc).unwrap();
        s.memcpy_htod(&table_h, &mut table).unwrap();
        s.memcpy_htod(&lens_h, &mut lens).unwrap();
        let cache_h = random_cache(&mut r, &c, pages);
        let mut step = |replay: bool| {
            s.memcpy_htod(&cache_h, &mut cache).unwrap();
            if replay {
                graph.launch().unwrap();
            } else {
                ok(dsa_indexer_decode(plan.0, &args, null(), raw(s)));
            }
            (down(s, &logits), down(s, &indices), down(s, &cache))
        };
        let replayed = step(true);
        let eager = step(false);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&replayed.0), bits(&eager.0), "round {round}: logits");
        assert_eq!(replayed.1, eager.1, "round {round}: indices");
        assert!(replayed.2 == eager.2, "round {round}: cache");
        assert!(replayed.1.iter().any(|&i| i >= 0), "round {round}");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn c_fingerprint_equals_the_cpu_reference() {
    let g = gpu();
    let s = &g.s;
    let mut r = Rng(5);
    for (rows, k) in [(1usize, 1usize), (19, 2048), (99, 7), (989, 64)] {
        let idx: Vec<i32> = (0..rows * k)
            .map(|_| r.below(200_000) as i32 - 1000)
            .collect();
        let idx_d = up(s, &idx);
        let layout = WorkspaceLayout::verify(rows);
        let ws = zeros::<u8>(s, layout.total_bytes);
        ok(dsa_collective_fingerprint(
            dptr(&idx_d, s) as *const _,
            rows as i64,
            k as i64,
            dptr(&ws, s) as *mut _,
            layout.total_bytes,
            raw(s),
        ));
        let got: Vec<u64> = down(s, &ws)[..16 * rows]
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let want = fingerprint::packed(&fingerprint::fingerprint_rows(&idx, k));
        assert_eq!(got, want, "{rows} x {k}");
    }
}
