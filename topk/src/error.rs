//! The crate's error type.

/// What can go wrong planning or launching a top-k.
#[derive(Debug, thiserror::Error)]
pub enum TopkError {
    /// `k` outside `1..=MAX_K`.
    #[error("k = {k} is out of range: 1..={max}")]
    K {
        /// The k asked for.
        k: usize,
        /// The largest supported k.
        max: usize,
    },
    /// A size the kernels cannot index (rows or stride above i32::MAX, stride 0).
    #[error("invalid shape: {0}")]
    Shape(String),
    /// A required device pointer is null.
    #[error("{0} is a null pointer")]
    Null(&'static str),
    /// A device pointer is not aligned as its element type (or the workspace to 16 bytes).
    #[error("{name} (0x{addr:x}) is not {align}-byte aligned")]
    Misaligned {
        /// The argument.
        name: &'static str,
        /// Its address.
        addr: u64,
        /// The alignment it needs.
        align: u64,
    },
    /// The launch arguments do not match the plan (transform kind, page table geometry).
    #[error("arguments do not match the plan: {0}")]
    Mismatch(String),
    /// Compiling or loading the kernel failed.
    #[error(transparent)]
    Jit(#[from] dsa_jit_cache::JitError),
    /// The launch itself failed.
    #[error("launching {variant}: {source}")]
    Launch {
        /// The kernel variant.
        variant: String,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
}

/// Result alias for this crate.
pub type Result<T, E = TopkError> = std::result::Result<T, E>;

impl From<dsa_jit_cache::PtrError> for TopkError {
    fn from(e: dsa_jit_cache::PtrError) -> Self {
        match e {
            dsa_jit_cache::PtrError::Null { name } => TopkError::Null(name),
            dsa_jit_cache::PtrError::Misaligned { name, addr, align } => {
                TopkError::Misaligned { name, addr, align }
            }
        }
    }
}
