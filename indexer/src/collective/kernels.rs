//! The verification kernels: variants, launch configuration and launchers on raw pointers.
//!
//! Every launcher works on caller-provided memory and an explicit stream, allocates nothing on
//! the device and never syncs the host, so it can be captured in a CUDA graph.

use super::error::{CollectiveError, Result};
use super::workspace::{IndexRows, VerifyWorkspace};
use cudarc::driver::{CudaStream, LaunchConfig, PushKernelArg};
use dsa_jit_cache::{KernelCache, KernelSpec, KernelVariant};
use once_cell::sync::Lazy;
use std::fmt;

const SOURCE: &str = include_str!("verify.cu");

/// Block sizes the verify kernels are compiled for.
pub const BLOCK_SIZES: [u32; 2] = [128, 256];

/// One compiled form of the verify kernels (`FINGERPRINT`, `MIN_RANKS`, `COMPARE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerifyKernels {
    /// Threads per block (a multiple of 32).
    pub block: u32,
}

impl VerifyKernels {
    /// The variant used for rows of `k` indices: 128 threads up to k = 1024, else 256.
    pub fn for_k(k: usize) -> Self {
        VerifyKernels {
            block: if k <= 1024 { 128 } else { 256 },
        }
    }
}

impl fmt::Display for VerifyKernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "collective.verify[block={}]", self.block)
    }
}

impl KernelVariant for VerifyKernels {
    fn spec(&self) -> KernelSpec {
        KernelSpec::new(
            "collective",
            self.to_string(),
            SOURCE,
            vec![("BLOCK".into(), self.block.to_string())],
            &["FINGERPRINT", "MIN_RANKS", "COMPARE"],
        )
    }
}

/// Every supported variant's spec (the registry's list for the all-variants compile test).
pub fn all_specs() -> Vec<KernelSpec> {
    BLOCK_SIZES
        .iter()
        .map(|&block| VerifyKernels { block }.spec())
        .collect()
}

dsa_jit_cache::register_family!("collective", all_specs);

static CACHE: Lazy<KernelCache<VerifyKernels>> = Lazy::new(|| KernelCache::new(|_| 0));

fn blocks(n: usize, block: u32) -> Result<u32> {
    u32::try_from(n.div_ceil(block as usize))
        .map_err(|_| CollectiveError::shape("verify", format!("{n} elements need too many blocks")))
}

