//! Top-k: an opaque plan made once per shape, then launched on the caller's stream.
//!
//! Contract (see `dsa_topk`'s crate docs): row `i` keeps the `k` largest of
//! `scores[i * stride + row_starts[i] + j]`, `j < lengths[i]`; NaN ranks above +inf; ties by
//! index; output `[rows, k]` i32 padded with -1; an optional fused ragged or paged transform.

use crate::check::{device_ptr, enum_value, host_out, host_ref, size, write_out};
use crate::context::{DsaDeviceInfo, DsaStream, borrow_stream, device_info};
use crate::status::{DsaStatus, FfiError, FfiResult, guard};
use dsa_jit_cache::DeviceInfo;
use dsa_topk::{
    OutputOrder, RequestMap, ScoreDtype, TieBreak, TopkArgs, TopkConfig, TopkPlan, Transform,
    TransformArgs, Tuning,
};
use std::ffi::c_void;

/// Which of two equal scores ranks higher in top-k.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaTieBreak {
    /// The smaller index (the default, 0).
    Small = 0,
    /// The larger index.
    Large = 1,
}

/// Order of each top-k output row.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaTopkOrder {
    /// Ascending index (the default, 0).
    Index = 0,
    /// Largest score first, ties by the tie-break.
    Sorted = 1,
}

/// The index transform fused into the top-k output write.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaTopkTransform {
    /// `out = idx` (the default, 0).
    None = 0,
    /// `out = idx + offsets[i]`.
    Ragged = 1,
    /// `out = page_table[req(i)][idx / P] * P + idx % P`.
    Paged = 2,
}

/// How the paged transform finds each row's request.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaRequestMap {
    /// `rows_to_requests` is `[rows]` i32: the request of each row (the default, 0).
    PerRow = 0,
    /// `rows_to_requests` is `[num_requests + 1]` i32 `cu_seqlens_q`.
    CuSeqlens = 1,
}

/// What a top-k computes. A zero-initialised struct with `k` set is the default: f32 scores,
/// ties to the smaller index, output in ascending index, no transform, heuristic launch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaTopkConfig {
    /// Indices kept per row, `1..=4096`.
    pub k: i32,
    /// Score dtype: `DSA_DTYPE_F32`, `DSA_DTYPE_BF16` or `DSA_DTYPE_F16` (a `DsaDtype`).
    pub dtype: i32,
    /// A `DsaTieBreak`.
    pub tie_break: i32,
    /// A `DsaTopkOrder`.
    pub order: i32,
    /// A `DsaTopkTransform`.
    pub transform: i32,
    /// Paged transform: tokens per page, a power of two in `1..=2^20`; ignored otherwise.
    pub page_size: i32,
    /// Paged transform: a `DsaRequestMap`; ignored otherwise.
    pub request_map: i32,
    /// Threads per block (256, 512 or 1024), or 0 for the heuristic (and tuning database).
    /// Results never depend on it.
    pub threads: i32,
    /// CTAs sharing one row (a thread-block cluster: a power of two up to 16, more than 1 only
    /// on sm_90+), or 0 for the heuristic (and tuning database). Results never depend on it.
    pub cluster: i32,
}

/// A launch knob of the config: 0 leaves it to the heuristic, a positive value is checked by
/// the plan, a negative one is an error.
fn launch_knob(name: &str, v: i32) -> FfiResult<Option<u32>> {
    match v {
        0 => Ok(None),
        v if v > 0 => Ok(Some(v as u32)),
        v => Err(FfiError::invalid(format!("{name} = {v} is negative"))),
    }
}

