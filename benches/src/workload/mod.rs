//! One op on one shape, with its device buffers, ready to launch repeatedly.

mod collective;
mod hadamard;
mod layernorm;
mod topk;

pub use collective::VerifyKernelsWorkload;
pub use hadamard::HadamardWorkload;
pub use layernorm::LayerNormWorkload;
pub use topk::{TopkWorkload, paged};

use crate::error::Result;
use crate::gpu::{Gpu, time_us};

/// Runs discarded before timing.
pub const WARMUP: usize = 5;
/// Runs timed (the median is reported).
pub const ITERS: usize = 50;

/// An op on one shape, owning its device buffers.
pub trait Workload {
    /// The shape, e.g. `64x131072`.
    fn shape(&self) -> String;
    /// The launch choice (variant, plan parameters).
    fn detail(&self) -> String;
    /// Bytes one run must move at least: inputs read once, outputs written once.
    fn bytes(&self) -> usize;
    /// Enqueue run `i` on the GPU's stream (inputs rotate with `i`).
    fn launch(&self, gpu: &Gpu, i: usize) -> Result<()>;
}

/// Median GPU time of `w` in microseconds ([`WARMUP`], [`ITERS`]).
pub fn median_us(gpu: &Gpu, w: &dyn Workload) -> Result<f64> {
    time_us(&gpu.stream, WARMUP, ITERS, |i| w.launch(gpu, i))
}
