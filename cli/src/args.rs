//! The command line (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::path::PathBuf;

/// dsa-kernels: self-check, benchmarks, autotuning and JIT cache management for the DeepSeek
/// Sparse Attention indexer's CUDA kernels.
#[derive(Parser, Debug)]
#[command(name = "dsa", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile and run every op against its CPU reference (without a GPU: compile every
    /// variant through NVRTC and check the CPU references).
    Check(CheckArgs),
    /// Time an op on the GPU: median time, GB/s and % of the copy-bandwidth floor.
    Bench(BenchArgs),
    /// Search launch parameters per shape bucket and record the winners in the tuning database.
    Tune(TuneArgs),
    /// Manage the JIT cache of compiled kernels.
    Jit {
        /// The cache action.
        #[command(subcommand)]
        action: JitAction,
    },
}

/// `dsa check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Only these kernel families (default: all registered: collective, hadamard, layernorm, topk).
    #[arg(long = "family", value_name = "NAME", value_delimiter = ',')]
    pub families: Vec<String>,
    /// Without a GPU: compile for these targets (default: sm_80, sm_90a, sm_100).
    #[arg(long = "arch", value_name = "SM", value_delimiter = ',')]
    pub archs: Vec<String>,
}

/// `dsa bench <op>`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The op and its shapes.
    #[command(subcommand)]
    pub op: BenchOp,
    /// Write the results as JSON to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw achieved bandwidth across shapes to this SVG file.
    #[arg(long, global = true, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Score / element types on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
}

/// Top-k's fused index transforms on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransformKind {
    /// Indices as they are.
    None,
    /// Each index plus a per-row offset.
    Ragged,
    /// Each index through a page table (one request a row).
    Paged,
}

/// Top-k shape options (shared by bench and tune).
#[derive(Args, Debug, Clone)]
pub struct TopkShapeArgs {
    /// Decode row counts (default 1,8,64,256).
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub rows: Vec<usize>,
    /// Decode row lengths (default 8192,32768,131072,262144).
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub lengths: Vec<usize>,
    /// Causal prefill token counts (default 4096,16384 when no --rows/--lengths are given).
    #[arg(long, value_delimiter = ',', value_name = "T")]
    pub prefill: Vec<usize>,
    /// Indices kept per row.
    #[arg(long, default_value_t = 2048)]
    pub k: usize,
    /// Score types.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "f32")]
    pub dtype: Vec<Dtype>,
}

/// Row-wise op shape options.
#[derive(Args, Debug, Clone)]
pub struct RowShapeArgs {
    /// Row lengths (dims).
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub dims: Vec<usize>,
    /// Rows (default: the per dim).
    #[arg(long, value_name = "N")]
    pub rows: Option<usize>,
    /// Element type (input and output).
    #[arg(long, value_enum, default_value = "bf16")]
    pub dtype: Dtype,
}

/// The ops `dsa bench` times.
#[derive(Subcommand, Debug)]
pub enum BenchOp {
    /// Top-k (default: decode {1,8,64,256} x {8K,32K,128K,256K}, 1024x8192, prefill 4096 and 16384; k = 2048).
    Topk {
        /// Shapes.
        #[command(flatten)]
        shape: TopkShapeArgs,
        /// Index transforms fused into the write; each shape runs once with each.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "none")]
        transform: Vec<TransformKind>,
        /// Tokens a page of the paged transform (a power of two; 1 is sglang's).
        #[arg(long, default_value_t = 1, value_name = "N")]
        page_size: u32,
    },
    /// Hadamard transform (default: 1M x 128, and 2^27 elements of dims 1024..32768).
    Hadamard {
        /// Shapes.
        #[command(flatten)]
        shape: RowShapeArgs,
        /// Fused FP8 output with one scale per 128 elements instead of a float output.
        #[arg(long)]
        fp8: bool,
    },
    /// LayerNorm with gamma and beta (default: 1M x 128 and 64K x 7168, bf16).
    Layernorm {
        /// Shapes.
        #[command(flatten)]
        shape: RowShapeArgs,
        /// RMSNorm instead of LayerNorm.
        #[arg(long)]
        rms: bool,
    },
    /// The indexer (DeepSeek-V3.2 config): decode scores vs the HBM floor, causal prefill scores
    /// vs the FP8 tensor-core peak, and the whole decode step eager and as a CUDA graph.
    Indexer(IndexerBenchArgs),
    /// The collective layer: verify kernels, and with NCCL the verify and broadcast at world size 1.
    CollectiveVerify {
        /// Rows of indices (default 1,8,64,256).
        #[arg(long, value_delimiter = ',', value_name = "N")]
        rows: Vec<usize>,
        /// Indices per row.
        #[arg(long, default_value_t = 2048)]
        k: usize,
    },
}

