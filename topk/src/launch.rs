//! Launching a plan on a stream with raw device pointers (the path shared by the Rust API,
//! the C ABI and CUDA-graph capture).

use crate::config::{OutputOrder, RequestMap, TieBreak, Transform};
use crate::error::{Result, TopkError};
use crate::plan::TopkPlan;
use crate::variant::MAX_CLUSTER;
use crate::variant::TopkVariant;
use cudarc::driver::{CudaContext, CudaStream, DriverError, sys};
use dsa_jit_cache::{KernelCache, check_device_ptr};
use once_cell::sync::Lazy;
use std::ffi::c_void;
use std::sync::Arc;

// Each function may use the shared memory of its largest launch (a cluster's).
static KERNELS: Lazy<KernelCache<TopkVariant>> =
    Lazy::new(|| KernelCache::new(|v| v.dynamic_smem(MAX_CLUSTER, v.buffer_entries())));

/// Device pointers of one launch. All are device addresses (0 = absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopkArgs {
    /// `[rows, stride]` scores of the plan's dtype, aligned to the element size.
    pub scores: u64,
    /// `[rows]` i32 candidate counts (clamped on device to the row's capacity).
    pub lengths: u64,
    /// `[rows]` i32 first candidate per row, or 0 for none (clamped on device to `[0, stride]`).
    pub row_starts: u64,
    /// `[rows, k]` i32 output.
    pub out: u64,
    /// Workspace of at least [`TopkPlan::workspace_bytes`] bytes (currently always 0, so this
    /// may be 0), 16-byte aligned.
    pub workspace: u64,
    /// Its size in bytes.
    pub workspace_bytes: usize,
    /// The transform's data, matching the plan's [`Transform`].
    pub transform: TransformArgs,
}

/// Device data of the fused transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransformArgs {
    /// No transform.
    #[default]
    None,
    /// `[rows]` i32 offsets added to each index.
    Ragged {
        /// Device address of the offsets.
        offsets: u64,
    },
    /// Page table lookup.
    Paged {
        /// `[num_requests, stride]` i32 page table.
        page_table: u64,
        /// Entries between page-table rows.
        stride: usize,
        /// Valid columns per row (pages beyond map to -1).
        cols: usize,
        /// Rows of the page table.
        num_requests: usize,
        /// `[rows]` i32 request per row (`RequestMap::PerRow`) or `[num_requests + 1]` i32
        /// `cu_seqlens_q` (`RequestMap::CuSeqlens`).
        rows_to_requests: u64,
    },
}

/// Mirrors `topk::Params` in topk.cu field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Params {
    scores: u64,
    lengths: u64,
    row_starts: u64,
    out: u64,
    offsets: u64,
    page_table: u64,
    req_map: u64,
    cu_seqlens: u64,
    stride: i64,
    pt_stride: i64,
    rows: i32,
    k: i32,
    tie_large: i32,
    sorted: i32,
    transform: i32, // topk.cu's MapKind: 0 none, 1 ragged, 2 paged
    page_log2: i32,
    num_req: i32,
    pt_cols: i32,
    cluster: i32,
    pad: i32,
}

impl TopkPlan {
    /// Compile (or fetch from the cache) and load this plan's kernels into `ctx` now, so that
    /// the first [`TopkPlan::launch`], e.g. inside a CUDA-graph capture, does no JIT work.
    pub fn prepare(&self, ctx: &Arc<CudaContext>) -> Result<()> {
        KERNELS.get(ctx, &self.variant)?;
        Ok(())
    }

