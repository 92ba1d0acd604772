//! The loaded-kernel caches and the one launch helper every stage goes through.

use crate::error::{IndexerError, Result};
use crate::variant::{PrepVariant, ScoresVariant};
use cudarc::driver::{CudaContext, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg};
use dsa_jit_cache::{KernelCache, KernelVariant};
use once_cell::sync::Lazy;
use std::sync::Arc;

/// Key and query path modules (static shared memory only).
pub(crate) static PREP: Lazy<KernelCache<PrepVariant>> = Lazy::new(|| KernelCache::new(|_| 0));
/// Scores modules (static shared memory only, under 48 KB).
pub(crate) static SCORES: Lazy<KernelCache<ScoresVariant>> = Lazy::new(|| KernelCache::new(|_| 0));

/// Compiles (or fetches) and loads both modules of a config into `ctx`.
pub(crate) fn prepare(
    ctx: &Arc<CudaContext>,
    prep: &PrepVariant,
    scores: &ScoresVariant,
) -> Result<()> {
    PREP.get(ctx, prep)?;
    SCORES.get(ctx, scores)?;
    Ok(())
}

/// Launches entry `role` of `variant` with one by-value parameter struct.
///
/// # Safety
/// `params` must describe device memory valid on `stream`'s context for the kernel's accesses
/// (each stage documents them), alive until the work completes.
pub(crate) unsafe fn launch<V: KernelVariant, P: DeviceRepr>(
    cache: &KernelCache<V>,
    variant: &V,
    role: &str,
    stream: &Arc<CudaStream>,
    grid: (u32, u32, u32),
    threads: u32,
    params: &P,
) -> Result<()> {
    let kernel = cache.get(stream.context(), variant)?;
    let cfg = LaunchConfig {
        grid_dim: grid,
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = stream.launch_builder(kernel.function(role));
    b.arg(params);
    // SAFETY: the caller vouches for the memory `params` points at (see `# Safety`); grid and
    // block come from the stage's host-side plan.
    unsafe { b.launch(cfg) }
        .map(|_| ())
        .map_err(|e| IndexerError::driver(format!("launching {variant} {role}"), e))
}
