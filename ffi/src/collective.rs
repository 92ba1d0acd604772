//! Cross-rank consistency of top-k indices over an engine's own NCCL communicator (borrowed:
//! never finalised, destroyed or aborted here).
//!
//! Contract (see `dsa_indexer::collective`): index rows are `[rows, k]` i32 on the
//! communicator's device. Broadcast copies rank 0's rows to every rank in place; verify
//! compares per-row 64-bit fingerprints across ranks with one small all-reduce and writes the
//! result into a caller workspace; check reads that result (the one call that waits on the
//! host). Every enqueueing call takes the caller's stream and is graph-capturable.

use crate::check::{device_ptr, host_out, host_ref, size, write_out};
use crate::context::{DsaStream, borrow_stream, primary};
use crate::status::{DsaStatus, FfiError, FfiResult, guard};
use dsa_indexer::collective::kernels::launch_fingerprint;
use dsa_indexer::collective::{
    CollectiveError, CommConfig, Communicator, IndexRows, VerifyWorkspace, WorkspaceLayout,
};
use std::ffi::c_void;

/// An `ncclComm_t` created and owned by the caller.
pub type DsaNcclComm = *mut c_void;

/// An opaque handle on a borrowed NCCL communicator.
pub struct DsaComm {
    comm: Communicator,
}

impl From<CollectiveError> for FfiError {
    fn from(e: CollectiveError) -> Self {
        use CollectiveError as C;
        let status = match &e {
            C::Jit(_) => {
                let C::Jit(j) = e else { unreachable!() };
                return j.into();
            }
            C::Driver { .. } => DsaStatus::Cuda,
            C::NcclUnavailable(_)
            | C::NcclTooOld { .. }
            | C::Nccl { .. }
            | C::Timeout { .. }
            | C::Aborted(_)
            | C::Mismatch { .. } => DsaStatus::Nccl,
            _ => DsaStatus::InvalidArgument,
        };
        FfiError::new(status, e.to_string())
    }
}

/// Borrow a communicator handle.
///
/// # Safety
/// A non-null `comm` must come from `dsa_comm_borrow` and not be released yet.
unsafe fn comm_ref<'a>(comm: *const DsaComm) -> FfiResult<&'a Communicator> {
    // SAFETY: forwarded to the caller.
    Ok(&unsafe { host_ref("comm", comm) }?.comm)
}

/// An optional communicator handle (NULL: none).
///
/// # Safety
/// A non-null `comm` must come from `dsa_comm_borrow` and not be released yet.
pub(crate) unsafe fn comm_opt<'a>(comm: *const DsaComm) -> Option<&'a Communicator> {
    // SAFETY: forwarded to the caller; null gives `None`.
    unsafe { comm.as_ref() }.map(|c| &c.comm)
}

fn rows_k(rows: i64, k: i64) -> FfiResult<(usize, usize)> {
    Ok((size("rows", rows)?, size("k", k)?))
}

/// Wrap the caller's NCCL communicator `nccl_comm` (an `ncclComm_t` on CUDA device
/// `device_ordinal`, which must be its device). Rank and world size are read from NCCL.
///
/// - `comm_out`: host pointer; receives a handle to release with `dsa_comm_release` (which
///   never destroys the NCCL communicator). The engine keeps `nccl_comm` alive meanwhile and
///   does not call NCCL on it concurrently with this library.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_comm_borrow(
    nccl_comm: DsaNcclComm,
    device_ordinal: i32,
    comm_out: *mut *mut DsaComm,
) -> DsaStatus {
    guard("dsa_comm_borrow", || {
        host_out("comm_out", comm_out)?;
        if nccl_comm.is_null() {
            return Err(FfiError::invalid("nccl_comm is a null pointer"));
        }
        let ordinal = size("device_ordinal", device_ordinal as i64)?;
        let ctx = primary(ordinal)?;
        // SAFETY: the caller promises a live communicator, not used concurrently (documented).
        let comm = unsafe {
            Communicator::from_raw_borrowed(nccl_comm.cast(), &ctx, CommConfig::default())
        }?;
        let handle = Box::into_raw(Box::new(DsaComm { comm }));
        // SAFETY: checked non-null and aligned; the caller vouches it is writable.
        unsafe { write_out("comm_out", comm_out, handle) }
    })
}

