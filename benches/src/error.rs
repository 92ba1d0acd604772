//! The error of GPU workloads: no GPU, or an op, driver or JIT failure with its context.

use std::fmt;

/// What can stop a workload.
#[derive(Debug)]
pub enum Error {
    /// No usable GPU: no driver, no device, or the device could not be opened.
    NoGpu(String),
    /// A CUDA driver call failed.
    Driver {
        /// What we were doing.
        context: String,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
    /// Compiling or loading a kernel failed (NVRTC missing, compile error, ...).
    Jit(dsa_jit_cache::JitError),
    /// The top-k op rejected its plan or launch.
    Topk(dsa_topk::TopkError),
    /// The Hadamard op rejected its plan or launch.
    Hadamard(dsa_hadamard::HadamardError),
    /// The LayerNorm op rejected its plan or launch.
    LayerNorm(dsa_layernorm::LayerNormError),
    /// The collective layer failed.
    Collective(dsa_indexer::collective::CollectiveError),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A driver error while doing `context`.
    pub fn driver(context: impl Into<String>) -> impl FnOnce(cudarc::driver::DriverError) -> Self {
        let context = context.into();
        move |source| Error::Driver { context, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoGpu(why) => write!(f, "no GPU: {why}"),
            Error::Driver { context, source } => {
                write!(f, "CUDA driver error while {context}: {source}")
            }
            Error::Jit(e) => write!(f, "{e}"),
            Error::Topk(e) => write!(f, "topk: {e}"),
            Error::Hadamard(e) => write!(f, "hadamard: {e}"),
            Error::LayerNorm(e) => write!(f, "layernorm: {e}"),
            Error::Collective(e) => write!(f, "collective: {e}"),
        }
    }
}

impl std::error::Error for Error {}

macro_rules! from {
    ($variant:ident, $t:ty) => {
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$variant(e)
            }
        }
    };
}
from!(Jit, dsa_jit_cache::JitError);
from!(Topk, dsa_topk::TopkError);
from!(Hadamard, dsa_hadamard::HadamardError);
from!(LayerNorm, dsa_layernorm::LayerNormError);
from!(Collective, dsa_indexer::collective::CollectiveError);
