//! # dsa-hadamard
//!
//! Fast Walsh-Hadamard transform along the last dimension, with an optional fused FP8 e4m3
//! quantization: the rotation the DeepSeek Sparse Attention indexer applies to its query and
//! key before quantizing them.
//!
//! ## Contract
//! - **Shape.** `rows` rows of `n` elements, `n` a power of two in `2..=32768`. Row `r` of the
//!   input starts at element `r * in_stride`, of the output at `r * out_stride`
//!   (`stride >= n`, in elements; the default is `n`, contiguous). `rows` may be zero (nothing
//!   is launched) and at most `i32::MAX`.
//! - **Math.** `y = x @ H_n * scale` with `H_n` in Sylvester (natural) order, as
//!   `scipy.linalg.hadamard(n)`: `H[i][j] = (-1)^popcount(i & j)`. The default scale is
//!   `1/sqrt(n)` (rounded to f32), which makes the transform orthonormal and its own inverse.
//!   Inputs are widened to f32, butterflies run in f32, the result is multiplied by `scale`
//!   in f32 and rounded (nearest even) to the output type.
//! - **Types.** Input bf16, f16 or f32; output bf16, f16, f32 ([`Output::Float`]) or FP8
//!   ([`Output::Fp8`]).
//! - **FP8.** Per group of `g` elements (`g = n` for [`ScaleGroup::Row`], `128` for
//!   [`ScaleGroup::Block128`], which needs `n >= 128`), from the f32 values `v` of the
//!   transform: `s = max(amax(|v|), 1e-4) / 448` (f32 division), rounded up to a power of two
//!   when `pow2_scales`; then each byte is `e4m3(v * (1/s))` (`1/s` an f32 division; e4m3 round
//!   to nearest even, saturating to ±448, NaN stays NaN: [`cpu::fp8e4m3_encode`]). Dequantize
//!   with `byte_value * s`. Scales are f32, row-major `[rows, n / g]`, contiguous; FP8 rows use
//!   `out_stride` in bytes (= elements).
//! - **In place.** Input and output may be the same buffer when the pointers and strides are
//!   equal and both element types have the same size; any other overlap is an error.
//! - **Alignment.** Pointers are aligned to, and strides are multiples of, one vector:
//!   `V = min(16 / sizeof(input), n)` elements per thread chunk, so the input needs
//!   `V * sizeof(input)` bytes, the output `min(16, V * sizeof(output))`. Contiguous tensors
//!   from any allocator satisfy this.
//! - **Launch.** No allocation, no host synchronization; the launch configuration depends on
//!   host-known sizes and, for rows longer than 1024 elements, on device facts the host reads
//!   once per context ([`Hadamard::residency`]: SM count, opt-in shared memory, occupancy;
//!   those rows run on persistent blocks that prefetch their next row). A launch can be
//!   captured in a CUDA graph (call [`Hadamard::prepare`] first so the compile and queries do
//!   not happen during capture).
//!
//! ## Use (bench/CLI friendly: raw device pointers and an explicit stream)
//! ```no_run
//! use dsa_hadamard::{DType, Hadamard, HadamardConfig, Output, ScaleGroup};
//! # fn demo(stream: &std::sync::Arc<cudarc::driver::CudaStream>, x: u64, y: u64, s: u64)
//! # -> dsa_hadamard::Result<()> {
//! // 1. Plan on the host (validates shapes, picks the kernel); reusable for any pointers.
//! let plan = Hadamard::plan(HadamardConfig::new(128, 1 << 20, DType::Bf16, Output::Float(DType::Bf16)))?;
//! // 2. Launch on raw device pointers (checked for null, alignment and overlap).
//! // SAFETY: x holds 2^20 rows of 128 bf16 and y the same, on the stream's device.
//! unsafe { plan.launch_raw(stream, x, y, 0)? };
//! // 3. Fused FP8 with one scale per 128 elements, rounded up to powers of two.
//! let fp8 = HadamardConfig::new(128, 1 << 20, DType::Bf16, Output::Fp8 { group: ScaleGroup::Block128 })
//!     .with_pow2_scales(true);
//! // SAFETY: y holds 2^20 * 128 bytes and s 2^20 floats.
//! unsafe { Hadamard::plan(fp8)?.launch_raw(stream, x, y, s)? };
//! # Ok(()) }
//! ```
//! Typed cudarc buffers go through [`Hadamard::run`], [`Hadamard::run_in_place`] and
//! [`Hadamard::run_fp8`], which also check the buffers' lengths and element types.

pub mod cpu;
pub mod cuda;
pub mod error;
pub mod variant;

pub use cuda::{Element, Hadamard, HadamardConfig, Residency};
pub use dsa_jit_cache::DType;
pub use error::{HadamardError, Result};
pub use variant::{HadamardVariant, all_specs};

use std::fmt;

/// Which elements share one FP8 scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleGroup {
    /// One scale per row.
    Row,
    /// One scale per 128 consecutive elements of a row.
    Block128,
}

impl fmt::Display for ScaleGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScaleGroup::Row => "row",
            ScaleGroup::Block128 => "block128",
        })
    }
}

/// What the transform writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// The transformed values in a float type.
    Float(DType),
    /// FP8 e4m3 bytes plus one f32 scale per group.
    Fp8 {
        /// Elements per scale.
        group: ScaleGroup,
    },
}

impl Output {
    /// Size of one output element in bytes.
    pub fn size(self) -> usize {
        match self {
            Output::Float(d) => d.size(),
            Output::Fp8 { .. } => 1,
        }
    }
}
