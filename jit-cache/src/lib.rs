//! # dsa-jit-cache
//!
//! The one compile path of every dsa-kernels crate: CUDA C++ sources JIT-compiled by NVRTC into
//! typed variants, cached in memory and on disk.
//!
//! 1. A kernel crate keeps its `.cu` source next to the Rust that launches it and describes
//!    each compiled form with a typed struct implementing [`KernelVariant`], which renders a
//!    [`KernelSpec`] (source, `-D` defines, generated entry symbols).
//! 2. Sources include nothing but [`PRELUDE`] (bf16/f16/fp8 conversions, 16-byte vector loads
//!    and stores, warp helpers), so NVRTC needs no CUDA toolkit headers; NVRTC itself is found
//!    with no configuration ([`libs`]).
//! 3. [`KernelCache::get`] returns the loaded kernel for (context, variant): a memory hit is a
//!    hash-map lookup; a miss goes to [`JitCache`] (memory, then disk, then NVRTC, CUBIN for the
//!    device's exact arch such as `sm_90a`, PTX for an arch NVRTC does not know).
//! 4. Kernel crates share the element types ([`DType`], [`Element`]) and the host checks of raw
//!    device pointers ([`check_device_ptr`]); `dsa_jit_cache::testing` (feature `test-support`)
//!    holds helpers for their GPU tests.
//! 5. Every crate registers its variants with [`inventory`] as a [`VariantFamily`]; CI compiles
//!    all of them for [`Arch::CI_TARGETS`] without a GPU.
//!
//! ## Environment
//! - `DSA_NVRTC_PATH`: libnvrtc file or folder (searched first).
//! - `DSA_CACHE_DIR`: disk cache folder (default `$XDG_CACHE_HOME/dsa-kernels` or
//!   `~/.cache/dsa-kernels`); `DSA_JIT_CACHE=off`: memory only.
//! - `DSA_JIT_QUIET`: do not report compiles on stderr.
//! - `DSA_TUNING_DB`: the tuning database file (default `tuning.json` in the cache folder).

pub mod arch;
pub mod cache;
pub mod disk;
pub mod dtype;
pub mod error;
pub mod gpu;
pub mod libs;
pub mod nvrtc;
pub mod spec;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tuning;

pub use arch::Arch;
pub use cache::{CacheConfig, Image, JitCache, KernelCache, LoadedKernel, Stats};
pub use dtype::{DType, Element};
pub use error::{JitError, Result};
pub use gpu::{
    DeviceInfo, PtrError, check_aligned, check_device_ptr, dptr, median_gpu_us, strided_len,
};
pub use inventory;
pub use spec::{KernelSpec, KernelVariant, PRELUDE, VariantFamily, registered_families};
pub use tuning::TuningDb;

/// Submit a kernel family's variant list to the registry (see [`VariantFamily`]).
#[macro_export]
macro_rules! register_family {
    ($name:expr, $all:path) => {
        $crate::inventory::submit! {
            $crate::VariantFamily { name: $name, all: $all }
        }
    };
}