impl DsaTopkConfig {
    fn to_rust(self) -> FfiResult<(TopkConfig, Tuning)> {
        let k = usize::try_from(self.k).unwrap_or(0);
        let dtype = crate::float_dtype(
            "config.dtype",
            self.dtype,
            [ScoreDtype::F32, ScoreDtype::Bf16, ScoreDtype::F16],
        )?;
        let tie_break = enum_value("config.tie_break", self.tie_break, |v| match v {
            0 => Some(TieBreak::Small),
            1 => Some(TieBreak::Large),
            _ => None,
        })?;
        let order = enum_value("config.order", self.order, |v| match v {
            0 => Some(OutputOrder::Index),
            1 => Some(OutputOrder::Sorted),
            _ => None,
        })?;
        let transform = match self.transform {
            0 => Transform::None,
            1 => Transform::Ragged,
            2 => Transform::Paged {
                page_size: u32::try_from(self.page_size).map_err(|_| {
                    FfiError::invalid(format!("config.page_size = {} is negative", self.page_size))
                })?,
                requests: enum_value("config.request_map", self.request_map, |v| match v {
                    0 => Some(RequestMap::PerRow),
                    1 => Some(RequestMap::CuSeqlens),
                    _ => None,
                })?,
            },
            v => {
                return Err(FfiError::invalid(format!(
                    "config.transform = {v} is not a valid value"
                )));
            }
        };
        let tuning = Tuning {
            threads: launch_knob("config.threads", self.threads)?,
            cluster: launch_knob("config.cluster", self.cluster)?,
            // Resident scores a thread: the tuning database's or the heuristic's (the C struct
            // keeps its layout).
            keys: None,
        };
        let config = TopkConfig {
            k,
            dtype,
            tie_break,
            order,
            transform,
        };
        Ok((config, tuning))
    }
}

/// Device buffers of one top-k launch. Every pointer is a device address on the stream's
/// device; unused ones may be NULL.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DsaTopkArgs {
    /// Device, `[rows, stride]` scores of the plan's dtype, aligned to the element size.
    pub scores: *const c_void,
    /// Device, `[rows]` i32 candidate counts (clamped on the device to each row's capacity).
    pub lengths: *const c_void,
    /// Device, `[rows]` i32 first candidate of each row, or NULL for 0 (clamped to `[0, stride]`).
    pub row_starts: *const c_void,
    /// Device, `[rows, k]` i32 output.
    pub out: *mut c_void,
    /// Device workspace of `dsa_topk_plan_workspace_bytes` bytes, 16-byte aligned; NULL if that
    /// is 0. Needs no initialisation; must not be shared by launches that may run concurrently.
    pub workspace: *mut c_void,
    /// Size of `workspace` in bytes.
    pub workspace_bytes: usize,
    /// Ragged transform: device, `[rows]` i32 offsets added to each index. Else ignored.
    pub offsets: *const c_void,
    /// Paged transform: device, `[num_requests, page_table_stride]` i32 page table. Else ignored.
    pub page_table: *const c_void,
    /// Paged transform: device, `[rows]` i32 request of each row (`DSA_REQUEST_MAP_PER_ROW`) or
    /// `[num_requests + 1]` i32 `cu_seqlens_q` (`DSA_REQUEST_MAP_CU_SEQLENS`). Else ignored.
    pub rows_to_requests: *const c_void,
    /// Paged transform: i32 entries between page-table rows.
    pub page_table_stride: i64,
    /// Paged transform: valid columns of each page-table row (later pages map to -1).
    pub page_table_cols: i64,
    /// Paged transform: rows of the page table.
    pub num_requests: i64,
}

/// An opaque top-k plan: the launch fixed from host-known sizes. Thread-safe to share for
/// launches on different streams; each concurrent launch needs its own workspace.
pub struct DsaTopkPlan {
    plan: TopkPlan,
    /// The device it was planned for, or `None` when planned from a hand-written description.
    device: Option<usize>,
}

impl DsaTopkPlan {
    /// Borrow a plan handle.
    ///
    /// # Safety
    /// A non-null `plan` must come from `dsa_topk_plan_create*` and not be destroyed yet.
    unsafe fn from_ptr<'a>(plan: *const DsaTopkPlan) -> FfiResult<&'a DsaTopkPlan> {
        // SAFETY: forwarded to the caller.
        unsafe { host_ref("plan", plan) }
    }