    /// Launch on `stream`. No allocation, no host synchronisation: capturable in a CUDA graph.
    ///
    /// # Safety
    /// Every non-zero pointer in `args` must be a device address valid on `stream`'s context for
    /// the shape documented on its [`TopkArgs`] field, and stay valid until the work completes.
    /// Host-visible mistakes (nulls, misalignment, a short workspace, a transform that does not
    /// match the plan) are reported as errors before anything is launched.
    pub unsafe fn launch(&self, stream: &Arc<CudaStream>, args: &TopkArgs) -> Result<()> {
        let params = self.params(args)?;
        if self.rows == 0 {
            return Ok(());
        }
        let kernel = KERNELS.get(stream.context(), &self.variant)?;
        let function = kernel.function("TOPK");
        let failed = |source: DriverError| TopkError::Launch {
            variant: self.variant.to_string(),
            source,
        };
        if self.cluster > 8 {
            // Sixteen CTAs per cluster is beyond the portable size; the opt-in is per function.
            function
                .set_attribute(
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED,
                    1,
                )
                .map_err(failed)?;
        }
        let mut attr = sys::CUlaunchAttribute {
            id: sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION,
            pad: [0; 4],
            value: sys::CUlaunchAttributeValue {
                clusterDim: sys::CUlaunchAttributeValue_union__bindgen_ty_1 {
                    x: self.cluster,
                    y: 1,
                    z: 1,
                },
            },
        };
        let config = sys::CUlaunchConfig {
            gridDimX: self.rows as u32 * self.cluster,
            gridDimY: 1,
            gridDimZ: 1,
            blockDimX: self.variant.threads,
            blockDimY: 1,
            blockDimZ: 1,
            sharedMemBytes: self.dynamic_smem(),
            hStream: stream.cu_stream(),
            attrs: &mut attr,
            numAttrs: (self.cluster > 1) as u32,
        };
        let mut param_ptrs = [&params as *const Params as *mut c_void];
        stream.context().bind_to_thread().map_err(failed)?;
        // SAFETY: the caller vouches for the pointers (see `# Safety`); the kernel clamps lengths
        // and row starts on device, so it reads only within each row's stride. `params` matches
        // the kernel's single by-value parameter, the function was loaded with this dynamic
        // shared memory allowed, and `config` outlives the call.
        unsafe {
            sys::cuLaunchKernelEx(
                &config,
                function.cu_function(),
                param_ptrs.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        }
        .result()
        .map_err(failed)
    }

    fn params(&self, a: &TopkArgs) -> Result<Params> {
        check_device_ptr("scores", a.scores, self.config.dtype.size() as u64)?;
        check_device_ptr("lengths", a.lengths, 4)?;
        check_device_ptr("out", a.out, 4)?;
        if a.row_starts != 0 {
            check_device_ptr("row_starts", a.row_starts, 4)?;
        }
        let mut p = Params {
            scores: a.scores,
            lengths: a.lengths,
            row_starts: a.row_starts,
            out: a.out,
            stride: self.stride as i64,
            rows: self.rows as i32,
            k: self.config.k as i32,
            tie_large: (self.config.tie_break == TieBreak::Large) as i32,
            sorted: (self.config.order == OutputOrder::Sorted) as i32,
            cluster: self.cluster as i32,
            ..Params::default()
        };
        match (self.config.transform, a.transform) {
            (Transform::None, TransformArgs::None) => {}
            (Transform::Ragged, TransformArgs::Ragged { offsets }) => {
                check_device_ptr("offsets", offsets, 4)?;
                p.transform = 1;
                p.offsets = offsets;
            }
            (
                Transform::Paged {
                    page_size,
                    requests,
                },
                TransformArgs::Paged {
                    page_table,
                    stride,
                    cols,
                    num_requests,
                    rows_to_requests,
                },
            ) => {
                check_device_ptr("page_table", page_table, 4)?;
                check_device_ptr("rows_to_requests", rows_to_requests, 4)?;
                if cols > stride || stride > i32::MAX as usize || num_requests > i32::MAX as usize {
                    return Err(TopkError::Mismatch(format!(
                        "page table of {num_requests} rows, stride {stride}, {cols} valid columns"
                    )));
                }
                p.transform = 2;
                p.page_table = page_table;
                p.pt_stride = stride as i64;
                p.pt_cols = cols as i32;
                p.num_req = num_requests as i32;
                p.page_log2 = page_size.trailing_zeros() as i32;
                match requests {
                    RequestMap::PerRow => p.req_map = rows_to_requests,
                    RequestMap::CuSeqlens => p.cu_seqlens = rows_to_requests,
                }
            }
            (want, got) => {
                return Err(TopkError::Mismatch(format!(
                    "plan's transform is {want:?}, arguments give {got:?}"
                )));
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopkConfig;
    use crate::plan::Tuning;
    use dsa_jit_cache::DeviceInfo;

    fn plan(config: TopkConfig, rows: usize, stride: usize) -> TopkPlan {
        TopkPlan::new(config, rows, stride, &DeviceInfo::H100, Tuning::default()).unwrap()
    }

    fn args() -> TopkArgs {
        TopkArgs {
            scores: 0x1000,
            lengths: 0x2000,
            out: 0x3000,
            ..TopkArgs::default()
        }
    }

    #[test]
    fn params_match_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Params>(), 10 * 8 + 10 * 4);
    }

    #[test]
    fn host_visible_misuse_is_rejected_before_launch() {
        let p = plan(TopkConfig::new(16), 4, 1000);
        assert!(p.params(&args()).is_ok());
        assert!(matches!(
            p.params(&TopkArgs {
                scores: 0,
                ..args()
            }),
            Err(TopkError::Null("scores"))
        ));
        assert!(matches!(
            p.params(&TopkArgs {
                out: 0x3002,
                ..args()
            }),
            Err(TopkError::Misaligned { name: "out", .. })
        ));
        assert!(matches!(
            p.params(&TopkArgs {
                transform: TransformArgs::Ragged { offsets: 0x4000 },
                ..args()
            }),
            Err(TopkError::Mismatch(_))
        ));
    }
}
