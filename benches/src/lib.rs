//! # dsa-benches
//!
//! GPU workloads of every op, timed with CUDA events: shared by the `dsa` CLI (`dsa bench`,
//! `dsa tune`) and the criterion benches in `benches/` (`cargo bench -p dsa-benches`).
//!
//! 1. [`Gpu::open`] finds device 0, or says why there is none ([`Error::NoGpu`]).
//! 2. A [`Workload`] owns its device buffers: random inputs, rotated across enough copies that
//!    the working set exceeds L2 ([`gpu::copies_for`]), outputs and workspace. `launch(i)`
//!    enqueues run `i`; `bytes()` is what one run must move at least (inputs read once,
//!    outputs written once), the yardstick of the floor.
//! 3. [`gpu::time_us`] takes the median GPU time of many runs
//!    ([`dsa_jit_cache::median_gpu_us`]); [`GpuTime`] is the same clock as a criterion
//!    [`criterion::measurement::Measurement`].
//! 4. [`shapes`] lists the shapes of the op issues, used by the CLI's defaults and the benches.

pub mod error;
pub mod gpu;
pub mod measurement;
pub mod shapes;
pub mod workload;

pub use error::{Error, Result};
pub use gpu::Gpu;
pub use measurement::{GpuTime, bench_workload, main_with};
pub use workload::Workload;