/// Release a handle from `dsa_comm_borrow` (NULL allowed). The NCCL communicator stays alive.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_comm_release(comm: *mut DsaComm) -> DsaStatus {
    guard("dsa_comm_release", || {
        if !comm.is_null() {
            // SAFETY: a non-null `comm` came from `Box::into_raw` in `dsa_comm_borrow` and is
            // released once (documented).
            drop(unsafe { Box::from_raw(comm) });
        }
        Ok(())
    })
}

/// This rank and the world size. `rank_out`, `world_size_out`: host pointers to one `int32_t`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_comm_rank(
    comm: *const DsaComm,
    rank_out: *mut i32,
    world_size_out: *mut i32,
) -> DsaStatus {
    guard("dsa_comm_rank", || {
        // SAFETY: a non-null `comm` is a live handle (documented).
        let c = unsafe { comm_ref(comm) }?;
        host_out("world_size_out", world_size_out)?;
        // SAFETY: both checked non-null and aligned; the caller vouches they are writable.
        unsafe {
            write_out("rank_out", rank_out, c.rank() as i32)?;
            write_out("world_size_out", world_size_out, c.world_size() as i32)
        }
    })
}

/// Bytes of device workspace `dsa_collective_verify` needs for `rows` rows (8-byte aligned).
/// Host only. `bytes_out`: host pointer to one `size_t`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_collective_verify_workspace_bytes(
    rows: i64,
    bytes_out: *mut usize,
) -> DsaStatus {
    guard("dsa_collective_verify_workspace_bytes", || {
        let rows = size("rows", rows)?;
        IndexRows::check_shape(rows, 1)?;
        let bytes = WorkspaceLayout::verify(rows).total_bytes;
        // SAFETY: checked non-null and aligned inside; the caller vouches it is writable.
        unsafe { write_out("bytes_out", bytes_out, bytes) }
    })
}

/// Enqueue the verify protocol's first step alone, with no communicator: the 64-bit fingerprint
/// of every index row (order-sensitive; see `dsa_indexer::collective::fingerprint`) written as
/// `[fp_0 .. fp_{rows-1}, ~fp_0 .. ~fp_{rows-1}]` (`uint64_t`, `2 * rows` values) at the start
/// of `workspace`. An all-reduce MIN of that buffer over the ranks (by any library, e.g. the
/// engine's own process group) gives `min(fp)` and `~max(fp)`: row `i` differs on some rank
/// iff `out[i] != ~out[rows + i]` (also with signed 64-bit MIN).
///
/// - `indices`: device, `[rows, k]` int32; `rows, k >= 1`.
/// - `workspace`: device, `workspace_bytes` bytes (`>= dsa_collective_verify_workspace_bytes(rows)`),
///   8-byte aligned; the bytes after the `2 * rows` fingerprints are scratch.
/// - `stream`: the caller's `CUstream` (NULL: legacy default stream of the current context).
#[unsafe(no_mangle)]
pub extern "C" fn dsa_collective_fingerprint(
    indices: *const c_void,
    rows: i64,
    k: i64,
    workspace: *mut c_void,
    workspace_bytes: usize,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_collective_fingerprint", || {
        let (rows, k) = rows_k(rows, k)?;
        let ptr = device_ptr("indices", indices, 4, true)?;
        let ws = device_ptr("workspace", workspace.cast_const(), 8, true)?;
        // SAFETY: the caller's buffers have the documented sizes on the stream's device.
        let (idx, ws) = unsafe {
            (
                IndexRows::from_raw(ptr, rows, k)?,
                VerifyWorkspace::from_raw(ws, workspace_bytes, WorkspaceLayout::verify(rows))?,
            )
        };
        let s = borrow_stream(stream, None)?;
        Ok(launch_fingerprint(&idx, &ws, 0, &s.stream)?)
    })
}