    /// The Rust launch arguments for `a`, checked against this plan: pointers the plan uses are
    /// non-null and aligned, the workspace is large enough. The transform's arguments are
    /// taken from the fields the plan's transform uses, so they always match it.
    fn launch_args(&self, a: &DsaTopkArgs) -> FfiResult<TopkArgs> {
        let p = &self.plan;
        let elem = p.config().dtype.size();
        let scores = device_ptr("args.scores", a.scores, elem, true)?;
        let lengths = device_ptr("args.lengths", a.lengths, 4, true)?;
        let row_starts = device_ptr("args.row_starts", a.row_starts, 4, false)?;
        let out = device_ptr("args.out", a.out.cast_const(), 4, true)?;
        let need = p.workspace_bytes();
        let workspace = device_ptr("args.workspace", a.workspace.cast_const(), 16, need > 0)?;
        if need > 0 && a.workspace_bytes < need {
            return Err(FfiError::invalid(format!(
                "workspace of {} bytes is smaller than the {need} bytes the plan needs",
                a.workspace_bytes
            )));
        }
        let transform = match p.config().transform {
            Transform::None => TransformArgs::None,
            Transform::Ragged => TransformArgs::Ragged {
                offsets: device_ptr("args.offsets", a.offsets, 4, true)?,
            },
            Transform::Paged { .. } => TransformArgs::Paged {
                page_table: device_ptr("args.page_table", a.page_table, 4, true)?,
                stride: size("args.page_table_stride", a.page_table_stride)?,
                cols: size("args.page_table_cols", a.page_table_cols)?,
                num_requests: size("args.num_requests", a.num_requests)?,
                rows_to_requests: device_ptr("args.rows_to_requests", a.rows_to_requests, 4, true)?,
            },
        };
        Ok(TopkArgs {
            scores,
            lengths,
            row_starts,
            out,
            workspace,
            workspace_bytes: a.workspace_bytes,
            transform,
        })
    }
}

fn create(
    config: *const DsaTopkConfig,
    rows: i64,
    stride: i64,
    device: Option<usize>,
    info: impl FnOnce() -> FfiResult<DeviceInfo>,
    plan_out: *mut *mut DsaTopkPlan,
) -> FfiResult<()> {
    host_out("plan_out", plan_out)?;
    // SAFETY: a non-null `config` points to a DsaTopkConfig (documented).
    let (config, tuning) = unsafe { host_ref("config", config) }?.to_rust()?;
    let (rows, stride) = (size("rows", rows)?, size("stride", stride)?);
    // Validate the host-side arguments before touching any device (planning checks them
    // before reading any device fact), so bad arguments never surface as a driver error.
    let db = dsa_jit_cache::TuningDb::empty();
    TopkPlan::with_db(config, rows, stride, &DeviceInfo::H100, tuning, &db)?;
    let plan = TopkPlan::new(config, rows, stride, &info()?, tuning)?;
    let handle = Box::into_raw(Box::new(DsaTopkPlan { plan, device }));
    // SAFETY: `plan_out` is non-null and aligned (checked); the caller vouches it is writable.
    unsafe { write_out("plan_out", plan_out, handle) }
}

/// Plan a top-k over `rows` rows of `stride` scores for CUDA device `device_ordinal`.
/// Reads the device's SM count; launches nothing.
///
/// - `config`: host pointer to one `DsaTopkConfig`.
/// - `rows`: rows of scores (0 allowed: runs launch nothing); `stride`: elements between rows, `>= 1`.
/// - `plan_out`: host pointer; receives a new plan to free with `dsa_topk_plan_destroy`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_topk_plan_create(
    config: *const DsaTopkConfig,
    rows: i64,
    stride: i64,
    device_ordinal: i32,
    plan_out: *mut *mut DsaTopkPlan,
) -> DsaStatus {
    guard("dsa_topk_plan_create", || {
        let ordinal = size("device_ordinal", device_ordinal as i64)?;
        create(
            config,
            rows,
            stride,
            Some(ordinal),
            || device_info(ordinal),
            plan_out,
        )
    })
}

/// As `dsa_topk_plan_create`, for a device described by `device` (e.g. from `dsa_device_info`,
/// or written by hand to plan on a machine without a GPU). Host only.
///
/// - `device`: host pointer to one `DsaDeviceInfo`; its `ordinal` (or -1) is the device whose
///   primary context a NULL stream falls back to.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_topk_plan_create_for(
    config: *const DsaTopkConfig,
    rows: i64,
    stride: i64,
    device: *const DsaDeviceInfo,
    plan_out: *mut *mut DsaTopkPlan,
) -> DsaStatus {
    guard("dsa_topk_plan_create_for", || {
        // SAFETY: a non-null `device` points to a DsaDeviceInfo (documented).
        let d = *unsafe { host_ref("device", device) }?;
        let ordinal = usize::try_from(d.ordinal).ok();
        create(config, rows, stride, ordinal, || d.to_rust(), plan_out)
    })
}

