//! Small runtime pieces every kernel crate shares: device facts for planning, raw device
//! pointers for launches and their host checks, and GPU timing with CUDA events.
//!
//! Launchers take raw device pointers (`u64`) and an explicit stream, so the Rust API, the C ABI
//! and CUDA-graph capture all go through the same code path; the typed slice wrappers only
//! extract pointers.

use crate::cache::KernelCache;
use crate::error::{JitError, Result};
use crate::spec::{KernelSpec, KernelVariant};
use cudarc::driver::{CudaContext, CudaStream, DevicePtr, LaunchConfig, PushKernelArg, sys};
use once_cell::sync::Lazy;
use std::fmt;
use std::sync::Arc;

/// Facts about a device that launch planning needs, read once on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceInfo {
    /// Streaming multiprocessors.
    pub sm_count: u32,
    /// Compute capability (major, minor).
    pub compute_capability: (u32, u32),
    /// Shared memory a block may opt into, bytes.
    pub max_smem_per_block: u32,
    /// L2 cache size, bytes.
    pub l2_bytes: u32,
    /// [`name_hash`] of the device's name: identifies the GPU model in the tuning database.
    pub name_hash: u64,
}

/// FNV-1a hash of a device name (stable across runs and builds), as in [`DeviceInfo::name_hash`].
pub const fn name_hash(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

impl DeviceInfo {
    /// Query `ctx`'s device.
    pub fn of(ctx: &Arc<CudaContext>) -> Result<Self> {
        use sys::CUdevice_attribute::*;
        let attr = |a| {
            ctx.attribute(a)
                .map(|v| v as u32)
                .map_err(|e| JitError::driver("reading a device attribute", e))
        };
        Ok(DeviceInfo {
            sm_count: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
            compute_capability: (
                attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
                attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
            ),
            max_smem_per_block: attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?,
            l2_bytes: attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?,
            name_hash: name_hash(
                &ctx.name()
                    .map_err(|e| JitError::driver("reading the device name", e))?,
            ),
        })
    }

    /// An H100 SXM's figures, for host-side planning tests.
    pub const H100: DeviceInfo = DeviceInfo {
        sm_count: 132,
        compute_capability: (9, 0),
        max_smem_per_block: 227 * 1024,
        l2_bytes: 50 * 1024 * 1024,
        name_hash: name_hash("NVIDIA H100 80GB HBM3"),
    };
}

/// The raw device address of a cudarc slice or view, for a launcher's argument list.
///
/// Event tracking is not used: our launchers order work by the stream alone, which is what
/// CUDA-graph capture and foreign streams need. Contexts used with graphs should have event
/// tracking disabled (`CudaContext::disable_event_tracking`).
pub fn dptr<T>(slice: &impl DevicePtr<T>, stream: &CudaStream) -> u64 {
    let (ptr, _sync) = slice.device_ptr(stream);
    ptr
}

/// Elements a strided `[rows, stride]` buffer must hold when each row uses its first `row_len`:
/// `(rows - 1) * stride + row_len`, 0 for no rows.
pub fn strided_len(rows: usize, stride: usize, row_len: usize) -> usize {
    if rows == 0 {
        0
    } else {
        (rows - 1) * stride + row_len
    }
}

/// A raw device pointer argument that fails a host check before a launch. Each kernel crate
/// converts it into its own error type (with `From`), keeping its own variants and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PtrError {
    /// A required pointer is null.
    #[error("{name} pointer is null")]
    Null {
        /// The argument.
        name: &'static str,
    },
    /// A pointer is not a multiple of the alignment its accesses need.
    #[error("{name} pointer {addr:#x} is not aligned to {align} bytes")]
    Misaligned {
        /// The argument.
        name: &'static str,
        /// Its address.
        addr: u64,
        /// The alignment it needs, bytes.
        align: u64,
    },
}

/// Check a required device pointer: not null, then aligned to `align` bytes.
pub fn check_device_ptr(name: &'static str, addr: u64, align: u64) -> Result<(), PtrError> {
    if addr == 0 {
        return Err(PtrError::Null { name });
    }
    check_aligned(name, addr, align)
}

/// Check a device pointer's alignment only (null, an absent optional argument, passes).
pub fn check_aligned(name: &'static str, addr: u64, align: u64) -> Result<(), PtrError> {
    if addr % align != 0 {
        return Err(PtrError::Misaligned { name, addr, align });
    }
    Ok(())
}

