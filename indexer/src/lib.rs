//! # dsa-indexer: the DeepSeek Sparse Attention lightning indexer
//!
//! Per layer and step, the indexer picks for every query token the `k` (2048) cached keys
//! it should attend to. This crate runs the whole indexer on the caller's stream with
//! caller-owned buffers: two fused prologue kernels, one FP8 tensor-core scores kernel and the
//! deterministic top-k of [`dsa_topk`], then an optional cross-rank consistency step
//! ([`collective`]). [`cpu`] implements the same contract in f64 and is the test oracle.
//!
//! ## The math (every size a parameter; defaults of DeepSeek-V3.2: `H = 64`, `D = 128`,
//! `R = 64`, `P = 64`, `k = 2048`)
//! Inputs per token `t`: index query `q[t]: [H, D]`, index key `k[t]: [D]`, head weights
//! `w[t]: [H]` (the engine's projections), position `pos[t]`, and a RoPE table
//! `cos_sin[pos] = [cos θ_0 .. cos θ_{R/2-1}, sin θ_0 .. sin θ_{R/2-1}]` (sglang's
//! `cos_sin_cache` layout). `q`, `k` and the LayerNorm parameters are bf16, f16 or f32
//! ([`IndexerConfig::input`]); everything is computed in f32 on the device.
//!
//! 1. **Key path** (one kernel, [`key_path`]):
//!    `x = LayerNorm(k[t]) = (k - mean) / sqrt(var + eps) * γ + β` (population variance);
//!    RoPE on dims `0..R`: pairs `(j, j + R/2)` ([`RopeStyle::Neox`]) or `(2j, 2j+1)`
//!    ([`RopeStyle::Interleaved`]) become `(a·cos θ_j − b·sin θ_j, b·cos θ_j + a·sin θ_j)`;
//!    `y = x @ H_D · (1/sqrt(D) as f32)` (Sylvester-order Hadamard, as `scipy.linalg.hadamard`);
//!    FP8: `s = max(amax|y|, 1e-4) / 448` in f32 (rounded up to a power of two for
//!    [`ScaleFormat::Pow2`], DeepSeek's `ue8m0`), `k8 = e4m3(y · (1/s))` with round to nearest
//!    even and saturation to ±448 (NaN stays NaN); one scale per key (`D <= 128`, i.e. one per
//!    128-value block). `(k8, s)` is stored at cache slot `out_cache_loc[t]` (a negative slot or
//!    one past the cache is skipped: padding tokens), and for prefill also into the contiguous
//!    key buffer.
//! 2. **Query path** (one kernel, [`query_path`]): the same RoPE, Hadamard and FP8 per
//!    `(t, h)` row: `q8[t,h]`, scale `s_q[t,h]`; the folded weight is
//!    `w'[t,h] = (w[t,h] · s_q[t,h]) · c` in f32 with `c = 1/sqrt(H·D)` rounded to f32, i.e.
//!    `w · q_scale · H^-0.5 · D^-0.5` (sglang's `weights * n_heads^-0.5 * q_scale * softmax_scale`).
//! 3. **Scores** ([`scores`]): `logit[t,s] = Σ_h w'[t,h] · relu(dot(q8[t,h], k8[s]) · s_k[s])`
//!    with the e4m3 values multiplied exactly and accumulated in f32 by `mma.sync
//!    m16n8k32.e4m3` (sm_89+; a shuffle-based scalar emulation on sm_80), `relu(NaN) = 0`.
//!    On sm_90a both kernels use `wgmma m64nNk32.e4m3` instead (keys as M; decode: the H heads
//!    as N; prefill: the heads of 2, 4 or 8 consecutive tokens, whose block shares each key
//!    tile): Hopper's FP8 tensor-core sums keep
//!    fewer bits than f32 (as in DeepGEMM's `fp8_paged_mqa_logits`), so a logit there is exact
//!    to about `1e-4` of its absolute terms `Σ_h |w'| · |s_k| · Σ_d |q8 · k8|`, not of its value
//!    (a logit that cancels down to a small number carries that absolute error).
//!    - prefill (ragged): row `t` covers keys `s ∈ [ks[t], ke[t])` of a contiguous key buffer
//!      `[S, D]` + `[S]` (both clamped to `[0, S]`); every other column of the `[T, stride]`
//!      logits is `-inf` (DeepGEMM's `fp8_mqa_logits` with clean logits).
//!    - decode (paged): row `b` covers positions `s < context_lens[b]` (clamped to
//!      `min(stride, bt_cols · P)`), key `s` at slot `block_table[b][s / P] · P + s % P`; a page
//!      id outside the cache scores `-inf`, as does every column past the context
//!      (`fp8_paged_mqa_logits`).
//! 4. **Top-k** with [`dsa_topk`] (`k`, ties to the smaller index, ascending-index output):
//!    prefill over `[ks, ke)` with the fused ragged transform (`index + offset`, default offset
//!    the clamped `ks`: rows of the key buffer); decode over `context_lens` with the fused paged
//!    transform (cache slots `page · P + s % P`, -1 pads when the context is shorter than `k`).
//!
//! ## Paged index-key cache ([`CacheLayout`])
//! `pages × P · (D + 4)` bytes; page `p` holds `P` keys of `D` e4m3 bytes (slot-major), then
//! `P` f32 scales. This is sglang's `index_k_with_scale_buffer` (uint8
//! `[num_pages, P · (D + D/128 · 4)]`, `quant_block_size = 128`), the buffer DeepGEMM's
//! `fp8_paged_mqa_logits` reads; the engine's buffer is used as is, no repacking.
//!
//! ## Use
//! 1. [`Indexer::new`] validates an [`IndexerConfig`]; [`Indexer::plan_prefill`] /
//!    [`Indexer::plan_decode`] fix every launch from host-known sizes ([`PrefillShape`],
//!    [`DecodeShape`]) and report [`PrefillPlan::workspace_bytes`], the logits and indices
//!    shapes and the [`WorkspaceRegions`] (where `q8` and `w'` live).
//! 2. [`PrefillPlan::prefill`] / [`DecodePlan::decode`] launch on the caller's stream with raw
//!    device pointers ([`PrefillArgs`], [`DecodeArgs`], [`TokenArgs`]): no allocation, no host
//!    synchronisation, no host reads of device data. Every host-visible mistake (nulls,
//!    misalignment, a short workspace, a missing communicator) is an [`IndexerError`] before any
//!    launch. Each stage is also callable alone (`key_path`, `query_path`, `scores`, `topk`).
//! 3. The decode step is CUDA-graph capturable (call [`DecodePlan::prepare`] first) and a
//!    replay with new data in the same buffers equals the eager step bit for bit.
//! 4. Consistency: [`IndexerConfig::policy`] is a [`collective::ConsistencyPolicy`]; a policy
//!    other than `None` needs a [`collective::Communicator`] and runs after top-k on the
//!    indices (its verify workspace is part of the plan's workspace).
//!
//! ```no_run
//! use dsa_indexer::{DecodeArgs, DecodeShape, Indexer, IndexerConfig, TokenArgs};
//! use dsa_jit_cache::{DeviceInfo, dptr};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ctx = cudarc::driver::CudaContext::new(0)?;
//! let stream = ctx.new_stream()?;
//! let indexer = Indexer::new(IndexerConfig::default())?;
//! let shape = DecodeShape { batch: 64, stride: 65536, bt_stride: 1024, max_positions: 65536, cache_pages: 65536 };
//! let plan = indexer.plan_decode(shape, &DeviceInfo::of(&ctx)?)?;
//! let ws = stream.alloc_zeros::<u8>(plan.workspace_bytes())?;
//! plan.prepare(&ctx)?;
//! # let (q, w, k, pos, table, loc, cache, bt, lens, logits, idx) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
//! let args = DecodeArgs {
//!     tokens: TokenArgs { q, weights: w, k, positions: pos, cos_sin: table, out_cache_loc: loc, cache, ..TokenArgs::default() },
//!     block_table: bt,
//!     context_lens: lens,
//!     logits,
//!     indices: idx,
//!     workspace: dptr(&ws, &stream),
//!     workspace_bytes: plan.workspace_bytes(),
//! };
//! // SAFETY: every pointer is a live device buffer of the shape documented on its field.
//! unsafe { plan.decode(&stream, &args, None)? };
//! # Ok(()) }
//! ```
//!
//! ## Limits
//! `D ∈ {64, 128}`; `H` a multiple of 16 with `H · D <= 8192`; `R` a multiple of `D/16`;
//! `P` a power of two `>= 4`; one query token per request in decode (no MTP `next_n > 1` yet).

pub mod collective;
pub mod config;
pub mod cpu;
mod error;
pub mod key_path;
mod launch;
pub mod layout;
mod pipeline;
pub mod plan;
pub mod query_path;
pub mod scores;
pub mod timing;
pub mod variant;

pub use config::{DType, IndexerConfig, RopeStyle, ScaleFormat};
pub use error::{IndexerError, Result};
pub use layout::CacheLayout;
pub use pipeline::{DecodeArgs, Indexer, PrefillArgs, TokenArgs};
pub use plan::{DecodePlan, DecodeShape, PrefillPlan, PrefillShape, WorkspaceRegions};