/// Overwrite every rank's `indices` with rank 0's, in place, on `stream`.
///
/// - `indices`: device, `[rows, k]` i32 on the communicator's device; `rows, k >= 1`.
/// - `stream`: the caller's `CUstream` on that device.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_collective_broadcast(
    comm: *const DsaComm,
    indices: *mut c_void,
    rows: i64,
    k: i64,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_collective_broadcast", || {
        let (rows, k) = rows_k(rows, k)?;
        let ptr = device_ptr("indices", indices.cast_const(), 4, true)?;
        // SAFETY: the caller's `indices` holds rows * k i32 on the communicator's device.
        let idx = unsafe { IndexRows::from_raw(ptr, rows, k) }?;
        // SAFETY: a non-null `comm` is a live handle (documented).
        let c = unsafe { comm_ref(comm) }?;
        let s = borrow_stream(stream, Some(c.device()))?;
        Ok(c.broadcast_from_rank0(&idx, &s.stream)?)
    })
}

/// Enqueue a cross-rank comparison of `indices` (per-row fingerprints, one all-reduce, a
/// compare kernel) writing its result into `workspace`; read it with `dsa_collective_check`.
///
/// - `indices`: device, `[rows, k]` i32; `workspace`: device, `workspace_bytes` bytes
///   (`>= dsa_collective_verify_workspace_bytes(rows)`), 8-byte aligned, for this call only.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_collective_verify(
    comm: *const DsaComm,
    indices: *const c_void,
    rows: i64,
    k: i64,
    workspace: *mut c_void,
    workspace_bytes: usize,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_collective_verify", || {
        let (rows, k) = rows_k(rows, k)?;
        let ptr = device_ptr("indices", indices, 4, true)?;
        let ws = device_ptr("workspace", workspace.cast_const(), 8, true)?;
        // SAFETY: the caller's buffers have the documented sizes on the communicator's device.
        let (idx, ws) = unsafe {
            (
                IndexRows::from_raw(ptr, rows, k)?,
                VerifyWorkspace::from_raw(ws, workspace_bytes, WorkspaceLayout::verify(rows))?,
            )
        };
        // SAFETY: a non-null `comm` is a live handle (documented).
        let c = unsafe { comm_ref(comm) }?;
        let s = borrow_stream(stream, Some(c.device()))?;
        Ok(c.verify(&idx, &ws, &s.stream)?)
    })
}

/// Wait (on the host) for the verify enqueued on `stream` and read how many rows differ
/// across ranks. Not capturable: call it outside graphs, when convenient.
///
/// - `workspace`, `workspace_bytes`, `rows`: as given to `dsa_collective_verify`.
/// - `mismatched_rows_out`: host pointer to one `uint32_t` (0: all ranks agree).
#[unsafe(no_mangle)]
pub extern "C" fn dsa_collective_check(
    comm: *const DsaComm,
    workspace: *const c_void,
    workspace_bytes: usize,
    rows: i64,
    stream: DsaStream,
    mismatched_rows_out: *mut u32,
) -> DsaStatus {
    guard("dsa_collective_check", || {
        host_out("mismatched_rows_out", mismatched_rows_out)?;
        let rows = size("rows", rows)?;
        let ws = device_ptr("workspace", workspace, 8, true)?;
        // SAFETY: the caller's workspace has the documented size on the communicator's device.
        let ws = unsafe {
            VerifyWorkspace::from_raw(ws, workspace_bytes, WorkspaceLayout::verify(rows))
        }?;
        // SAFETY: a non-null `comm` is a live handle (documented).
        let c = unsafe { comm_ref(comm) }?;
        let s = borrow_stream(stream, Some(c.device()))?;
        let report = c.check(&ws, &s.stream, false)?;
        // SAFETY: checked non-null and aligned; the caller vouches it is writable.
        unsafe {
            write_out(
                "mismatched_rows_out",
                mismatched_rows_out,
                report.mismatched_rows,
            )
        }
    })
}
