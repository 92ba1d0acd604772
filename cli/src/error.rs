//! The CLI's error: what went wrong, said like a tool says it.

use std::fmt;
use std::path::PathBuf;

/// Everything a command can fail with.
#[derive(Debug)]
pub enum CliError {
    /// GPU work failed, or there is no GPU.
    Gpu(dsa_benches::Error),
    /// NVRTC missing, a compile failed, ...
    Jit(dsa_jit_cache::JitError),
    /// The indexer rejected a plan or launch, or its timing failed on the device.
    Indexer(dsa_indexer::IndexerError),
    /// The tuning database could not be read or written.
    TuningDb(dsa_jit_cache::tuning::TuningDbError),
    /// A file could not be written.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Arguments that parse but make no sense (a bad shape, an unknown arch or family).
    Usage(String),
    /// Checks ran and some failed (the details are already printed).
    Failed(String),
}

impl CliError {
    /// The process exit status for this error: 2 for usage, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Gpu(dsa_benches::Error::NoGpu(why)) => write!(
                f,
                "no GPU: {why}\n`dsa check` and `dsa jit warm` work without one"
            ),
            CliError::Gpu(e) => write!(f, "{e}"),
            CliError::Jit(e) => write!(f, "{e}"),
            CliError::Indexer(e) => write!(f, "indexer: {e}"),
            CliError::TuningDb(e) => write!(f, "tuning database: {e}"),
            CliError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CliError::Usage(m) | CliError::Failed(m) => write!(f, "{m}"),
        }
    }
}

macro_rules! via_gpu {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Gpu(e.into())
            }
        }
    )*};
}
via_gpu!(
    dsa_benches::Error,
    dsa_topk::TopkError,
    dsa_hadamard::HadamardError,
    dsa_layernorm::LayerNormError,
    dsa_indexer::collective::CollectiveError
);

impl From<dsa_indexer::IndexerError> for CliError {
    fn from(e: dsa_indexer::IndexerError) -> Self {
        CliError::Indexer(e)
    }
}

impl From<dsa_jit_cache::JitError> for CliError {
    fn from(e: dsa_jit_cache::JitError) -> Self {
        CliError::Jit(e)
    }
}

impl From<dsa_jit_cache::tuning::TuningDbError> for CliError {
    fn from(e: dsa_jit_cache::tuning::TuningDbError) -> Self {
        CliError::TuningDb(e)
    }
}

/// Result alias of the CLI.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
