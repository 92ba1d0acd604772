//! GPU timing of the collective layer, for the CLI and BENCHMARKS.md: the verify kernels
//! (fingerprint + reduction) and, with a communicator, the full verify and the broadcast, each
//! eager and replayed from a CUDA graph.

use super::comm::Communicator;
use super::error::{CollectiveError, Result};
use super::kernels::{launch_compare, launch_fingerprint};
use super::workspace::{IndexRows, VerifyWorkspace, WorkspaceLayout};
use cudarc::driver::{CudaStream, sys};
use std::sync::Arc;

/// The benchmark's row counts.
pub const BENCH_ROWS: [usize; 4] = [1, 8, 64, 256];
/// The benchmark's k.
pub const BENCH_K: usize = 2048;

/// What [`time_op`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimedOp {
    /// The verify kernels alone (fingerprint + compare; no collective): the verify's compute
    /// cost on one GPU.
    VerifyKernels,
    /// [`Communicator::verify`]: fingerprint, `ncclMin` all-reduce of 16 B/row, compare.
    Verify,
    /// [`Communicator::broadcast_from_rank0`] of 4·k B/row.
    Broadcast,
}

/// Median GPU times of one shape, microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// What was timed.
    pub op: TimedOp,
    /// Rows.
    pub rows: usize,
    /// Indices per row.
    pub k: usize,
    /// Median per call, launched eagerly.
    pub eager_us: f64,
    /// Median per replay of a CUDA graph holding one call.
    pub graph_us: f64,
}

fn drv(c: &'static str) -> impl Fn(cudarc::driver::DriverError) -> CollectiveError {
    move |e| CollectiveError::driver(c, e)
}

/// Median of per-run GPU times (each run between two events) after `warmup` runs. Every run
/// is enqueued before the host waits (the method of the torch peer), so a collective's time is
/// its GPU time, not the skew between the ranks' host threads.
fn median_us(
    stream: &Arc<CudaStream>,
    warmup: usize,
    iters: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let ctx = stream.context();
    let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
    let mut marks = Vec::with_capacity(iters.max(1));
    for _ in 0..iters.max(1) {
        let start = ctx.new_event(flags).map_err(drv("creating an event"))?;
        let end = ctx.new_event(flags).map_err(drv("creating an event"))?;
        start.record(stream).map_err(drv("recording an event"))?;
        f()?;
        end.record(stream).map_err(drv("recording an event"))?;
        marks.push((start, end));
    }
    let mut times = marks
        .iter()
        .map(|(start, end)| {
            start
                .elapsed_ms(end)
                .map(|ms| ms as f64 * 1e3)
                .map_err(drv("reading an event time"))
        })
        .collect::<Result<Vec<f64>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Times `op` for `rows` × `k` on `stream` (which must not be the legacy default stream: graphs
/// are captured on it). `comm` is required for [`TimedOp::Verify`] and [`TimedOp::Broadcast`]
/// and must be on the stream's device; with world size > 1 every rank must call this with the
/// same arguments at the same time. Buffers are allocated here, before timing and capture.
pub fn time_op(
    op: TimedOp,
    stream: &Arc<CudaStream>,
    comm: Option<&Communicator>,
    rows: usize,
    k: usize,
    warmup: usize,
    iters: usize,
) -> Result<Timing> {
    if stream.cu_stream().is_null() {
        return Err(CollectiveError::shape(
            "time_op",
            "CUDA graph capture needs a non-default stream (CudaContext::new_stream)",
        ));
    }
    let comm = match (op, comm) {
        (TimedOp::VerifyKernels, c) => c,
        (_, Some(c)) => Some(c),
        (_, None) => {
            return Err(CollectiveError::shape(
                "time_op",
                format!("{op:?} needs a communicator"),
            ));
        }
    };
    IndexRows::check_shape(rows, k)?;
    let host: Vec<i32> = (0..rows * k)
        .map(|i| ((i as u64 * 2_654_435_761) % 1_000_003) as i32)
        .collect();
    let idx_buf = stream.clone_htod(&host).map_err(drv("uploading indices"))?;
    let layout = WorkspaceLayout::verify(rows);
    let ws_buf = stream
        .alloc_zeros::<u8>(layout.total_bytes)
        .map_err(drv("allocating the workspace"))?;
    let indices = IndexRows::from_slice(&idx_buf, rows, k, stream)?;
    let ws = VerifyWorkspace::from_slice(&ws_buf, layout, stream)?;
    let step = || -> Result<()> {
        match (op, comm) {
            (TimedOp::VerifyKernels, _) => {
                launch_fingerprint(&indices, &ws, 0, stream)?;
                launch_compare(&ws, k, stream)
            }
            (TimedOp::Verify, Some(c)) => c.verify(&indices, &ws, stream),
            (TimedOp::Broadcast, Some(c)) => c.broadcast_from_rank0(&indices, stream),
            _ => Ok(()),
        }
    };
    let eager_us = median_us(stream, warmup, iters, step)?;

    stream
        .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .map_err(drv("beginning graph capture"))?;
    let captured = step();
    let graph = stream.end_capture(sys::CUgraphInstantiate_flags(0));
    captured?;
    let graph = graph
        .map_err(drv("ending graph capture"))?
        .ok_or_else(|| CollectiveError::shape("time_op", "graph capture recorded nothing"))?;
    let graph_us = median_us(stream, warmup, iters, || {
        graph.launch().map_err(drv("launching the graph"))
    })?;
    match comm {
        Some(c) => c.wait(stream)?,
        None => stream.synchronize().map_err(drv("synchronising"))?,
    }
    Ok(Timing {
        op,
        rows,
        k,
        eager_us,
        graph_us,
    })
}

/// [`time_op`] over [`BENCH_ROWS`] × [`BENCH_K`].
pub fn time_benchmark(
    op: TimedOp,
    stream: &Arc<CudaStream>,
    comm: Option<&Communicator>,
) -> Result<Vec<Timing>> {
    BENCH_ROWS
        .iter()
        .map(|&rows| time_op(op, stream, comm, rows, BENCH_K, 10, 100))
        .collect()
}
