//! The compiled forms of the top-k kernel.

use crate::config::{MAX_K, ScoreDtype};
use dsa_jit_cache::{KernelSpec, KernelVariant};
use std::fmt;

const SOURCE: &str = include_str!("kernels/topk.cu");

/// Block sizes a variant may use.
pub const THREADS: [u32; 3] = [256, 512, 1024];
/// Candidates each thread holds in registers (mirrors `ITEMS` in topk.cu).
pub const ITEMS: u32 = 32;
/// Buffer size classes: a variant serves every `k <= kmax`.
pub const KMAX: [u32; 4] = [512, 1024, 2048, MAX_K as u32];

/// One compiled top-k module (entry points `SELECT` and `MERGE`). Tie-break, output order and
/// transform are run-time arguments: they do not change the kernels' shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopkVariant {
    /// Score element type.
    pub dtype: ScoreDtype,
    /// Threads per block.
    pub threads: u32,
    /// Largest k served (sizes the shared buffer).
    pub kmax: u32,
}

impl TopkVariant {
    /// Elements per 16-byte load.
    pub fn vec(&self) -> u32 {
        self.dtype.per_vector() as u32
    }

    /// Candidates per tile: the register-resident block's share of a row (32 per thread).
    pub fn tile(&self) -> u32 {
        self.threads * ITEMS
    }

    /// Lists of `kmax` one merge block takes at once.
    pub fn merge_fan_in(&self) -> u32 {
        self.tile() / self.kmax
    }

    /// Every supported variant.
    pub fn all() -> Vec<TopkVariant> {
        let mut v = Vec::new();
        for dtype in ScoreDtype::ALL {
            for threads in THREADS {
                for kmax in KMAX {
                    v.push(TopkVariant {
                        dtype,
                        threads,
                        kmax,
                    });
                }
            }
        }
        v
    }
}

impl fmt::Display for TopkVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topk.radix[{},threads={},kmax={}]",
            self.dtype, self.threads, self.kmax
        )
    }
}

impl KernelVariant for TopkVariant {
    fn spec(&self) -> KernelSpec {
        KernelSpec::new(
            "topk",
            self.to_string(),
            SOURCE,
            vec![
                ("SCORE_T".into(), self.dtype.cuda_type().into()),
                ("VEC".into(), self.vec().to_string()),
                ("THREADS".into(), self.threads.to_string()),
                ("KMAX".into(), self.kmax.to_string()),
            ],
            &["SELECT", "MERGE"],
        )
    }
}

fn all_specs() -> Vec<KernelSpec> {
    TopkVariant::all().iter().map(KernelVariant::spec).collect()
}

dsa_jit_cache::register_family!("topk", all_specs);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_merges_and_has_a_unique_id() {
        let all = TopkVariant::all();
        let mut ids: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        for v in all {
            assert!(
                v.merge_fan_in() >= 2,
                "{v}: a merge must reduce the number of lists"
            );
        }
    }
}
