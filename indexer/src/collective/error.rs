//! The collective layer's error type.

use std::time::Duration;

/// Everything the collective layer reports. NCCL failures keep NCCL's own message.
#[derive(Debug, thiserror::Error)]
pub enum CollectiveError {
    /// The world size is 0 or does not fit NCCL's `int`.
    #[error("invalid world size {world_size}: must be between 1 and {max}", max = i32::MAX)]
    InvalidWorldSize {
        /// The world size asked for.
        world_size: usize,
    },
    /// The rank is not below the world size.
    #[error("invalid rank {rank} for world size {world_size}: ranks are 0..{world_size}")]
    InvalidRank {
        /// The rank asked for.
        rank: usize,
        /// The world size it was checked against.
        world_size: usize,
    },
    /// An NCCL unique id that cannot be one (wrong length, all zero, bad hex).
    #[error("invalid NCCL unique id: {0}")]
    InvalidUniqueId(String),
    /// A shape the collective layer cannot work on.
    #[error("invalid shape for {op}: {detail}")]
    InvalidShape {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A caller-provided device buffer is smaller than the operation needs.
    #[error("{what} too small: {needed} bytes needed, {got} given")]
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// A device pointer is not aligned as the operation needs.
    #[error("{what} at {ptr:#x} is not {align}-byte aligned")]
    Misaligned {
        /// Which buffer.
        what: &'static str,
        /// The pointer.
        ptr: u64,
        /// The alignment needed.
        align: u64,
    },
    /// A buffer registered with one communicator was used with another.
    #[error(
        "{what} is registered with communicator #{registered_with} but was used with communicator #{used_with}; register it with the communicator that uses it"
    )]
    ForeignBuffer {
        /// Which buffer.
        what: &'static str,
        /// Identity of the communicator the buffer is registered with.
        registered_with: u64,
        /// Identity of the communicator it was used with.
        used_with: u64,
    },
    /// The stream or context belongs to another device than the communicator.
    #[error(
        "communicator is on CUDA device {comm_device} but the {what} is on device {other_device}"
    )]
    DeviceMismatch {
        /// What was on the wrong device.
        what: &'static str,
        /// The communicator's device ordinal.
        comm_device: usize,
        /// The other device ordinal.
        other_device: usize,
    },
    /// libnccl could not be loaded.
    #[error("{0}")]
    NcclUnavailable(String),
    /// libnccl is older than the collective layer needs.
    #[error(
        "NCCL {found} is too old: the collective layer needs NCCL >= {required} (user-buffer registration)"
    )]
    NcclTooOld {
        /// The loaded version, `major.minor.patch`.
        found: String,
        /// The minimum version.
        required: String,
    },
    /// An NCCL call failed.
    #[error("NCCL {call} failed: {code}: {message}")]
    Nccl {
        /// The NCCL API function.
        call: &'static str,
        /// NCCL's result code name (e.g. `ncclInvalidArgument`).
        code: String,
        /// NCCL's error string and, where there is one, its last error message.
        message: String,
    },
    /// A collective (or communicator setup) did not finish within the configured timeout.
    #[error(
        "{what} did not complete within {timeout:?} (a peer rank is missing or stalled); {}",
        if *.aborted { "the communicator was aborted and cannot be used again" } else { "the communicator was NOT aborted (borrowed or abort disabled): its owner must abort it" }
    )]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The timeout in force.
        timeout: Duration,
        /// Whether the communicator was aborted (ncclCommAbort) as a result.
        aborted: bool,
    },
    /// The communicator was aborted earlier (after a timeout or an asynchronous error).
    #[error("communicator #{0} was aborted after an earlier failure and cannot be used")]
    Aborted(u64),
    /// Strict verification found rows whose indices differ across ranks.
    #[error("{rows} row(s) of top-k indices differ across ranks (first: {first:?})")]
    Mismatch {
        /// Number of rows that differ.
        rows: u32,
        /// The first differing rows (at most 16).
        first: Vec<u32>,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver error while {context}: {source}")]
    Driver {
        /// What we were doing.
        context: String,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
    /// Compiling or loading the verification kernels failed.
    #[error(transparent)]
    Jit(#[from] dsa_jit_cache::JitError),
}

/// Result alias for the collective layer.
pub type Result<T, E = CollectiveError> = std::result::Result<T, E>;

impl CollectiveError {
    pub(crate) fn driver(context: impl Into<String>, source: cudarc::driver::DriverError) -> Self {
        CollectiveError::Driver {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        CollectiveError::InvalidShape {
            op,
            detail: detail.into(),
        }
    }
}
