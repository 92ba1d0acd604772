//! Connecting the ranks of a communicator we create, before it is handed out.
//!
//! NCCL connects ranks lazily, at the first collective that needs a connection. In blocking
//! mode that call waits on the host for its peers (a rank that skips it would hang the others
//! there, beyond any timeout), and inside CUDA graph capture it fails ("operation not permitted
//! when stream is capturing"). So at creation every rank runs the collectives this layer issues,
//! together, at sizes from one row to many, and waits for them: afterwards an enqueue never
//! waits for a peer and can be captured.

use super::comm::Communicator;
use super::error::{CollectiveError, Result};
use cudarc::driver::CudaStream;
use cudarc::nccl::sys;
use std::ffi::c_void;
use std::sync::Arc;

/// Rows of fingerprints (two u64 a row) the verify's all-reduce is connected at.
const VERIFY_ROWS: [usize; 3] = [1, 64, 4096];
/// Rows of DSA's k = 2048 indices the broadcast is connected at.
const BROADCAST_ROWS: [usize; 3] = [1, 64, 1024];
const K: usize = 2048;

fn drv(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> CollectiveError {
    move |e| CollectiveError::driver(what, e)
}

/// One NCCL call for every communicator in one group (one thread may drive several ranks).
fn grouped(
    comms: &[Communicator],
    work: &[(Arc<CudaStream>, u64)],
    call: &'static str,
    f: impl Fn(u64, sys::ncclComm_t, sys::cudaStream_t) -> sys::ncclResult_t,
) -> Result<()> {
    // SAFETY: group start/end only bracket the calls below.
    let started = unsafe { sys::ncclGroupStart() };
    super::nccl::status("ncclGroupStart", started, std::ptr::null_mut())?;
    let issued = comms.iter().zip(work).try_for_each(|(c, (stream, ptr))| {
        let s = stream.cu_stream() as sys::cudaStream_t;
        c.call(call, |raw| f(*ptr, raw, s))
    });
    // SAFETY: as above; the group is closed whatever the calls returned.
    let ended = unsafe { sys::ncclGroupEnd() };
    let ended = super::nccl::status("ncclGroupEnd", ended, std::ptr::null_mut());
    issued?;
    ended?;
    comms.iter().try_for_each(|c| c.ready(call))
}

/// Runs the verify's all-reduce and the broadcast once at every size of the ladders on every
/// rank in `comms` (all ranks of this process; the other processes do the same at creation) and
/// waits for them.
pub(crate) fn connect(comms: &[Communicator]) -> Result<()> {
    let elems = BROADCAST_ROWS[BROADCAST_ROWS.len() - 1] * K;
    let mut bufs = Vec::with_capacity(comms.len());
    let mut work = Vec::with_capacity(comms.len());
    for c in comms {
        let stream = c.context().new_stream().map_err(drv("creating a stream"))?;
        let buf = stream
            .alloc_zeros::<i32>(elems)
            .map_err(drv("allocating the connection buffer"))?;
        work.push((stream.clone(), dsa_jit_cache::dptr(&buf, &stream)));
        bufs.push(buf);
    }
    for rows in VERIFY_ROWS {
        grouped(comms, &work, "ncclAllReduce", |p, raw, s| {
            // SAFETY: the buffer holds `elems` i32, at least 2 * rows u64; in place is allowed.
            unsafe {
                sys::ncclAllReduce(
                    p as *const c_void,
                    p as *mut c_void,
                    2 * rows,
                    sys::ncclDataType_t::ncclUint64,
                    sys::ncclRedOp_t::ncclMin,
                    raw,
                    s,
                )
            }
        })?;
    }
    for rows in BROADCAST_ROWS {
        grouped(comms, &work, "ncclBroadcast", |p, raw, s| {
            // SAFETY: the buffer holds `elems` >= rows * K i32; in place is allowed.
            unsafe {
                sys::ncclBroadcast(
                    p as *const c_void,
                    p as *mut c_void,
                    rows * K,
                    sys::ncclDataType_t::ncclInt32,
                    0,
                    raw,
                    s,
                )
            }
        })?;
    }
    comms
        .iter()
        .zip(&work)
        .try_for_each(|(c, (stream, _))| c.wait(stream))
}
