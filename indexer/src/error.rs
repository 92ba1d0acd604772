//! The crate's error type.

use crate::collective::{CollectiveError, ConsistencyPolicy};

/// What can go wrong configuring, planning or launching the indexer.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// A configuration value the kernels do not support.
    #[error("invalid indexer config: {0}")]
    Config(String),
    /// A shape the kernels cannot index, or arguments that disagree with the plan.
    #[error("invalid shape: {0}")]
    Shape(String),
    /// A required device pointer is null.
    #[error("{0} is a null pointer")]
    Null(&'static str),
    /// A device pointer is not aligned as the kernels need.
    #[error("{name} (0x{addr:x}) is not {align}-byte aligned")]
    Misaligned {
        /// The argument.
        name: &'static str,
        /// Its address.
        addr: u64,
        /// The alignment it needs.
        align: u64,
    },
    /// The workspace is smaller than the plan needs.
    #[error("workspace of {given} bytes is smaller than the {needed} bytes the plan needs")]
    Workspace {
        /// Bytes given.
        given: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The consistency policy issues collectives but no communicator was given.
    #[error("consistency policy `{0}` needs a communicator")]
    NoCommunicator(ConsistencyPolicy),
    /// The top-k stage rejected its plan or launch.
    #[error(transparent)]
    Topk(#[from] dsa_topk::TopkError),
    /// The collective stage failed.
    #[error(transparent)]
    Collective(#[from] CollectiveError),
    /// Compiling or loading a kernel failed.
    #[error(transparent)]
    Jit(#[from] dsa_jit_cache::JitError),
    /// A CUDA driver call failed (launch, allocation or timing in the bench helpers).
    #[error("{context}: {source}")]
    Driver {
        /// What we were doing (kernel variant for launches).
        context: String,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
}

/// Result alias for this crate.
pub type Result<T, E = IndexerError> = std::result::Result<T, E>;

impl IndexerError {
    pub(crate) fn driver(context: impl Into<String>, source: cudarc::driver::DriverError) -> Self {
        IndexerError::Driver {
            context: context.into(),
            source,
        }
    }
}

/// Rejects null and misaligned device pointers before any launch.
pub(crate) fn check_ptr(name: &'static str, addr: u64, align: u64) -> Result<()> {
    if addr == 0 {
        return Err(IndexerError::Null(name));
    }
    if addr % align != 0 {
        return Err(IndexerError::Misaligned { name, addr, align });
    }
    Ok(())
}

/// As [`check_ptr`] for an optional pointer (0 = absent).
pub(crate) fn check_opt_ptr(name: &'static str, addr: u64, align: u64) -> Result<()> {
    if addr == 0 {
        Ok(())
    } else {
        check_ptr(name, addr, align)
    }
}
