//! The loaded-kernel caches and the one launch helper every stage goes through.

use crate::error::{IndexerError, Result};
use crate::variant::{PrepVariant, ScoresVariant};
use cudarc::driver::{CudaContext, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg};
use dsa_jit_cache::{KernelCache, KernelVariant};
use once_cell::sync::Lazy;
use std::sync::Arc;

/// Key and query path modules (static shared memory only).
pub(crate) static PREP: Lazy<KernelCache<PrepVariant>> = Lazy::new(|| KernelCache::new(|_| 0));
/// Scores modules (static shared memory under 48 KB, except the sm_90a prefill kernel's dynamic
/// shared memory, raised at each of its launches: the opt-in limit depends on the device).
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

/// Launches entry `role` of `variant` in `cfg` with one by-value parameter struct; above 48 KB of
/// dynamic shared memory the function's opt-in limit is raised to `cfg.shared_mem_bytes` first.
///
/// # Safety
/// `params` must describe device memory valid on `stream`'s context for the kernel's accesses
/// (each stage documents them), alive until the work completes.
pub(crate) unsafe fn launch<V: KernelVariant, P: DeviceRepr>(
    cache: &KernelCache<V>,
    variant: &V,
    role: &str,
    stream: &Arc<CudaStream>,
    cfg: LaunchConfig,
    params: &P,
) -> Result<()> {
    let kernel = cache.get(stream.context(), variant)?;
    let function = kernel.function(role);
    let smem = cfg.shared_mem_bytes;
    if smem > 48 * 1024 {
        function
            .set_attribute(
                cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem as i32,
            )
            .map_err(|e| {
                IndexerError::driver(format!("raising shared memory of {variant} {role}"), e)
            })?;
    }
    let mut b = stream.launch_builder(function);
    b.arg(params);
    // SAFETY: the caller vouches for the memory `params` points at (see `# Safety`); grid and
    // block come from the stage's host-side plan.
    unsafe { b.launch(cfg) }
        .map(|_| ())
        .map_err(|e| IndexerError::driver(format!("launching {variant} {role}"), e))
}