fn launch_err(what: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> CollectiveError {
    move |e| CollectiveError::driver(format!("launching {what}"), e)
}

/// Writes the packed fingerprints of `indices` into rank slot `slot` of `ws` and zeroes the
/// mismatch count.
pub fn launch_fingerprint(
    indices: &IndexRows<'_>,
    ws: &VerifyWorkspace<'_>,
    slot: usize,
    stream: &CudaStream,
) -> Result<()> {
    let layout = ws.layout();
    if indices.rows() != layout.rows || slot >= layout.slots {
        return Err(CollectiveError::shape(
            "verify",
            format!(
                "{} index rows into slot {slot} of a workspace for {} rows x {} slots",
                indices.rows(),
                layout.rows,
                layout.slots
            ),
        ));
    }
    let variant = VerifyKernels::for_k(indices.k());
    let kernel = CACHE.get(stream.context(), &variant)?;
    let (idx, rows, k) = (indices.ptr(), indices.rows() as u64, indices.k() as u32);
    let (packed, count) = (ws.packed_ptr(slot), ws.count_ptr());
    let cfg = LaunchConfig {
        grid_dim: (indices.rows() as u32, 1, 1),
        block_dim: (variant.block, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = stream.launch_builder(kernel.function("FINGERPRINT"));
    b.arg(&idx).arg(&rows).arg(&k).arg(&packed).arg(&count);
    // SAFETY: IndexRows guarantees rows * k readable i32 at idx; VerifyWorkspace guarantees the
    // layout's bytes at ws, so slot `slot` (< slots) holds 2 * rows u64 and the count a u32.
    // The grid has one block per row and each block reads only its row.
    unsafe { b.launch(cfg) }.map_err(launch_err("the fingerprint kernel"))?;
    Ok(())
}

/// Reduces the workspace's `ranks` slots into slot 0 with MIN (what the all-reduce does).
pub fn launch_min_ranks(ws: &VerifyWorkspace<'_>, k: usize, stream: &CudaStream) -> Result<()> {
    let layout = ws.layout();
    let variant = VerifyKernels::for_k(k);
    let kernel = CACHE.get(stream.context(), &variant)?;
    let n = 2 * layout.rows;
    let (packed, n64, ranks) = (ws.packed_ptr(0), n as u64, layout.slots as u32);
    let cfg = LaunchConfig {
        grid_dim: (blocks(n, variant.block)?, 1, 1),
        block_dim: (variant.block, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = stream.launch_builder(kernel.function("MIN_RANKS"));
    b.arg(&packed).arg(&n64).arg(&ranks);
    // SAFETY: the workspace holds `slots` packed buffers of 2 * rows u64 back to back; threads
    // with i >= n return before touching memory.
    unsafe { b.launch(cfg) }.map_err(launch_err("the rank reduction kernel"))?;
    Ok(())
}

/// Flags the rows whose reduced min and max fingerprints differ and adds them to the count.
pub fn launch_compare(ws: &VerifyWorkspace<'_>, k: usize, stream: &CudaStream) -> Result<()> {
    let layout = ws.layout();
    let variant = VerifyKernels::for_k(k);
    let kernel = CACHE.get(stream.context(), &variant)?;
    let (packed, rows, flags, count) = (
        ws.packed_ptr(0),
        layout.rows as u64,
        ws.flags_ptr(),
        ws.count_ptr(),
    );
    let cfg = LaunchConfig {
        grid_dim: (blocks(layout.rows, variant.block)?, 1, 1),
        block_dim: (variant.block, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = stream.launch_builder(kernel.function("COMPARE"));
    b.arg(&packed).arg(&rows).arg(&flags).arg(&count);
    // SAFETY: slot 0 holds 2 * rows u64, flags rows u32 and count one u32 (workspace layout);
    // threads with i >= rows only take part in the block count.
    unsafe { b.launch(cfg) }.map_err(launch_err("the compare kernel"))?;
    Ok(())
}

/// Verification of several ranks simulated on one GPU: fingerprints every rank's indices into
/// its slot, reduces with MIN as NCCL would, and flags and counts the differing rows. Read the
/// result with [`VerifyWorkspace::read_report`]. The workspace needs
/// [`super::WorkspaceLayout::simulation`]`(rows, ranks.len())`.
pub fn simulate_ranks(
    ranks: &[IndexRows<'_>],
    ws: &VerifyWorkspace<'_>,
    stream: &CudaStream,
) -> Result<()> {
    let Some(first) = ranks.first() else {
        return Err(CollectiveError::shape("simulate_ranks", "no ranks given"));
    };
    if ranks.len() != ws.layout().slots {
        return Err(CollectiveError::shape(
            "simulate_ranks",
            format!(
                "{} ranks but the workspace has {} slots",
                ranks.len(),
                ws.layout().slots
            ),
        ));
    }
    if let Some(r) = ranks
        .iter()
        .find(|r| (r.rows(), r.k()) != (first.rows(), first.k()))
    {
        return Err(CollectiveError::shape(
            "simulate_ranks",
            format!(
                "ranks disagree on the shape: {}x{} vs {}x{}",
                first.rows(),
                first.k(),
                r.rows(),
                r.k()
            ),
        ));
    }
    for (slot, r) in ranks.iter().enumerate() {
        launch_fingerprint(r, ws, slot, stream)?;
    }
    launch_min_ranks(ws, first.k(), stream)?;
    launch_compare(ws, first.k(), stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_named_and_chosen_by_k() {
        assert_eq!(VerifyKernels::for_k(64).block, 128);
        assert_eq!(VerifyKernels::for_k(2048).block, 256);
        let specs = all_specs();
        assert_eq!(specs.len(), BLOCK_SIZES.len());
        let s = &specs[1];
        assert_eq!(s.id, "collective.verify[block=256]");
        for role in ["FINGERPRINT", "MIN_RANKS", "COMPARE"] {
            assert!(s.symbol(role).starts_with("dsa_collective_"));
            assert!(SOURCE.contains(&format!("DSA_ENTRY_{role}(")));
        }
    }
}
