//! Reading a verify result back on the host (the only place that syncs).

use super::error::{CollectiveError, Result};
use super::workspace::VerifyWorkspace;
use cudarc::driver::{CudaStream, DeviceRepr};

/// How many differing rows a report lists.
pub const REPORT_FIRST_ROWS: usize = 16;

/// The outcome of one verification, read from the workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows verified.
    pub rows: usize,
    /// Rows whose indices differ on some rank.
    pub mismatched_rows: u32,
    /// The first differing rows (at most [`REPORT_FIRST_ROWS`]), ascending.
    pub first_mismatches: Vec<u32>,
}

impl VerifyReport {
    /// Whether every rank holds the same indices in every row.
    pub fn is_consistent(&self) -> bool {
        self.mismatched_rows == 0
    }
}

/// Copies `n` values of `T` from device address `ptr` after the work on `stream` (syncs it).
fn read_device<T: DeviceRepr + Default + Clone>(
    ptr: u64,
    n: usize,
    stream: &CudaStream,
) -> Result<Vec<T>> {
    let drv = |c: &'static str| move |e| CollectiveError::driver(c, e);
    stream
        .context()
        .bind_to_thread()
        .map_err(drv("binding the context"))?;
    let mut host = vec![T::default(); n];
    // SAFETY: the workspace layout guarantees `n` values of T at `ptr`; the copy is ordered
    // after the stream's work, and the stream is synchronised before `host` is touched.
    unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut host, ptr, stream.cu_stream()) }
        .map_err(drv("reading the verify workspace"))?;
    stream
        .synchronize()
        .map_err(drv("synchronising the stream"))?;
    Ok(host)
}

impl VerifyWorkspace<'_> {
    /// The mismatch count and first differing rows, once the work on `stream` is done (syncs
    /// the stream with no timeout; with a communicator use [`super::Communicator::check`]).
    pub fn read_report(&self, stream: &CudaStream) -> Result<VerifyReport> {
        let count = read_device::<u32>(self.count_ptr(), 1, stream)?[0];
        let first_mismatches = if count == 0 {
            Vec::new()
        } else {
            let mut rows = self.read_mismatched_rows(stream)?;
            rows.truncate(REPORT_FIRST_ROWS);
            rows
        };
        Ok(VerifyReport {
            rows: self.layout().rows,
            mismatched_rows: count,
            first_mismatches,
        })
    }

    /// Every row flagged as differing (syncs the stream).
    pub fn read_mismatched_rows(&self, stream: &CudaStream) -> Result<Vec<u32>> {
        let flags = read_device::<u32>(self.flags_ptr(), self.layout().rows, stream)?;
        Ok(flags
            .iter()
            .enumerate()
            .filter(|(_, f)| **f != 0)
            .map(|(i, _)| i as u32)
            .collect())
    }

    /// Rank slot `slot`'s packed fingerprints `[fp; rows] ++ [!fp; rows]` (after a verify,
    /// slot 0 holds the reduced min / complemented max). Syncs the stream.
    pub fn read_packed(&self, slot: usize, stream: &CudaStream) -> Result<Vec<u64>> {
        if slot >= self.layout().slots {
            return Err(CollectiveError::shape(
                "read_packed",
                format!("slot {slot} of {}", self.layout().slots),
            ));
        }
        read_device::<u64>(self.packed_ptr(slot), 2 * self.layout().rows, stream)
    }
}
