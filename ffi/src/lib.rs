//! # dsa-ffi: the C ABI of dsa-kernels (library `libdsa_kernels`)
//!
//! Engines (C++ or Python) call our kernels on their own CUDA stream, with their own device
//! buffers, inside their CUDA graphs, with no copies. The header is
//! `ffi/include/dsa_kernels.h`, generated from this crate by cbindgen (a test keeps it current).
//!
//! ## Conventions
//! 1. **Status and message.** Every function returns a [`DsaStatus`]; on failure
//!    [`dsa_last_error`] gives a thread-local message. Panics are caught at every entry point,
//!    so nothing unwinds into C and nothing aborts.
//! 2. **Pointers.** Device buffers are raw device addresses (`void*`) of documented shape and
//!    dtype; host pointers (structs, out-parameters) are named so in each function's docs.
//!    Null, misaligned or short arguments are rejected before anything is enqueued.
//! 3. **Streams.** A [`DsaStream`] is the caller's `CUstream` (= `cudaStream_t`); its context is
//!    found with `cuStreamGetCtx`, cached per context, and neither stream nor context is ever
//!    destroyed. The thread's current context is left as it was.
//! 4. **Graphs.** Runs allocate nothing and never synchronise: call the op's `prepare` (which
//!    compiles and loads the kernels) before capturing, then `run` inside the capture.
//! 5. **Workspace.** Caller-provided, sized by a query that launches nothing (top-k, the
//!    indexer and the collective verify; the other ops need none). Sizes and output shapes are known on the host.
//! 6. **Enums** are `int32_t` fields holding the documented enum constants; a zero-initialised
//!    struct selects every default.
//!
//! ## Ops
//! - top-k ([`topk`]): `dsa_topk_plan_create`, `_create_for`, `_workspace_bytes`,
//!   `_output_shape`, `_prepare`, `dsa_topk_run`, `dsa_topk_plan_destroy`.
//! - Hadamard ([`hadamard`]): `dsa_hadamard_sizes`, `_prepare`, `_run` (float or fused FP8).
//! - LayerNorm/RMSNorm ([`layernorm`]): `dsa_layernorm_sizes`, `_prepare`, `_run`.
//! - Indexer ([`indexer`]): `dsa_indexer_config_default`, `dsa_indexer_prefill_plan_create`,
//!   `_create_for`, `dsa_indexer_decode_plan_create`, `_create_for`,
//!   `dsa_indexer_plan_workspace_bytes`, `_info`, `_prepare`, `_destroy`, `dsa_indexer_prefill`,
//!   `dsa_indexer_decode` (the whole pipeline, optionally followed by the consistency policy).
//! - Collective ([`collective`]) over an engine's `ncclComm_t`: `dsa_comm_borrow`, `_rank`,
//!   `_release`, `dsa_collective_broadcast`, `_verify_workspace_bytes`, `_verify`, `_check`;
//!   and without a communicator `dsa_collective_fingerprint` (the verify protocol's row
//!   fingerprints, for engines that all-reduce with their own library).

// The entry points are for C callers, for whom Rust's `unsafe` marker does not exist: each one
// checks what can be checked (null, alignment, sizes, enum values) and documents the rest of
// its pointer contract in the header. Marking them `unsafe fn` would change nothing for C.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod check;
pub mod collective;
pub mod context;
pub mod hadamard;
pub mod indexer;
pub mod layernorm;
pub mod status;
pub mod topk;

pub use context::{DsaDeviceInfo, DsaStream, dsa_device_info};
pub use status::{DsaStatus, FfiError, FfiResult, dsa_last_error, dsa_status_name};

use std::ffi::c_char;

/// The C ABI's version: bumped on any incompatible change of a signature, struct or enum.
/// Compare `dsa_abi_version()` with the header's `DSA_ABI_VERSION` at start-up.
pub const DSA_ABI_VERSION: i32 = 1;

/// Element types of device buffers. Not every op takes every type; each documents its own.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaDtype {
    /// 32-bit float.
    F32 = 0,
    /// bfloat16.
    Bf16 = 1,
    /// IEEE half.
    F16 = 2,
    /// FP8 e4m3 (Hadamard output only).
    Fp8E4m3 = 3,
}

impl DsaDtype {
    /// Decode a C value.
    pub(crate) fn from_i32(v: i32) -> Option<Self> {
        [Self::F32, Self::Bf16, Self::F16, Self::Fp8E4m3]
            .into_iter()
            .find(|d| *d as i32 == v)
    }
}

/// A float dtype field decoded into an op crate's own type (`[f32, bf16, f16]` in order).
pub(crate) fn float_dtype<T: Copy>(name: &str, v: i32, types: [T; 3]) -> FfiResult<T> {
    match check::enum_value(name, v, DsaDtype::from_i32)? {
        DsaDtype::F32 => Ok(types[0]),
        DsaDtype::Bf16 => Ok(types[1]),
        DsaDtype::F16 => Ok(types[2]),
        DsaDtype::Fp8E4m3 => Err(FfiError::invalid(format!("{name} cannot be FP8 here"))),
    }
}

/// The ABI version this library implements (the header's `DSA_ABI_VERSION` when they match).
#[unsafe(no_mangle)]
pub extern "C" fn dsa_abi_version() -> i32 {
    DSA_ABI_VERSION
}

/// The library's version, e.g. `"0.1.0"`: a static NUL-terminated host string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_values_round_trip() {
        for d in [
            DsaDtype::F32,
            DsaDtype::Bf16,
            DsaDtype::F16,
            DsaDtype::Fp8E4m3,
        ] {
            assert_eq!(DsaDtype::from_i32(d as i32), Some(d));
        }
        assert_eq!(DsaDtype::from_i32(4), None);
        assert_eq!(DsaDtype::from_i32(-1), None);
        assert_eq!(float_dtype("d", 1, ['a', 'b', 'c']), Ok('b'));
        assert!(float_dtype("d", 3, ['a', 'b', 'c']).is_err());
    }
}
