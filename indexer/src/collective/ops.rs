//! The collectives on top-k indices: broadcast from rank 0, verification, the host-side check,
//! and the policy that combines them.

use super::comm::Communicator;
use super::error::{CollectiveError, Result};
use super::kernels::{launch_compare, launch_fingerprint};
use super::policy::ConsistencyPolicy;
use super::report::VerifyReport;
use super::workspace::{IndexRows, VerifyWorkspace, WorkspaceLayout};
use cudarc::driver::CudaStream;
use cudarc::nccl::sys;
use std::ffi::c_void;

impl Communicator {
    /// Overwrites `indices` on every rank with rank 0's, in place, on `stream`
    /// (`ncclBroadcast`). Enqueues only: no host sync, capturable in a CUDA graph.
    pub fn broadcast_from_rank0(&self, indices: &IndexRows<'_>, stream: &CudaStream) -> Result<()> {
        self.check_binding("index rows", indices.registered_with())?;
        self.check_stream(stream)?;
        let (ptr, count) = (indices.ptr(), indices.rows() * indices.k());
        let s = stream.cu_stream() as sys::cudaStream_t;
        self.call("ncclBroadcast", |c| {
            // SAFETY: IndexRows guarantees rows * k i32 at ptr on this device; in-place
            // broadcast (send == recv) is allowed; the stream belongs to this device.
            unsafe {
                sys::ncclBroadcast(
                    ptr as *const c_void,
                    ptr as *mut c_void,
                    count,
                    sys::ncclDataType_t::ncclInt32,
                    0,
                    c,
                    s,
                )
            }
        })
    }

    /// Enqueues the verification of `indices` across ranks on `stream`: per-row fingerprints,
    /// one `ncclMin` all-reduce of 16 B/row in place in `ws`, and the compare kernel that
    /// leaves per-row flags and the mismatch count in `ws`. No host sync; capturable. Read the
    /// outcome with [`Communicator::check`].
    pub fn verify(
        &self,
        indices: &IndexRows<'_>,
        ws: &VerifyWorkspace<'_>,
        stream: &CudaStream,
    ) -> Result<()> {
        self.check_binding("index rows", indices.registered_with())?;
        self.check_binding("verify workspace", ws.registered_with())?;
        self.check_stream(stream)?;
        launch_fingerprint(indices, ws, 0, stream)?;
        let (packed, count) = (ws.packed_ptr(0), 2 * ws.layout().rows);
        let s = stream.cu_stream() as sys::cudaStream_t;
        self.call("ncclAllReduce", |c| {
            // SAFETY: slot 0 of the workspace holds 2 * rows u64 on this device (layout);
            // in-place all-reduce is allowed; the stream belongs to this device.
            unsafe {
                sys::ncclAllReduce(
                    packed as *const c_void,
                    packed as *mut c_void,
                    count,
                    sys::ncclDataType_t::ncclUint64,
                    sys::ncclRedOp_t::ncclMin,
                    c,
                    s,
                )
            }
        })?;
        launch_compare(ws, indices.k(), stream)
    }

    /// Waits (at most [`super::CommConfig::timeout`]) for the work on `stream` and reads the
    /// verify outcome from `ws`. With `strict`, a mismatch is [`CollectiveError::Mismatch`].
    pub fn check(
        &self,
        ws: &VerifyWorkspace<'_>,
        stream: &CudaStream,
        strict: bool,
    ) -> Result<VerifyReport> {
        self.wait_for(stream, "verify")?;
        let report = ws.read_report(stream)?;
        if strict && !report.is_consistent() {
            return Err(CollectiveError::Mismatch {
                rows: report.mismatched_rows,
                first: report.first_mismatches,
            });
        }
        Ok(report)
    }

    /// Applies `policy` to `indices` on `stream` (verify first, on the indices as computed,
    /// then broadcast). `ws` is needed when the policy verifies
    /// ([`ConsistencyPolicy::workspace_bytes`]). Enqueues only.
    pub fn enforce(
        &self,
        policy: ConsistencyPolicy,
        indices: &IndexRows<'_>,
        ws: Option<&VerifyWorkspace<'_>>,
        stream: &CudaStream,
    ) -> Result<()> {
        if policy.verifies() {
            let Some(ws) = ws else {
                return Err(CollectiveError::BufferTooSmall {
                    what: "verify workspace (none given)",
                    needed: WorkspaceLayout::verify(indices.rows()).total_bytes,
                    got: 0,
                });
            };
            self.verify(indices, ws, stream)?;
        }
        if policy.broadcasts() {
            self.broadcast_from_rank0(indices, stream)?;
        }
        Ok(())
    }
}
