//! # dsa-layernorm
//!
//! LayerNorm and RMSNorm over the last dimension, bandwidth-bound: each element is read once
//! and written once. The DSA indexer normalizes its key (dim 128) with it.
//!
//! ## Contract
//! - **Shape.** `rows` rows of `dim` elements, `dim` in `1..=16384`; row `r` of `x` starts at
//!   element `r * x_stride`, of `y` at `r * y_stride` (`stride >= dim`; default `dim`).
//!   `rows` may be zero (nothing is launched) and at most `i32::MAX`.
//! - **Math.** [`Norm::LayerNorm`]: `y = (x - mean) / sqrt(var + eps) * gamma + beta` with
//!   `mean` and the population `var` (divide by `dim`) of the row. [`Norm::RmsNorm`]:
//!   `y = x / sqrt(mean(x^2) + eps) * gamma + beta`. `gamma` and `beta` are optional
//!   (pass a null pointer, 0, to leave either out), each a `[dim]` vector of the input dtype.
//! - **Precision.** Inputs widen to f32; statistics are f32, two passes over registers shifted
//!   by the row's first element, so large means (1e4 with std 1) keep full precision;
//!   `1/sqrt` is `rsqrtf`. The result rounds (nearest even) to the output dtype.
//! - **Types.** Input (and gamma/beta) bf16, f16 or f32; output bf16, f16 or f32.
//! - **In place.** `x` and `y` may be the same buffer when the pointers and strides are equal
//!   and both dtypes have the same size; any other overlap is an error.
//! - **Alignment.** Pointers need their element alignment. When `dim` and both strides are
//!   multiples of one 16-byte vector of the input dtype and `x`, `gamma`, `beta` are 16-byte
//!   aligned (and `y` to `min(16, vector * sizeof(output))`), the vectorized kernel runs;
//!   otherwise a scalar kernel (same results up to f32 summation order).
//! - **Launch.** Rows of at most 1024 elements (bf16/f16 vectors; 512 for f32, 128 scalar) use
//!   a power-of-two group of lanes of one warp per row (16 lanes and 2 rows per warp for dim
//!   128 bf16); longer rows a CTA per row (224 threads for dim 7168 bf16). No allocation, no
//!   host synchronization; the configuration depends on host-known sizes only (CUDA-graph
//!   capturable after [`LayerNorm::prepare`]).
//!
//! ## Use (bench/CLI friendly: raw device pointers and an explicit stream)
//! ```no_run
//! use dsa_layernorm::{DType, LayerNorm, LayerNormConfig, Norm};
//! # fn demo(stream: &std::sync::Arc<cudarc::driver::CudaStream>, x: u64, y: u64, g: u64, b: u64)
//! # -> dsa_layernorm::Result<()> {
//! // 1. Plan on the host (validates the shape); reusable for any pointers.
//! let plan = LayerNorm::plan(LayerNormConfig::new(128, 1 << 16, DType::Bf16, DType::Bf16))?;
//! // 2. Launch on raw device pointers (null gamma/beta = absent).
//! // SAFETY: x and y hold 2^16 rows of 128 bf16, g and b 128 bf16, on the stream's device.
//! unsafe { plan.launch_raw(stream, x, y, g, b)? };
//! // 3. RMSNorm with gamma only, eps 1e-6.
//! let rms = LayerNormConfig::new(7168, 4096, DType::Bf16, DType::Bf16).with_norm(Norm::RmsNorm).with_eps(1e-6);
//! // SAFETY: as above with 4096 rows of 7168.
//! unsafe { LayerNorm::plan(rms)?.launch_raw(stream, x, y, g, 0)? };
//! # Ok(()) }
//! ```
//! Typed cudarc buffers go through [`LayerNorm::run`] and [`LayerNorm::run_in_place`], which
//! also check lengths and element types.

pub mod cpu;
pub mod cuda;
pub mod error;
pub mod variant;

pub use cuda::{Element, LayerNorm, LayerNormConfig};
pub use dsa_jit_cache::DType;
pub use error::{LayerNormError, Result};
pub use variant::{LayerNormVariant, Team, all_specs};

/// Largest supported row length.
pub const MAX_DIM: usize = 16384;

/// Which normalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Norm {
    /// Subtract the mean, divide by the standard deviation.
    LayerNorm,
    /// Divide by the root mean square (no centring).
    RmsNorm,
}
