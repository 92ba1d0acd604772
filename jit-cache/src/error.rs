//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong between a kernel variant and a loaded function.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// libnvrtc could not be found; lists every place that was searched.
    #[error("NVRTC (libnvrtc.so.13) not found; searched:\n  {}\nset DSA_NVRTC_PATH to the library file or its folder, or install the `nvidia-cuda-nvrtc` wheel", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n  "))]
    NvrtcNotFound {
        /// The places looked at, in order.
        searched: Vec<PathBuf>,
    },
    /// libcuda (the driver) could not be loaded: no GPU driver on this machine.
    #[error("CUDA driver (libcuda.so.1) not available: {0}")]
    NoDriver(String),
    /// NVRTC rejected the source.
    #[error("NVRTC failed to compile `{variant}` ({status}) with options {options:?}:\n{log}")]
    Compile {
        /// The variant's readable id.
        variant: String,
        /// NVRTC's status name.
        status: String,
        /// The options passed.
        options: Vec<String>,
        /// NVRTC's log.
        log: String,
    },
    /// An NVRTC call other than compilation failed.
    #[error("NVRTC call {call} failed: {status}")]
    Nvrtc {
        /// The API function.
        call: &'static str,
        /// NVRTC's status name.
        status: String,
    },
    /// A CUDA driver call failed (module load, function lookup, attribute).
    #[error("CUDA driver error while {context}: {source}")]
    Driver {
        /// What we were doing.
        context: String,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
    /// The device's architecture is not one NVRTC can target.
    #[error("unsupported GPU architecture: {0}")]
    Arch(String),
}

/// Result alias for this crate.
pub type Result<T, E = JitError> = std::result::Result<T, E>;

impl JitError {
    pub(crate) fn driver(context: impl Into<String>, source: cudarc::driver::DriverError) -> Self {
        JitError::Driver {
            context: context.into(),
            source,
        }
    }
}
