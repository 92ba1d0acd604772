//! # dsa-topk: deterministic top-k over score rows
//!
//! The DeepSeek Sparse Attention indexer keeps, for every query row, the `k` (2048) keys with
//! the largest scores. This crate does that on the GPU with an output defined exactly, so every
//! tensor-parallel rank, run, batch composition and CUDA-graph replay gets bit-identical indices.
//!
//! ## Contract
//! - **Inputs.** `scores[rows, stride]` (f32, bf16 or f16), `lengths[rows]` (i32), optional
//!   `row_starts[rows]` (i32), all on the device. Row `i`'s candidates are positions
//!   `j in 0..lengths[i]` with score `scores[i * stride + row_starts[i] + j]`. On the device,
//!   `row_starts[i]` is clamped to `[0, stride]` and `lengths[i]` to `[0, stride - start]`,
//!   so no value of them reads out of bounds.
//! - **Order.** Larger score first; `-0.0 == +0.0`; NaN (every NaN) ranks above `+inf`, as in
//!   `torch.topk`; equal scores are ordered by index, smaller first ([`TieBreak::Small`], the
//!   default) or larger first ([`TieBreak::Large`]). This is a total order, so it defines one
//!   top-k set per row.
//! - **Output.** `indices[rows, k]` (i32): the set, in ascending index ([`OutputOrder::Index`],
//!   the default) or in the total order ([`OutputOrder::Sorted`]). A row with `lengths[i] < k`
//!   holds all its candidates, then `-1`.
//! - **Transforms**, fused into the output write: [`Transform::Ragged`]
//!   `out = idx + offsets[i]`; [`Transform::Paged`]
//!   `out = page_table[req(i)][idx / P] * P + idx % P` with `req(i)` from a per-row map or
//!   `cu_seqlens_q`. `-1` stays `-1`; a request outside the table, a page beyond its valid
//!   columns, or a negative table entry gives `-1`.
//! - **Graph-safe.** [`TopkPlan`] fixes the launch from host-known sizes (rows, stride, k,
//!   dtype, SM count): no device data is read on the host, nothing is allocated and nothing
//!   synchronises inside [`TopkPlan::launch`]. Workspace size and output shape are known from
//!   the plan before any launch. Every plan (any [`Tuning`]) gives the same bits.
//! - `k` in `1..=4096`; rows and stride up to `i32::MAX`.
//!
//! [`cpu::topk`] implements this contract literally and is the test oracle.
//!
//! ## Kernel
//! One launch reads each row once, in one of two compiled forms the plan picks from host sizes:
//! - **resident**: a CTA's segment (at most 16 scores a thread, or 32 with 256 or 512 threads:
//!   [`Tuning::keys`]) is loaded into registers; one
//!   radix digit over the registers, the rest over the chosen bin's keys copied to shared
//!   memory, then the keys above the cut are written in index order with one compare a key
//!   and one block scan (a tie across the cut, or sorted output, takes an exact ordered pass);
//! - **streaming**: a CTA streams its segment through a running floor into a shared-memory
//!   candidate buffer (in index order). The floor starts from the first chunk's expected
//!   share of the top k (the segment is streamed again if fewer than k scores pass it), and
//!   exact radix selects over the buffer cut it back to the top k, raising the floor.
//!
//! On sm_90+ a long row is split over a thread-block cluster whose CTAs share floors and the
//! final select through distributed shared memory. No workspace is needed
//! ([`TopkPlan::workspace_bytes`] is 0; the argument stays so callers size buffers from the
//! plan). `kernels/topk.cu` has the details.
//!
//! ## Example
//! ```no_run
//! use dsa_topk::{TopkArgs, TopkConfig, TopkPlan, Tuning};
//! use dsa_jit_cache::{DeviceInfo, dptr};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ctx = cudarc::driver::CudaContext::new(0)?;
//! let stream = ctx.default_stream();
//! let (rows, stride) = (4, 65536);
//! let scores = stream.clone_htod(&vec![0.5f32; rows * stride])?;
//! let lengths = stream.clone_htod(&vec![stride as i32; rows])?;
//! let plan = TopkPlan::new(TopkConfig::new(2048), rows, stride, &DeviceInfo::of(&ctx)?, Tuning::default())?;
//! let out = stream.alloc_zeros::<i32>(rows * 2048)?;
//! let ws = stream.alloc_zeros::<u8>(plan.workspace_bytes().max(16))?;
//! let args = TopkArgs {
//!     scores: dptr(&scores, &stream),
//!     lengths: dptr(&lengths, &stream),
//!     out: dptr(&out, &stream),
//!     workspace: dptr(&ws, &stream),
//!     workspace_bytes: plan.workspace_bytes(),
//!     ..TopkArgs::default()
//! };
//! // SAFETY: every pointer is a live allocation of the documented shape on this context.
//! unsafe { plan.launch(&stream, &args)? };
//! # Ok(()) }
//! ```

pub mod config;
pub mod cpu;
mod error;
mod launch;
mod plan;
pub mod variant;

pub use config::{MAX_K, OutputOrder, RequestMap, ScoreDtype, TieBreak, TopkConfig, Transform};
pub use error::{Result, TopkError};
pub use launch::{TopkArgs, TransformArgs};
pub use plan::{TopkPlan, Tuning};
pub use variant::TopkVariant;
