//! Launching a plan on a stream with raw device pointers (the path shared by the Rust API,
//! the C ABI and CUDA-graph capture).

use crate::config::{OutputOrder, RequestMap, TieBreak, Transform};
use crate::error::{Result, TopkError};
use crate::plan::TopkPlan;
use crate::variant::TopkVariant;
use cudarc::driver::{CudaContext, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg};
use dsa_jit_cache::{KernelCache, check_device_ptr};
use once_cell::sync::Lazy;
use std::sync::Arc;

// The kernels use static shared memory only (under 48 KB), so no opt-in is needed.
static KERNELS: Lazy<KernelCache<TopkVariant>> = Lazy::new(|| KernelCache::new(|_| 0));

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
    /// Workspace of at least [`TopkPlan::workspace_bytes`] bytes, 16-byte aligned (0 if none needed).
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
    ws: [u64; 2],
    ws_count: [u64; 2],
    offsets: u64,
    page_table: u64,
    req_map: u64,
    cu_seqlens: u64,
    stride: i64,
    pt_stride: i64,
    ws_lists: [i64; 2],
    rows: i32,
    k: i32,
    tie_large: i32,
    sorted: i32,
    transform: i32,
    page_log2: i32,
    num_req: i32,
    pt_cols: i32,
}

// SAFETY: `Params` is `repr(C)` plain data matching the kernel's by-value parameter.
unsafe impl DeviceRepr for Params {}

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
        let rows = self.rows as u32;
        let launch = |role: &str, grid: (u32, u32, u32), extra: &[i32]| -> Result<()> {
            let cfg = LaunchConfig {
                grid_dim: grid,
                block_dim: (self.variant.threads, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut b = stream.launch_builder(kernel.function(role));
            b.arg(&params);
            for x in extra {
                b.arg(x);
            }
            // SAFETY: the caller vouches for the pointers (see `# Safety`); the kernel clamps
            // lengths and row starts on device, so it reads only within each row's stride, and
            // the workspace layout matches `ws_layout`.
            unsafe { b.launch(cfg) }
                .map(|_| ())
                .map_err(|source| TopkError::Launch {
                    variant: self.variant.to_string(),
                    source,
                })
        };
        launch("SELECT", (rows, self.parts, 1), &[self.parts as i32])?;
        let (mut lists, mut in_buf) = (self.parts as i32, 0);
        for groups in self.merge_levels() {
            launch("MERGE", (rows, groups, 1), &[lists, in_buf, groups as i32])?;
            lists = groups as i32;
            in_buf = 1 - in_buf;
        }
        Ok(())
    }

    fn params(&self, a: &TopkArgs) -> Result<Params> {
        check_device_ptr("scores", a.scores, self.config.dtype.size() as u64)?;
        check_device_ptr("lengths", a.lengths, 4)?;
        check_device_ptr("out", a.out, 4)?;
        if a.row_starts != 0 {
            check_device_ptr("row_starts", a.row_starts, 4)?;
        }
        let need = self.workspace_bytes();
        if need > 0 {
            check_device_ptr("workspace", a.workspace, 16)?;
            if a.workspace_bytes < need {
                return Err(TopkError::Workspace {
                    given: a.workspace_bytes,
                    needed: need,
                });
            }
        }
        let (offsets, _) = self.ws_layout();
        let at = |i: usize| {
            if need > 0 {
                a.workspace + offsets[i] as u64
            } else {
                0
            }
        };
        let [l0, l1] = self.ws_lists();
        let mut p = Params {
            scores: a.scores,
            lengths: a.lengths,
            row_starts: a.row_starts,
            out: a.out,
            ws: [at(0), at(1)],
            ws_count: [at(2), at(3)],
            ws_lists: [l0 as i64, l1 as i64],
            stride: self.stride as i64,
            rows: self.rows as i32,
            k: self.config.k as i32,
            tie_large: (self.config.tie_break == TieBreak::Large) as i32,
            sorted: (self.config.order == OutputOrder::Sorted) as i32,
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
        assert_eq!(std::mem::size_of::<Params>(), 12 * 8 + 4 * 8 + 8 * 4);
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
        let split = plan(TopkConfig::new(16), 1, 1 << 20);
        assert!(split.workspace_bytes() > 0);
        assert!(matches!(
            split.params(&args()),
            Err(TopkError::Null("workspace"))
        ));
        let short = TopkArgs {
            workspace: 0x10000,
            workspace_bytes: 16,
            ..args()
        };
        assert!(matches!(
            split.params(&short),
            Err(TopkError::Workspace { .. })
        ));
    }
}
