//! The crate's error type.

/// Everything a norm plan or launch can reject.
#[derive(Debug, thiserror::Error)]
pub enum LayerNormError {
    /// The row length is outside 1..=16384.
    #[error("row length {dim} is not supported: it must be in 1..=16384")]
    BadDim {
        /// The requested row length.
        dim: usize,
    },
    /// eps is negative or not finite.
    #[error("eps {eps} must be finite and non-negative")]
    BadEps {
        /// The requested eps.
        eps: f32,
    },
    /// A row stride is smaller than the row length.
    #[error("{which} stride {stride} is smaller than the row length {dim}")]
    StrideTooSmall {
        /// `x` or `y`.
        which: &'static str,
        /// The stride in elements.
        stride: usize,
        /// The row length.
        dim: usize,
    },
    /// Too many rows for one launch's grid.
    #[error("{rows} rows exceed the launch limit of {max}")]
    TooManyRows {
        /// Requested rows.
        rows: usize,
        /// The largest supported count.
        max: usize,
    },
    /// A required device pointer is null.
    #[error("{which} pointer is null")]
    NullPointer {
        /// Which pointer.
        which: &'static str,
    },
    /// A device pointer is not aligned to its element size.
    #[error("{which} pointer {ptr:#x} is not aligned to {align} bytes")]
    Misaligned {
        /// Which pointer.
        which: &'static str,
        /// Its address.
        ptr: u64,
        /// The required alignment.
        align: usize,
    },
    /// x and y overlap without being the same buffer with the same layout.
    #[error("x and y overlap; in place needs the same pointer, stride and element size")]
    Overlap,
    /// A typed buffer is too short for the planned shape.
    #[error("{which} holds {len} elements, the plan needs {need}")]
    BufferTooShort {
        /// Which buffer.
        which: &'static str,
        /// Its length in elements.
        len: usize,
        /// The elements the plan touches.
        need: usize,
    },
    /// A typed buffer's element type differs from the plan's.
    #[error("{which} holds {got} elements but the plan expects {want}")]
    DTypeMismatch {
        /// Which buffer.
        which: &'static str,
        /// The buffer's element type.
        got: String,
        /// The plan's element type.
        want: String,
    },
    /// Compiling or loading the kernel failed.
    #[error(transparent)]
    Jit(#[from] dsa_jit_cache::JitError),
    /// The launch itself failed.
    #[error("launching {variant}: {source}")]
    Launch {
        /// The variant's id.
        variant: String,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
}

/// Result alias for this crate.
pub type Result<T, E = LayerNormError> = std::result::Result<T, E>;

impl From<dsa_jit_cache::PtrError> for LayerNormError {
    fn from(e: dsa_jit_cache::PtrError) -> Self {
        match e {
            dsa_jit_cache::PtrError::Null { name } => LayerNormError::NullPointer { which: name },
            dsa_jit_cache::PtrError::Misaligned { name, addr, align } => {
                LayerNormError::Misaligned {
                    which: name,
                    ptr: addr,
                    align: align as usize,
                }
            }
        }
    }
}
