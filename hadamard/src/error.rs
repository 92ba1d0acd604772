//! The crate's error type.

/// Everything a Hadamard plan or launch can reject.
#[derive(Debug, thiserror::Error)]
pub enum HadamardError {
    /// The row length is not a power of two in 2..=32768.
    #[error("row length {n} is not supported: it must be a power of two in 2..=32768")]
    BadDim {
        /// The requested row length.
        n: usize,
    },
    /// Block-128 FP8 scales need rows of at least 128 elements.
    #[error("block-128 FP8 scales need rows of at least 128 elements, got {n}")]
    GroupLargerThanRow {
        /// The requested row length.
        n: usize,
    },
    /// A row stride is smaller than the row length.
    #[error("{which} stride {stride} is smaller than the row length {n}")]
    StrideTooSmall {
        /// `input` or `output`.
        which: &'static str,
        /// The stride in elements.
        stride: usize,
        /// The row length.
        n: usize,
    },
    /// A stride is not a multiple of the vector width in elements.
    #[error("{which} stride {stride} must be a multiple of {multiple} elements (16-byte vectors)")]
    StrideMisaligned {
        /// `input` or `output`.
        which: &'static str,
        /// The stride in elements.
        stride: usize,
        /// The required multiple.
        multiple: usize,
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
    /// A device pointer is not aligned to the kernel's vector width.
    #[error("{which} pointer {ptr:#x} is not aligned to {align} bytes")]
    Misaligned {
        /// Which pointer.
        which: &'static str,
        /// Its address.
        ptr: u64,
        /// The required alignment.
        align: usize,
    },
    /// Input and output overlap without being the same buffer with the same layout.
    #[error("input and output overlap; in place needs the same pointer, stride and element size")]
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
    /// A typed buffer's element type differs from the plan's dtype.
    #[error("{which} buffer holds {got} elements but the plan expects {want}")]
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
pub type Result<T, E = HadamardError> = std::result::Result<T, E>;

impl From<dsa_jit_cache::PtrError> for HadamardError {
    fn from(e: dsa_jit_cache::PtrError) -> Self {
        match e {
            dsa_jit_cache::PtrError::Null { name } => HadamardError::NullPointer { which: name },
            dsa_jit_cache::PtrError::Misaligned { name, addr, align } => {
                HadamardError::Misaligned {
                    which: name,
                    ptr: addr,
                    align: align as usize,
                }
            }
        }
    }
}