/// SM clock cycles of the spin queued before each timed run of [`median_gpu_us`] (about 25 µs
/// at 2 GHz): the GPU is still busy with it while the host enqueues the start event, the run
/// and the end event, so the interval is the run's GPU time and not the host's launch cost,
/// which a short kernel's events would otherwise take in whenever the host enqueues slower than
/// the GPU drains. A clock loop rather than a memset (what triton's `do_bench` queues): a
/// memset larger than L2 leaves dirty lines whose write-back steals bandwidth from the run
/// (H200: a 32 MB read took 15.3 µs after a 64 MiB memset, 11.9 after the spin).
pub const QUEUE_PAD_CYCLES: i64 = 50_000;

/// The spin kernel of the queue pad (one variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct QueuePad;

impl fmt::Display for QueuePad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue_pad")
    }
}

impl KernelVariant for QueuePad {
    fn spec(&self) -> KernelSpec {
        KernelSpec::new(
            "timing",
            self.to_string(),
            include_str!("kernels/queue_pad.cu"),
            Vec::new(),
            &["SPIN"],
        )
    }
}

fn timing_specs() -> Vec<KernelSpec> {
    vec![QueuePad.spec()]
}

crate::register_family!("timing", timing_specs);

static QUEUE_PAD: Lazy<KernelCache<QueuePad>> = Lazy::new(|| KernelCache::new(|_| 0));

/// Queue [`QUEUE_PAD_CYCLES`] of spinning on `stream`.
fn queue_pad(stream: &Arc<CudaStream>) -> Result<()> {
    let kernel = QUEUE_PAD.get(stream.context(), &QueuePad)?;
    let cycles = QUEUE_PAD_CYCLES;
    let mut launch = stream.launch_builder(kernel.function("SPIN"));
    launch.arg(&cycles);
    // SAFETY: the kernel takes one i64 by value and touches no memory.
    unsafe { launch.launch(LaunchConfig::for_num_elems(1)) }
        .map(|_| ())
        .map_err(|e| JitError::driver("queueing the timing pad", e))
}

/// Median GPU time in microseconds of `iters` runs of `f` on `stream`, after `warmup` runs,
/// each run bracketed by its own pair of CUDA events after a [`QUEUE_PAD_CYCLES`] spin.
/// `f(i)` gets the run index so callers can rotate inputs (fresh data per run, larger than L2).
pub fn median_gpu_us(
    stream: &Arc<CudaStream>,
    warmup: usize,
    iters: usize,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<f64> {
    for i in 0..warmup {
        f(i)?;
    }
    let ctx = stream.context();
    let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
    let drv = |what| move |e| JitError::driver(what, e);
    let ev = |_| ctx.new_event(flags).map_err(drv("creating a timing event"));
    let starts = (0..iters).map(ev).collect::<Result<Vec<_>>>()?;
    let ends = (0..iters).map(ev).collect::<Result<Vec<_>>>()?;
    for i in 0..iters {
        queue_pad(stream)?;
        starts[i]
            .record(stream)
            .map_err(drv("recording an event"))?;
        f(warmup + i)?;
        ends[i].record(stream).map_err(drv("recording an event"))?;
    }
    let mut times = starts
        .iter()
        .zip(&ends)
        .map(|(s, e)| {
            s.elapsed_ms(e)
                .map(|ms| ms as f64 * 1e3)
                .map_err(drv("reading an event time"))
        })
        .collect::<Result<Vec<f64>>>()?;
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// Device-to-device copy bandwidth in GB/s (bytes read + bytes written), the floor's yardstick.
pub fn copy_bandwidth_gbs(stream: &Arc<CudaStream>, bytes: usize) -> Result<f64> {
    let drv = |e| JitError::driver("measuring copy bandwidth", e);
    let n = bytes / 4;
    let src = stream.alloc_zeros::<u32>(n).map_err(drv)?;
    let mut dst = stream.alloc_zeros::<u32>(n).map_err(drv)?;
    let us = median_gpu_us(stream, 3, 20, |_| {
        stream.memcpy_dtod(&src, &mut dst).map_err(drv)
    })?;
    Ok(2.0 * (n * 4) as f64 / (us * 1e3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_checks_report_null_before_alignment() {
        assert_eq!(check_device_ptr("x", 0x100, 16), Ok(()));
        assert_eq!(
            check_device_ptr("x", 0, 16),
            Err(PtrError::Null { name: "x" })
        );
        let misaligned = PtrError::Misaligned {
            name: "y",
            addr: 0x102,
            align: 4,
        };
        assert_eq!(check_device_ptr("y", 0x102, 4), Err(misaligned));
        assert_eq!(check_aligned("y", 0x102, 4), Err(misaligned));
        assert_eq!(check_aligned("gamma", 0, 16), Ok(()));
    }

    #[test]
    fn strided_len_ends_at_the_last_row() {
        assert_eq!(strided_len(0, 160, 128), 0);
        assert_eq!(strided_len(1, 160, 128), 128);
        assert_eq!(strided_len(3, 160, 128), 448);
    }
}
