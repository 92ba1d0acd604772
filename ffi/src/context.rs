//! The caller's stream and context: wrapping a foreign `CUstream` without owning it, and
//! device facts for planning.
//!
//! A stream belongs to a context (`cuStreamGetCtx`). Contexts are cached per `CUcontext`
//! handle, so after the first call on a context a launch costs one driver query and a
//! hash-map read. A device's primary context (what PyTorch and the CUDA runtime use) is
//! retained through cudarc's `CudaContext::new`, balanced by the release cudarc does on drop;
//! any other context is wrapped with `CudaContext::from_raw_context` and kept in the cache for
//! the life of the process, so that cudarc never destroys it. Streams are wrapped with
//! `wrap_borrowed_stream` and never destroyed. The thread's current context is restored after
//! every call.

use crate::status::{DsaStatus, FfiError, FfiResult, cuda};
use cudarc::driver::{CudaContext, CudaStream, result, sys};
use dsa_jit_cache::DeviceInfo;
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, RwLock};

/// A `CUstream` (same ABI as `cudaStream_t`): the caller's stream, never destroyed here.
/// NULL is the legacy default stream.
pub type DsaStream = *mut c_void;

/// Facts about a device that planning needs (see `dsa_device_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaDeviceInfo {
    /// The CUDA device ordinal, or -1 for a device described by hand (host-only planning).
    pub ordinal: i32,
    /// Streaming multiprocessors.
    pub sm_count: i32,
    /// Compute capability, major.
    pub cc_major: i32,
    /// Compute capability, minor.
    pub cc_minor: i32,
    /// Shared memory a block may opt into, bytes.
    pub max_smem_per_block: i32,
    /// L2 cache size, bytes.
    pub l2_bytes: i32,
    /// Hash of the device's name (selects tuned launch knobs); 0 when unknown.
    pub name_hash: u64,
}

impl DsaDeviceInfo {
    /// The planning facts, after checking they are positive.
    pub(crate) fn to_rust(self) -> FfiResult<DeviceInfo> {
        let pos = |name: &str, v: i32| {
            u32::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| FfiError::invalid(format!("device info {name} = {v} must be > 0")))
        };
        Ok(DeviceInfo {
            sm_count: pos("sm_count", self.sm_count)?,
            compute_capability: (pos("cc_major", self.cc_major)?, self.cc_minor.max(0) as u32),
            max_smem_per_block: pos("max_smem_per_block", self.max_smem_per_block)?,
            l2_bytes: pos("l2_bytes", self.l2_bytes)?,
            name_hash: self.name_hash,
        })
    }
}

/// Fail with `DSA_STATUS_NO_DRIVER` unless libcuda loads and `cuInit` succeeds.
pub(crate) fn ensure_driver() -> FfiResult<()> {
    static INIT: Lazy<Result<(), String>> = Lazy::new(|| {
        if !dsa_jit_cache::libs::driver_available() {
            return Err("CUDA driver (libcuda.so.1) not available".into());
        }
        result::init().map_err(|e| format!("cuInit failed: {e:?}"))
    });
    INIT.clone()
        .map_err(|m| FfiError::new(DsaStatus::NoDriver, m))
}

/// The primary context of device `ordinal`, retained once per process.
pub(crate) fn primary(ordinal: usize) -> FfiResult<Arc<CudaContext>> {
    static PRIMARY: Lazy<Mutex<HashMap<usize, Arc<CudaContext>>>> = Lazy::new(Default::default);
    ensure_driver()?;
    let mut map = PRIMARY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = map.get(&ordinal) {
        return Ok(c.clone());
    }
    let count = result::device::get_count().map_err(|e| cuda("counting devices", e))?;
    if ordinal >= count as usize {
        return Err(FfiError::new(
            DsaStatus::NoDriver,
            format!("no CUDA device {ordinal} ({count} present)"),
        ));
    }
    let _restore = CurrentContext::save()?;
    let ctx = CudaContext::new(ordinal).map_err(|e| cuda("retaining the primary context", e))?;
    // SAFETY: this library never uses cudarc slices (whose events need tracking) on the
    // contexts it caches: launches take raw addresses and are ordered by the stream alone.
    unsafe { ctx.disable_event_tracking() };
    map.insert(ordinal, ctx.clone());
    Ok(ctx)
}

/// Device facts of `ordinal`.
pub(crate) fn device_info(ordinal: usize) -> FfiResult<DeviceInfo> {
    let ctx = primary(ordinal)?;
    let _restore = CurrentContext::save()?;
    Ok(DeviceInfo::of(&ctx)?)
}

/// Restores the thread's current context when dropped.
pub(crate) struct CurrentContext(sys::CUcontext);

impl CurrentContext {
    /// Remember the current context.
    pub(crate) fn save() -> FfiResult<Self> {
        let mut cur: sys::CUcontext = std::ptr::null_mut();
        // SAFETY: writes one handle to a valid out-pointer; the driver was initialised.
        unsafe { sys::cuCtxGetCurrent(&mut cur) }
            .result()
            .map_err(|e| cuda("reading the current context", e))?;
        Ok(CurrentContext(cur))
    }
}

impl Drop for CurrentContext {
    fn drop(&mut self) {
        let mut cur: sys::CUcontext = std::ptr::null_mut();
        // SAFETY: as in `save`; `self.0` was current on this thread (or null) when saved, and
        // a context a caller made current stays alive for the duration of its call.
        unsafe {
            if sys::cuCtxGetCurrent(&mut cur) == sys::CUresult::CUDA_SUCCESS && cur != self.0 {
                let _ = sys::cuCtxSetCurrent(self.0);
            }
        }
    }
}