/// A decode batch: `batch` requests of `context` cached keys each, written `BxL` (`64x65536`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchContext {
    /// Requests.
    pub batch: usize,
    /// Keys per request.
    pub context: usize,
}

impl fmt::Display for BatchContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.batch, self.context)
    }
}

impl std::str::FromStr for BatchContext {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not BATCHxCONTEXT (e.g. 64x65536)");
        let (b, l) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        Ok(BatchContext {
            batch: b.trim().parse().map_err(|_| bad())?,
            context: l.trim().parse().map_err(|_| bad())?,
        })
    }
}

/// The figures of `dsa bench indexer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IndexerPart {
    /// Decode scores kernel (floor: FP8 key cache + scales read at the copy bandwidth).
    Decode,
    /// Causal prefill scores kernel (floor: useful FLOPs at the FP8 tensor-core peak).
    Prefill,
    /// The whole decode step (key path, query path, scores, paged top-k), eager and graph.
    Step,
}

/// `dsa bench indexer` options.
#[derive(Args, Debug, Clone)]
pub struct IndexerBenchArgs {
    /// Decode scores shapes, BATCHxCONTEXT.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "BxL",
        default_value = "64x65536,1x65536,64x8192"
    )]
    pub decode: Vec<BatchContext>,
    /// Causal prefill token counts for the prefill scores.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "T",
        default_value = "8192,4096"
    )]
    pub prefill: Vec<usize>,
    /// Whole decode step shapes, BATCHxCONTEXT.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "BxL",
        default_value = "64x65536"
    )]
    pub step: Vec<BatchContext>,
    /// Which figures to time (default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PART")]
    pub only: Vec<IndexerPart>,
    /// Runs discarded before timing each figure.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 100)]
    pub iters: usize,
    /// Dense FP8 tensor-core peak in TFLOP/s for the prefill floor (default: the datasheet
    /// figure of a known GPU).
    #[arg(long, value_name = "TFLOPS")]
    pub fp8_peak_tflops: Option<f64>,
}

/// `dsa tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The op to tune.
    #[command(subcommand)]
    pub op: Option<TuneOp>,
    /// Show the database's tuned vs default speedups instead of tuning.
    #[arg(long)]
    pub report: bool,
    /// The tuning database (default: $DSA_TUNING_DB, else tuning.json in the JIT cache folder).
    #[arg(long, global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,
}

/// The ops `dsa tune` searches.
#[derive(Subcommand, Debug)]
pub enum TuneOp {
    /// Top-k: threads per block (tile size), per (dtype, k class, rows, stride) bucket
    /// (default: the decode shapes and 1024x8192).
    Topk(TopkShapeArgs),
}

/// `dsa jit ...`.
#[derive(Subcommand, Debug)]
pub enum JitAction {
    /// Compile every registered variant ahead of time (no GPU needed).
    Warm {
        /// Targets (default: sm_80, sm_90a, sm_100, plus this machine's GPU if any).
        #[arg(long = "arch", value_name = "SM", value_delimiter = ',')]
        archs: Vec<String>,
        /// Only these kernel families.
        #[arg(long = "family", value_name = "NAME", value_delimiter = ',')]
        families: Vec<String>,
        /// Compile threads (default: the machine's cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// List the cache folder's entries with their sizes (and variants, where known).
    Ls,
    /// Remove every cache entry.
    Clear,
    /// Time a cold compile, a disk hit in a new process and a memory hit of a real top-k kernel.
    Bench {
        /// Target (default: this machine's GPU, else sm_90a).
        #[arg(long, value_name = "SM")]
        arch: Option<String>,
    },
    /// (internal) Time one disk hit in this fresh process; used by `dsa jit bench`.
    #[command(hide = true)]
    DiskProbe {
        /// The cache folder to read.
        #[arg(long)]
        dir: PathBuf,
        /// Target.
        #[arg(long)]
        arch: String,
    },
}
