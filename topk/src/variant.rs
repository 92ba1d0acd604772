//! The compiled forms of the top-k kernel.

use crate::config::{MAX_K, ScoreDtype};
use dsa_jit_cache::{KernelSpec, KernelVariant};
use std::fmt;

const SOURCE: &str = include_str!("kernels/topk.cu");

/// Block sizes a variant may use.
pub const THREADS: [u32; 3] = [256, 512, 1024];
/// Scores each thread filters per chunk (mirrors `PER_THREAD` in topk.cu).
pub const PER_THREAD: u32 = 8;
/// Scores a thread holds in registers for a resident segment (mirrors `RESIDENT`).
pub const RESIDENT: u32 = 16;
/// Buffer size classes: a variant serves every `k <= kmax`.
pub const KMAX: [u32; 4] = [512, 1024, 2048, MAX_K as u32];
/// Largest number of CTAs sharing a row (a thread-block cluster).
pub const MAX_CLUSTER: u32 = 16;
/// Histogram bins of one radix digit (mirrors `BINS`).
const BINS: u32 = 2048;

/// One compiled top-k module (entry point `TOPK`). Tie-break, output order, transform and the
/// cluster size are run-time arguments: they do not change the kernel's shape.
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

    /// Scores a block reads per step of its segment.
    pub fn chunk(&self) -> u32 {
        self.threads * PER_THREAD
    }

    /// Longest segment (a row's share of one CTA) held in registers rather than streamed
    /// (mirrors `TILE`).
    pub fn tile(&self) -> u32 {
        self.threads * RESIDENT
    }

    /// Entries of the shared candidate buffer of a streaming launch: `kmax` kept plus room for
    /// two chunks (mirrors `CAP`).
    pub fn buffer_entries(&self) -> u32 {
        self.kmax + 2 * self.chunk()
    }

    /// Dynamic shared memory of a launch with `cluster` CTAs per row and a buffer of `entries`
    /// (8 bytes each), after three digit histograms per CTA in a cluster.
    pub fn dynamic_smem(&self, cluster: u32, entries: u32) -> u32 {
        entries * 8 + if cluster > 1 { 3 * BINS * 4 } else { 0 }
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
            &["TOPK"],
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

    /// Static shared memory of the kernel (`Shared` in topk.cu), rounded up.
    const STATIC_SMEM: u32 = 26 * 1024;

    #[test]
    fn every_variant_has_a_unique_id_and_fits_in_shared_memory() {
        let all = TopkVariant::all();
        let mut ids: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        for v in all {
            let total = v.dynamic_smem(MAX_CLUSTER, v.buffer_entries()) + STATIC_SMEM;
            assert!(total <= 227 * 1024, "{v}: {total} bytes of shared memory");
            assert!(v.buffer_entries() >= v.kmax + v.chunk());
        }
    }
}
