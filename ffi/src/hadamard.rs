//! Fast Walsh-Hadamard transform (optionally fused with FP8 e4m3 quantization). Plans are
//! host-only and cheap, so the C API takes the parameters on every call; no workspace.
//!
//! Contract (see `dsa_hadamard`'s crate docs): `y = x @ H_n * scale` per row, `H_n` in
//! Sylvester order, `n` a power of two in `2..=32768`; FP8 writes e4m3 bytes and one f32 scale
//! per row or per 128 elements.

use crate::DsaDtype;
use crate::check::{device_ptr, enum_value, host_ref, size, stride_or, write_out};
use crate::context::{DsaStream, borrow_stream};
use crate::status::{DsaStatus, FfiError, FfiResult, guard};
use dsa_hadamard::{DType, Hadamard, HadamardConfig, Output, ScaleGroup};
use std::ffi::c_void;

/// Which elements share one FP8 scale.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaScaleGroup {
    /// One scale per row (the default, 0).
    Row = 0,
    /// One scale per 128 consecutive elements (needs `n >= 128`).
    Block128 = 1,
}

/// One Hadamard transform's shape, types and scale. Strides of 0 mean contiguous rows (`n`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DsaHadamardParams {
    /// Row length, a power of two in `2..=32768`.
    pub n: i64,
    /// Rows (0 allowed: nothing is launched).
    pub rows: i64,
    /// Elements between input rows (`>= n`, a multiple of the 16-byte vector), or 0 for `n`.
    pub in_stride: i64,
    /// Elements (bytes for FP8) between output rows, or 0 for `n`.
    pub out_stride: i64,
    /// Input dtype: `DSA_DTYPE_F32`, `DSA_DTYPE_BF16` or `DSA_DTYPE_F16`.
    pub input_dtype: i32,
    /// Output dtype: a float dtype, or `DSA_DTYPE_FP8_E4M3` (then `scales` is written).
    pub output_dtype: i32,
    /// FP8 only: a `DsaScaleGroup`.
    pub scale_group: i32,
    /// FP8 only: non-zero rounds each scale up to a power of two.
    pub pow2_scales: i32,
    /// Multiplier after the transform; 0 means the default `1/sqrt(n)` (orthonormal).
    pub scale: f32,
}

/// Sizes a Hadamard call touches, in elements of each buffer's type.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaHadamardSizes {
    /// Elements the input must hold: `(rows - 1) * in_stride + n`.
    pub input_len: u64,
    /// Elements (bytes for FP8) the output must hold.
    pub output_len: u64,
    /// f32 scales written (`rows * n / group`), 0 for float outputs; contiguous `[rows, n / group]`.
    pub scales_len: u64,
}

fn float(name: &str, v: i32) -> FfiResult<DType> {
    crate::float_dtype(name, v, [DType::F32, DType::Bf16, DType::F16])
}

impl DsaHadamardParams {
    fn plan(&self) -> FfiResult<Hadamard> {
        let n = size("params.n", self.n)?;
        let input = float("params.input_dtype", self.input_dtype)?;
        let output = match enum_value("params.output_dtype", self.output_dtype, DsaDtype::from_i32)?
        {
            DsaDtype::Fp8E4m3 => Output::Fp8 {
                group: enum_value("params.scale_group", self.scale_group, |v| match v {
                    0 => Some(ScaleGroup::Row),
                    1 => Some(ScaleGroup::Block128),
                    _ => None,
                })?,
            },
            _ => Output::Float(float("params.output_dtype", self.output_dtype)?),
        };
        if !self.scale.is_finite() {
            return Err(FfiError::invalid(format!(
                "params.scale = {} is not finite",
                self.scale
            )));
        }
        let mut cfg = HadamardConfig::new(n, size("params.rows", self.rows)?, input, output)
            .with_strides(
                stride_or("params.in_stride", self.in_stride, n)?,
                stride_or("params.out_stride", self.out_stride, n)?,
            )
            .with_pow2_scales(self.pow2_scales != 0);
        if self.scale != 0.0 {
            cfg = cfg.with_scale(self.scale);
        }
        Ok(Hadamard::plan(cfg)?)
    }
}

/// Validate `params` and report the buffer sizes a call touches. Host only.
///
/// - `params`: host pointer to one `DsaHadamardParams`; `sizes_out`: host pointer to one
///   `DsaHadamardSizes`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_hadamard_sizes(
    params: *const DsaHadamardParams,
    sizes_out: *mut DsaHadamardSizes,
) -> DsaStatus {
    guard("dsa_hadamard_sizes", || {
        // SAFETY: a non-null `params` points to a DsaHadamardParams (documented).
        let plan = unsafe { host_ref("params", params) }?.plan()?;
        let sizes = DsaHadamardSizes {
            input_len: plan.input_len() as u64,
            output_len: plan.output_len() as u64,
            scales_len: plan.scales_len() as u64,
        };
        // SAFETY: checked non-null and aligned inside; the caller vouches it is writable.
        unsafe { write_out("sizes_out", sizes_out, sizes) }
    })
}

/// Compile (or fetch) and load the kernel into `stream`'s context (NULL: the current context)
/// before CUDA-graph capture. Enqueues nothing.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_hadamard_prepare(
    params: *const DsaHadamardParams,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_hadamard_prepare", || {
        // SAFETY: a non-null `params` points to a DsaHadamardParams (documented).
        let plan = unsafe { host_ref("params", params) }?.plan()?;
        let s = borrow_stream(stream, None)?;
        Ok(plan.prepare(s.stream.context())?)
    })
}

/// Enqueue the transform on `stream` (the caller's `CUstream`; NULL: the current context's
/// legacy default stream). No allocation, no host sync: capturable in a CUDA graph.
///
/// - `input`: device, `[rows, in_stride]` of `input_dtype`, aligned to one 16-byte vector
///   (`min(16, n * size)` bytes).
/// - `output`: device, `[rows, out_stride]` of `output_dtype` (bytes for FP8). May equal
///   `input` (in place) with equal strides and element sizes; any other overlap is an error.
/// - `scales`: FP8 only, device, `[rows, n / group]` f32; NULL for float outputs.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_hadamard_run(
    params: *const DsaHadamardParams,
    input: *const c_void,
    output: *mut c_void,
    scales: *mut c_void,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_hadamard_run", || {
        // SAFETY: a non-null `params` points to a DsaHadamardParams (documented).
        let plan = unsafe { host_ref("params", params) }?.plan()?;
        let (x, y, s) = (
            device_ptr("input", input, 1, false)?,
            device_ptr("output", output.cast_const(), 1, false)?,
            device_ptr("scales", scales.cast_const(), 1, false)?,
        );
        plan.check_pointers(x, y, s)?;
        let st = borrow_stream(stream, None)?;
        // SAFETY: the caller's pointers are device addresses of the documented extents on the
        // stream's device (the C contract); nulls, alignment and overlap were checked.
        unsafe { plan.launch_raw(&st.stream, x, y, s) }?;
        Ok(())
    })
}