/// Free a plan. NULL is allowed (does nothing). The plan must not be in use by another thread.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_topk_plan_destroy(plan: *mut DsaTopkPlan) -> DsaStatus {
    guard("dsa_topk_plan_destroy", || {
        if !plan.is_null() {
            // SAFETY: a non-null `plan` came from `Box::into_raw` in `create` and is destroyed
            // once (documented).
            drop(unsafe { Box::from_raw(plan) });
        }
        Ok(())
    })
}

/// Bytes of device workspace a run needs (0 when rows are not split across blocks).
///
/// - `plan`: from `dsa_topk_plan_create*`; `bytes_out`: host pointer to one `size_t`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_topk_plan_workspace_bytes(
    plan: *const DsaTopkPlan,
    bytes_out: *mut usize,
) -> DsaStatus {
    guard("dsa_topk_plan_workspace_bytes", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { DsaTopkPlan::from_ptr(plan) }?;
        // SAFETY: checked non-null and aligned inside; the caller vouches it is writable.
        unsafe { write_out("bytes_out", bytes_out, p.plan.workspace_bytes()) }
    })
}

/// The output's shape, `[rows, k]` (i32 elements, contiguous).
///
/// - `shape_out`: host pointer to an array of 2 `int64_t`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_topk_plan_output_shape(
    plan: *const DsaTopkPlan,
    shape_out: *mut i64,
) -> DsaStatus {
    guard("dsa_topk_plan_output_shape", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { DsaTopkPlan::from_ptr(plan) }?;
        host_out("shape_out", shape_out)?;
        let [rows, k] = p.plan.output_shape();
        // SAFETY: non-null and aligned (checked); documented as an array of two.
        unsafe {
            shape_out.write(rows as i64);
            shape_out.add(1).write(k as i64);
        }
        Ok(())
    })
}

/// Compile (or fetch from the cache) and load the plan's kernels into `stream`'s context, so
/// that a later run (e.g. under CUDA-graph capture) does no JIT work. Enqueues nothing.
///
/// - `stream`: the `CUstream` the runs will use (or another of its context); NULL: the current
///   context, else the plan's device.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_topk_plan_prepare(plan: *const DsaTopkPlan, stream: DsaStream) -> DsaStatus {
    guard("dsa_topk_plan_prepare", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { DsaTopkPlan::from_ptr(plan) }?;
        let s = borrow_stream(stream, p.device)?;
        Ok(p.plan.prepare(s.stream.context())?)
    })
}

/// Enqueue the top-k on `stream`. No allocation, no host synchronisation: capturable in a
/// CUDA graph (call `dsa_topk_plan_prepare` before capturing).
///
/// - `args`: host pointer to one `DsaTopkArgs` (its device pointers as documented there).
/// - `stream`: the caller's `CUstream`/`cudaStream_t` (NULL: legacy default stream of the
///   current context, else of the plan's device).
///
/// Null, misaligned or missing pointers and a short workspace give
/// `DSA_STATUS_INVALID_ARGUMENT` before anything is enqueued.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_topk_run(
    plan: *const DsaTopkPlan,
    args: *const DsaTopkArgs,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_topk_run", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { DsaTopkPlan::from_ptr(plan) }?;
        // SAFETY: a non-null `args` points to a DsaTopkArgs (documented).
        let a = p.launch_args(unsafe { host_ref("args", args) }?)?;
        let s = borrow_stream(stream, p.device)?;
        // SAFETY: the caller's pointers are device addresses of the documented shapes on the
        // stream's device (the C contract); nulls, alignment and workspace size were checked.
        unsafe { p.plan.launch(&s.stream, &a) }?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_config_with_k_is_the_rust_default() {
        let c = DsaTopkConfig {
            k: 2048,
            ..Default::default()
        };
        let (rust, tuning) = c.to_rust().unwrap();
        assert_eq!(rust, TopkConfig::new(2048));
        assert_eq!(tuning, Tuning::default());
    }
}
