//! LayerNorm and RMSNorm over the last dimension. Plans are host-only and cheap, so the C API
//! takes the parameters on every call; no workspace.
//!
//! Contract (see `dsa_layernorm`'s crate docs): LayerNorm
//! `y = (x - mean) / sqrt(var + eps) * gamma + beta`, RMSNorm `y = x / sqrt(mean(x^2) + eps)
//! * gamma + beta`; statistics in f32; `gamma`/`beta` optional.

use crate::check::{device_ptr, enum_value, host_ref, size, stride_or, write_out};
use crate::context::{DsaStream, borrow_stream};
use crate::status::{DsaStatus, FfiResult, guard};
use dsa_layernorm::{DType, LayerNorm, LayerNormConfig, Norm};
use std::ffi::c_void;

/// Which normalization.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaNorm {
    /// LayerNorm (the default, 0).
    LayerNorm = 0,
    /// RMSNorm (no centring).
    RmsNorm = 1,
}

/// One norm's shape, types and parameters. Strides of 0 mean contiguous rows (`dim`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DsaLayerNormParams {
    /// Row length, `1..=16384`.
    pub dim: i64,
    /// Rows (0 allowed: nothing is launched).
    pub rows: i64,
    /// Elements between rows of `x` (`>= dim`), or 0 for `dim`.
    pub x_stride: i64,
    /// Elements between rows of `y` (`>= dim`), or 0 for `dim`.
    pub y_stride: i64,
    /// dtype of `x`, `gamma` and `beta`: `DSA_DTYPE_F32`, `DSA_DTYPE_BF16` or `DSA_DTYPE_F16`.
    pub input_dtype: i32,
    /// dtype of `y`: `DSA_DTYPE_F32`, `DSA_DTYPE_BF16` or `DSA_DTYPE_F16`.
    pub output_dtype: i32,
    /// A `DsaNorm`.
    pub norm: i32,
    /// Added to the variance (mean square for RMSNorm); finite and `>= 0` (typically 1e-5).
    pub eps: f32,
}

/// Sizes a norm call touches, in elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaLayerNormSizes {
    /// Elements `x` must hold: `(rows - 1) * x_stride + dim`.
    pub input_len: u64,
    /// Elements `y` must hold.
    pub output_len: u64,
}

fn float(name: &str, v: i32) -> FfiResult<DType> {
    crate::float_dtype(name, v, [DType::F32, DType::Bf16, DType::F16])
}

impl DsaLayerNormParams {
    fn plan(&self) -> FfiResult<LayerNorm> {
        let dim = size("params.dim", self.dim)?;
        let norm = enum_value("params.norm", self.norm, |v| match v {
            0 => Some(Norm::LayerNorm),
            1 => Some(Norm::RmsNorm),
            _ => None,
        })?;
        let cfg = LayerNormConfig::new(
            dim,
            size("params.rows", self.rows)?,
            float("params.input_dtype", self.input_dtype)?,
            float("params.output_dtype", self.output_dtype)?,
        )
        .with_norm(norm)
        .with_eps(self.eps)
        .with_strides(
            stride_or("params.x_stride", self.x_stride, dim)?,
            stride_or("params.y_stride", self.y_stride, dim)?,
        );
        Ok(LayerNorm::plan(cfg)?)
    }
}

/// Validate `params` and report the buffer sizes a call touches. Host only.
///
/// - `params`: host pointer to one `DsaLayerNormParams`; `sizes_out`: host pointer to one
///   `DsaLayerNormSizes`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_layernorm_sizes(
    params: *const DsaLayerNormParams,
    sizes_out: *mut DsaLayerNormSizes,
) -> DsaStatus {
    guard("dsa_layernorm_sizes", || {
        // SAFETY: a non-null `params` points to a DsaLayerNormParams (documented).
        let plan = unsafe { host_ref("params", params) }?.plan()?;
        let sizes = DsaLayerNormSizes {
            input_len: plan.input_len() as u64,
            output_len: plan.output_len() as u64,
        };
        // SAFETY: checked non-null and aligned inside; the caller vouches it is writable.
        unsafe { write_out("sizes_out", sizes_out, sizes) }
    })
}

/// Compile (or fetch) and load the kernels into `stream`'s context (NULL: the current context)
/// before CUDA-graph capture. Enqueues nothing.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_layernorm_prepare(
    params: *const DsaLayerNormParams,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_layernorm_prepare", || {
        // SAFETY: a non-null `params` points to a DsaLayerNormParams (documented).
        let plan = unsafe { host_ref("params", params) }?.plan()?;
        let s = borrow_stream(stream, None)?;
        Ok(plan.prepare(s.stream.context())?)
    })
}

/// Enqueue the norm on `stream` (the caller's `CUstream`; NULL: the current context's legacy
/// default stream). No allocation, no host sync: capturable in a CUDA graph.
///
/// - `x`: device, `[rows, x_stride]` of `input_dtype`, aligned to its element.
/// - `y`: device, `[rows, y_stride]` of `output_dtype`. May equal `x` (in place) with equal
///   strides and element sizes; any other overlap is an error.
/// - `gamma`, `beta`: device, `[dim]` of `input_dtype`, or NULL to leave out.
///
/// 16-byte aligned pointers with `dim` and strides multiples of 16 bytes take the vector kernel.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_layernorm_run(
    params: *const DsaLayerNormParams,
    x: *const c_void,
    y: *mut c_void,
    gamma: *const c_void,
    beta: *const c_void,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_layernorm_run", || {
        // SAFETY: a non-null `params` points to a DsaLayerNormParams (documented).
        let plan = unsafe { host_ref("params", params) }?.plan()?;
        let (xp, yp, g, b) = (
            device_ptr("x", x, 1, false)?,
            device_ptr("y", y.cast_const(), 1, false)?,
            device_ptr("gamma", gamma, 1, false)?,
            device_ptr("beta", beta, 1, false)?,
        );
        plan.check_pointers(xp, yp, g, b)?;
        let st = borrow_stream(stream, None)?;
        // SAFETY: the caller's pointers are device addresses of the documented extents on the
        // stream's device (the C contract); nulls, alignment and overlap were checked.
        unsafe { plan.launch_raw(&st.stream, xp, yp, g, b) }?;
        Ok(())
    })
}