/// The caller's stream wrapped for the launchers; the thread's current context is restored
/// when this is dropped (after the launch).
pub(crate) struct Borrowed {
    /// The wrapped stream (not owned: dropping it destroys nothing).
    pub stream: Arc<CudaStream>,
    _restore: CurrentContext,
}

/// Wrap the caller's `raw` stream. A NULL (legacy default) stream belongs to the thread's
/// current context, or, with none current, to device `fallback`'s primary context.
pub(crate) fn borrow_stream(raw: DsaStream, fallback: Option<usize>) -> FfiResult<Borrowed> {
    ensure_driver()?;
    let restore = CurrentContext::save()?;
    let handle = stream_context(raw, fallback)?;
    let ctx = context_for(handle)?;
    // SAFETY: `raw` belongs to `ctx` (the driver said so); the caller keeps it alive for the
    // call, and the wrapper is not owned, so dropping it never destroys the stream.
    let stream = unsafe { ctx.wrap_borrowed_stream(raw as sys::CUstream) };
    Ok(Borrowed {
        stream,
        _restore: restore,
    })
}

fn stream_context(raw: DsaStream, fallback: Option<usize>) -> FfiResult<sys::CUcontext> {
    let mut handle: sys::CUcontext = std::ptr::null_mut();
    // SAFETY: `raw` is the caller's stream (documented as valid or NULL); one handle is written.
    let r = unsafe { sys::cuStreamGetCtx(raw as sys::CUstream, &mut handle) };
    if r == sys::CUresult::CUDA_SUCCESS && !handle.is_null() {
        return Ok(handle);
    }
    let is_default = matches!(raw as usize, 0..=2);
    match (is_default, fallback) {
        (true, Some(ordinal)) => Ok(primary(ordinal)?.cu_ctx()),
        _ => Err(FfiError::new(
            DsaStatus::Cuda,
            format!(
                "cannot find the context of stream {raw:p} ({r:?}); pass a valid CUstream, or make \
                 a context current for the default stream"
            ),
        )),
    }
}

/// The cached `CudaContext` for a context handle, made on first use.
fn context_for(handle: sys::CUcontext) -> FfiResult<Arc<CudaContext>> {
    static BY_HANDLE: Lazy<RwLock<HashMap<usize, Arc<CudaContext>>>> = Lazy::new(Default::default);
    let key = handle as usize;
    if let Some(c) = BY_HANDLE
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(c.clone());
    }
    let (ordinal, device) = device_of(handle)?;
    let prim = primary(ordinal)?;
    let ctx = if prim.cu_ctx() == handle {
        prim
    } else {
        // SAFETY: `handle` is a live context of `device` (the driver just reported both).
        // The Arc is stored in a process-lifetime map and never removed, so cudarc's drop,
        // which would destroy the context, never runs: the caller keeps ownership.
        let c = unsafe { CudaContext::from_raw_context(ordinal, device, handle) }
            .map_err(|e| cuda("wrapping the stream's context", e))?;
        // SAFETY: as in `primary`: no cudarc slices are used on cached contexts.
        unsafe { c.disable_event_tracking() };
        c
    };
    let mut map = BY_HANDLE.write().unwrap_or_else(|p| p.into_inner());
    Ok(map.entry(key).or_insert(ctx).clone())
}

/// The device (ordinal and handle) a context belongs to.
fn device_of(handle: sys::CUcontext) -> FfiResult<(usize, sys::CUdevice)> {
    let mut device: sys::CUdevice = 0;
    // SAFETY: `handle` is a live context; it is pushed, queried and popped, leaving the
    // thread's context stack as it was.
    unsafe {
        sys::cuCtxPushCurrent_v2(handle)
            .result()
            .map_err(|e| cuda("entering the stream's context", e))?;
        let got = sys::cuCtxGetDevice(&mut device).result();
        let mut popped: sys::CUcontext = std::ptr::null_mut();
        let _ = sys::cuCtxPopCurrent_v2(&mut popped);
        got.map_err(|e| cuda("reading the stream's device", e))?;
    }
    let count = result::device::get_count().map_err(|e| cuda("counting devices", e))?;
    for ordinal in 0..count {
        if result::device::get(ordinal).map_err(|e| cuda("listing devices", e))? == device {
            return Ok((ordinal as usize, device));
        }
    }
    Err(FfiError::new(
        DsaStatus::Cuda,
        format!("the stream's device {device} is not among the {count} devices"),
    ))
}

/// Facts about CUDA device `ordinal` for planning. Touches no stream and launches nothing.
///
/// - `out`: host pointer to one `DsaDeviceInfo`, written on success.
///
/// Returns `DSA_STATUS_NO_DRIVER` when there is no driver or no such device.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_device_info(ordinal: i32, out: *mut DsaDeviceInfo) -> DsaStatus {
    crate::status::guard("dsa_device_info", || {
        crate::check::host_out("out", out)?;
        let o = crate::check::size("ordinal", ordinal as i64)?;
        let d = device_info(o)?;
        let info = DsaDeviceInfo {
            ordinal,
            sm_count: d.sm_count as i32,
            cc_major: d.compute_capability.0 as i32,
            cc_minor: d.compute_capability.1 as i32,
            max_smem_per_block: d.max_smem_per_block as i32,
            l2_bytes: d.l2_bytes.min(i32::MAX as u32) as i32,
            name_hash: d.name_hash,
        };
        // SAFETY: `out` is non-null and aligned (checked); the caller vouches it is writable.
        unsafe { crate::check::write_out("out", out, info) }
    })
}
