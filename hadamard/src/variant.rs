//! The typed kernel variant: everything that changes the compiled binary.

use crate::{DType, Output, ScaleGroup};
use dsa_jit_cache::{KernelSpec, KernelVariant};
use std::fmt;

/// Smallest supported row length (log2).
pub const MIN_LOG_N: u32 = 1;
/// Largest supported row length (log2): 32768.
pub const MAX_LOG_N: u32 = 15;
/// Rows up to this length run in registers and warp shuffles; longer rows run on persistent CTAs
/// of `n / 32` threads, three register phases joined by two shared-memory transposes.
pub const MAX_REGISTER_N: usize = 1024;
/// The largest opt-in shared memory per block of any supported GPU (sm_90, sm_100): staged
/// variants above it are never launched, so they are not enumerated.
pub const MAX_SMEM_OPTIN: u32 = 227 * 1024;
/// The entry point's role (both kernel shapes export one entry, `DSA_ENTRY_FWHT`).
pub const ROLE: &str = "FWHT";
/// Elements per FP8 scale for [`ScaleGroup::Block128`].
pub const FP8_BLOCK: usize = 128;

/// One compiled form of the transform: input dtype, output kind and row length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HadamardVariant {
    /// Input element type.
    pub input: DType,
    /// Output element type, or FP8 with its scale grouping.
    pub output: Output,
    /// log2 of the row length.
    pub log_n: u32,
    /// Rows longer than [`MAX_REGISTER_N`] only: prefetch the next row into a shared-memory
    /// stage with `cp.async` while this one is transformed (needs `n * sizeof(input)` more
    /// shared memory). Always `false` for shorter rows.
    pub stage: bool,
}

impl HadamardVariant {
    /// The row length.
    pub fn n(&self) -> usize {
        1 << self.log_n
    }

    /// Whether rows go through the register/shuffle kernel.
    pub fn is_small(&self) -> bool {
        self.n() <= MAX_REGISTER_N
    }

    /// Threads per block (`n / 32` for long rows: 32 elements per thread).
    pub fn block_threads(&self) -> u32 {
        if self.is_small() {
            128
        } else {
            (self.n() / 32) as u32
        }
    }

    /// Rows handled by one block (long rows: blocks are persistent and loop over rows).
    pub fn rows_per_block(&self) -> usize {
        if self.is_small() {
            // Mirrors the kernel: EPT elements per thread, n / EPT lanes per row.
            let n = self.n();
            let ept = if n <= 8 { n } else { (n / 32).max(8) };
            4 * (32 / (n / ept))
        } else {
            1
        }
    }

    /// Dynamic shared memory in bytes: for long rows the row in f32 plus 32 floats, plus the
    /// input stage when [`HadamardVariant::stage`] is set.
    pub fn smem_bytes(&self) -> u32 {
        if self.is_small() {
            0
        } else {
            let stage = if self.stage {
                self.n() * self.input.size()
            } else {
                0
            };
            (self.n() * 4 + 32 * 4 + stage) as u32
        }
    }

    /// The same variant without the input stage.
    pub fn unstaged(self) -> HadamardVariant {
        HadamardVariant {
            stage: false,
            ..self
        }
    }

    /// The variant a plan prefers: staged for long rows when some supported GPU can hold it.
    pub fn preferred(input: DType, output: Output, log_n: u32) -> HadamardVariant {
        let staged = HadamardVariant {
            input,
            output,
            log_n,
            stage: true,
        };
        if !staged.is_small() && staged.smem_bytes() <= MAX_SMEM_OPTIN {
            staged
        } else {
            staged.unstaged()
        }
    }

    /// The entry point's role (both kernel shapes export one entry, `DSA_ENTRY_FWHT`).
    pub const ROLE: &str = "FWHT";
    /// Elements per FP8 scale (the row length for per-row scales); `None` for float outputs.
    pub fn fp8_group(&self) -> Option<usize> {
        match self.output {
            Output::Float(_) => None,
            Output::Fp8 {
                group: ScaleGroup::Row,
            } => Some(self.n()),
            Output::Fp8 {
                group: ScaleGroup::Block128,
            } => Some(FP8_BLOCK),
        }
    }

    /// Every variant the launcher can pick: every dim, input dtype and output kind
    /// (block-128 scales only for rows of at least 128 elements).
    pub fn all() -> Vec<HadamardVariant> {
        let mut v = Vec::new();
        for log_n in MIN_LOG_N..=MAX_LOG_N {
            for input in DType::ALL {
                let mut outputs: Vec<Output> =
                    DType::ALL.iter().map(|&d| Output::Float(d)).collect();
                outputs.push(Output::Fp8 {
                    group: ScaleGroup::Row,
                });
                if (1usize << log_n) >= FP8_BLOCK {
                    outputs.push(Output::Fp8 {
                        group: ScaleGroup::Block128,
                    });
                }
                for output in outputs {
                    let preferred = HadamardVariant::preferred(input, output, log_n);
                    v.push(preferred.unstaged());
                    if preferred.stage {
                        v.push(preferred);
                    }
                }
            }
        }
        v
    }
}

impl fmt::Display for HadamardVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.output {
            Output::Float(o) => write!(f, "hadamard.fwht[{}->{o},n={}", self.input, self.n())?,
            Output::Fp8 { group } => write!(
                f,
                "hadamard.fwht_fp8[{}->e4m3,n={},scale={group}",
                self.input,
                self.n()
            )?,
        }
        if self.stage {
            f.write_str(",stage=smem")?;
        }
        f.write_str("]")
    }
}

impl KernelVariant for HadamardVariant {
    fn spec(&self) -> KernelSpec {
        let (out_t, fp8) = match self.output {
            Output::Float(d) => (d.cuda_type(), 0),
            Output::Fp8 { .. } => ("dsa::fp8e4m3", 1),
        };
        let group = self.fp8_group().unwrap_or(self.n());
        let defines = vec![
            ("IN_T".into(), self.input.cuda_type().into()),
            ("OUT_T".into(), out_t.into()),
            ("OUT_FP8".into(), fp8.to_string()),
            ("LOG_N".into(), self.log_n.to_string()),
            ("GROUP".into(), group.to_string()),
            ("STAGE".into(), (self.stage as u32).to_string()),
        ];
        KernelSpec::new(
            "hadamard",
            self.to_string(),
            include_str!("kernels/hadamard.cu"),
            defines,
            &[ROLE],
        )
    }
}

/// Every supported variant's spec (registered for the workspace compile test).
pub fn all_specs() -> Vec<KernelSpec> {
    HadamardVariant::all().iter().map(|v| v.spec()).collect()
}

dsa_jit_cache::register_family!("hadamard", all_specs);
