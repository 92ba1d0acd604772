//! Helpers shared by the indexer boundary and GPU tests of the C ABI.

#![allow(dead_code)] // each test binary uses a subset

pub mod indexer;

use dsa_kernels::*;
use std::ffi::{CStr, c_void};

pub fn last_error() -> String {
    // SAFETY: never null; copied at once, before the next call.
    unsafe { CStr::from_ptr(dsa_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Assert `status` is `want` and the message contains `needle`.
#[track_caller]
pub fn expect(status: DsaStatus, want: DsaStatus, needle: &str) {
    let msg = last_error();
    assert_eq!(status, want, "message: {msg}");
    assert!(msg.contains(needle), "`{msg}` does not contain `{needle}`");
}

/// Assert `status` is `DSA_STATUS_INVALID_ARGUMENT` with `needle` in the message.
#[track_caller]
pub fn invalid(status: DsaStatus, needle: &str) {
    expect(status, DsaStatus::InvalidArgument, needle);
}

/// Assert success, showing the message otherwise.
#[track_caller]
pub fn ok(status: DsaStatus) {
    assert_eq!(status, DsaStatus::Ok, "{}", last_error());
}

pub fn gpu_present() -> bool {
    let mut info = DsaDeviceInfo::default();
    dsa_device_info(0, &mut info) == DsaStatus::Ok
}

/// Valid arguments that reach the device layer: without a GPU that is `DSA_STATUS_NO_DRIVER`.
/// With one, the call is not made (its fake device addresses must not reach a launch).
#[track_caller]
pub fn expect_reaches_device(status: impl FnOnce() -> DsaStatus) {
    if gpu_present() {
        return;
    }
    expect(status(), DsaStatus::NoDriver, "CUDA driver");
}

pub fn addr(a: usize) -> *const c_void {
    a as *const c_void
}

pub fn addr_mut(a: usize) -> *mut c_void {
    a as *mut c_void
}

/// An H100 described by hand (host-only planning).
pub const H100: DsaDeviceInfo = DsaDeviceInfo {
    ordinal: -1,
    sm_count: 132,
    cc_major: 9,
    cc_minor: 0,
    max_smem_per_block: 227 * 1024,
    l2_bytes: 50 << 20,
    name_hash: 0,
};

/// SplitMix64: deterministic test data without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }

    /// Uniform in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}
