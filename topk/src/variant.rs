//! The compiled forms of the top-k kernel.

use crate::config::{MAX_K, ScoreDtype};
use dsa_jit_cache::{KernelSpec, KernelVariant};
use std::fmt;

const SOURCE: &str = include_str!("kernels/topk.cu");

/// Block sizes a variant may use.
pub const THREADS: [u32; 3] = [256, 512, 1024];
/// Scores each thread filters per chunk (mirrors `PER_THREAD` in topk.cu).
pub const PER_THREAD: u32 = 8;
/// Scores a thread holds in registers for a resident segment (mirrors `RESIDENT`): the
/// default, and the wide form's (256 or 512 threads only: more registers a thread, fewer
/// blocks an SM).
pub const RESIDENT: u32 = 16;
/// Scores a thread holds in the wide resident form.
pub const WIDE_RESIDENT: u32 = 32;
/// Buffer size classes: a variant serves every `k <= kmax`.
pub const KMAX: [u32; 4] = [512, 1024, 2048, MAX_K as u32];
/// Largest number of CTAs sharing a row (a thread-block cluster).
pub const MAX_CLUSTER: u32 = 16;
/// Histogram bins of one radix digit (mirrors `BINS`).
const BINS: u32 = 2048;

/// One compiled top-k module (entry point `TOPK`). Tie-break, output order, transform and the
/// cluster size are run-time arguments: they do not change the kernel's shape.
///
/// A variant holds one of the kernel's two forms: *resident* (every segment fits in registers,
/// `keys` scores a thread; no buffer of `k`, so `kmax` is [`MAX_K`]) or *streaming* (the
/// candidate buffer sized by `kmax`). Compiling them apart gives each form its own register
/// allocation and halves the code NVRTC compiles per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopkVariant {
    /// Score element type.
    pub dtype: ScoreDtype,
    /// Threads per block.
    pub threads: u32,
    /// Largest k served (sizes the streaming buffer; [`MAX_K`] for the resident form).
    pub kmax: u32,
    /// The resident form (segments of at most [`TopkVariant::tile`] scores).
    pub resident: bool,
    /// Scores a thread holds in the resident form: [`RESIDENT`], or [`WIDE_RESIDENT`] with 256
    /// or 512 threads (a streaming variant keeps [`RESIDENT`]).
    pub keys: u32,
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
        self.threads * self.keys
    }

    /// Most entries of the shared buffer a launch gives: for streaming, `kmax` kept plus room
    /// for two chunks (mirrors `CAP`); for the resident form, the sort of `kmax`.
    pub fn buffer_entries(&self) -> u32 {
        if self.resident {
            self.kmax
        } else {
            self.kmax + 2 * self.chunk()
        }
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
                v.push(TopkVariant::resident(dtype, threads, RESIDENT));
                if threads <= 512 {
                    v.push(TopkVariant::resident(dtype, threads, WIDE_RESIDENT));
                }
                for kmax in KMAX {
                    v.push(TopkVariant::streaming(dtype, threads, kmax));
                }
            }
        }
        v
    }

    /// The resident form for `dtype` and `threads`, `keys` scores a thread.
    pub fn resident(dtype: ScoreDtype, threads: u32, keys: u32) -> TopkVariant {
        TopkVariant {
            dtype,
            threads,
            kmax: MAX_K as u32,
            resident: true,
            keys,
        }
    }

    /// The streaming form for `dtype`, `threads` and buffer class `kmax`.
    pub fn streaming(dtype: ScoreDtype, threads: u32, kmax: u32) -> TopkVariant {
        TopkVariant {
            dtype,
            threads,
            kmax,
            resident: false,
            keys: RESIDENT,
        }
    }
}

impl fmt::Display for TopkVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resident && self.keys != RESIDENT {
            write!(
                f,
                "topk.radix[{},threads={},resident,keys={}]",
                self.dtype, self.threads, self.keys
            )
        } else if self.resident {
            write!(
                f,
                "topk.radix[{},threads={},resident]",
                self.dtype, self.threads
            )
        } else {
            write!(
                f,
                "topk.radix[{},threads={},kmax={}]",
                self.dtype, self.threads, self.kmax
            )
        }
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
                (
                    "SEGMENTS_RESIDENT".into(),
                    u32::from(self.resident).to_string(),
                ),
                ("RESIDENT_KEYS".into(), self.keys.to_string()),
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

    /// Static shared memory of the kernel (`Shared` in topk.cu, whose list only the resident
    /// form sizes), rounded up.
    fn static_smem(v: &TopkVariant) -> u32 {
        if v.resident { 27 * 1024 } else { 19 * 1024 }
    }

    #[test]
    fn every_variant_has_a_unique_id_and_fits_in_shared_memory() {
        let all = TopkVariant::all();
        let mut ids: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        for v in all {
            let total = v.dynamic_smem(MAX_CLUSTER, v.buffer_entries()) + static_smem(&v);
            assert!(total <= 227 * 1024, "{v}: {total} bytes of shared memory");
            assert!(v.resident || v.buffer_entries() >= v.kmax + v.chunk());
        }
    }
}
