//! A criterion [`Measurement`] that reads GPU time from CUDA events on the stream, so a bench
//! reports the time of the kernels it enqueues, not the host's wall time.
//!
//! `start` records an event on the stream; `end` records a second one, waits for it and returns
//! the elapsed GPU time in nanoseconds. Criterion's iteration loop between the two only enqueues
//! launches, so the value is the GPU time of the whole batch.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput};
use cudarc::driver::{CudaEvent, CudaStream, sys};
use std::sync::Arc;

/// GPU time on one stream, in nanoseconds.
pub struct GpuTime {
    stream: Arc<CudaStream>,
}

impl GpuTime {
    /// Time the work enqueued on `stream`.
    pub fn new(stream: Arc<CudaStream>) -> Self {
        GpuTime { stream }
    }

    fn record(&self) -> Result<CudaEvent> {
        let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
        let ev = self
            .stream
            .context()
            .new_event(flags)
            .map_err(Error::driver("creating a timing event"))?;
        ev.record(&self.stream)
            .map_err(Error::driver("recording a timing event"))?;
        Ok(ev)
    }
}

// Criterion's trait has no error path: a driver failure while timing ends the bench with the
// driver's message.
impl Measurement for GpuTime {
    type Intermediate = CudaEvent;
    type Value = f64;

    fn start(&self) -> CudaEvent {
        self.record().unwrap_or_else(|e| panic!("{e}"))
    }

    fn end(&self, start: CudaEvent) -> f64 {
        let end = self.record().unwrap_or_else(|e| panic!("{e}"));
        let ms = start
            .elapsed_ms(&end)
            .unwrap_or_else(|e| panic!("reading a timing event: {e}"));
        ms as f64 * 1e6
    }

    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, v: &f64) -> f64 {
        *v
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &GpuTimeFormatter
    }
}

/// Formats nanoseconds of GPU time, and throughput in (decimal) bytes or elements per second.
struct GpuTimeFormatter;

impl ValueFormatter for GpuTimeFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical_ns < 1e3 {
            (1.0, "ns")
        } else if typical_ns < 1e6 {
            (1e-3, "µs")
        } else if typical_ns < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        typical_ns: f64,
        t: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_iter, units) = match *t {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => {
                (b as f64, ["B/s", "KB/s", "MB/s", "GB/s", "TB/s"])
            }
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => (
                n as f64,
                ["elem/s", "Kelem/s", "Melem/s", "Gelem/s", "Telem/s"],
            ),
            Throughput::Bits(b) => (b as f64, ["b/s", "Kb/s", "Mb/s", "Gb/s", "Tb/s"]),
        };
        let typical = per_iter / (typical_ns * 1e-9);
        let exp = ((typical.max(1.0).log10() / 3.0).floor() as usize).min(4);
        let denom = 1e3f64.powi(exp as i32);
        values
            .iter_mut()
            .for_each(|v| *v = per_iter / (*v * 1e-9) / denom);
        units[exp]
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// Run a bench binary's body on the GPU with a criterion configured for [`GpuTime`] (and the
/// command line); without a GPU, say so and exit cleanly. An error ends the run with status 1.
pub fn main_with(name: &str, body: impl FnOnce(&mut Criterion<GpuTime>, &Gpu) -> Result<()>) {
    let gpu = match Gpu::open() {
        Ok(gpu) => gpu,
        Err(Error::NoGpu(why)) => {
            println!("{name} benches skipped: no GPU ({why})");
            return;
        }
        Err(e) => {
            eprintln!("{name} benches: {e}");
            std::process::exit(1);
        }
    };
    let mut c = Criterion::default()
        .with_measurement(GpuTime::new(gpu.stream.clone()))
        .configure_from_args();
    if let Err(e) = body(&mut c, &gpu) {
        eprintln!("{name} benches: {e}");
        std::process::exit(1);
    }
    c.final_summary();
}

/// Bench `w` in `group` under its shape's name, with its bytes as the throughput. Launches are
/// checked once before timing, so a failure there is an error, not a panic.
pub fn bench_workload(
    group: &mut criterion::BenchmarkGroup<'_, GpuTime>,
    gpu: &Gpu,
    w: &dyn crate::Workload,
) -> Result<()> {
    w.launch(gpu, 0)?;
    group.throughput(Throughput::BytesDecimal(w.bytes() as u64));
    let mut i = 0;
    group.bench_function(w.shape(), |b| {
        b.iter(|| {
            i += 1;
            // Checked above with the same buffers; criterion's closure cannot return an error.
            w.launch(gpu, i).unwrap_or_else(|e| panic!("{e}"))
        })
    });
    Ok(())
}
