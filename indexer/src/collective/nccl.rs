//! Thin helpers over cudarc's raw NCCL bindings: loading, version, status and error text, and
//! the non-blocking communicator config.
//!
//! cudarc loads libnccl lazily and panics when it is missing; every entry point of this crate
//! calls [`ensure_loaded`] first so a missing or too old library is a typed error instead.

use super::error::{CollectiveError, Result};
use cudarc::nccl::sys;
use std::ffi::CStr;
use std::sync::OnceLock;

/// The oldest NCCL the layer accepts: 2.19 (user-buffer registration, `ncclCommRegister`).
pub const MIN_NCCL_VERSION: i32 = 21900;

/// `major.minor.patch` of an NCCL version code (`22807` -> `2.28.7`).
pub fn version_string(code: i32) -> String {
    if code >= 20900 {
        format!("{}.{}.{}", code / 10000, (code % 10000) / 100, code % 100)
    } else {
        format!("{}.{}.{}", code / 1000, (code % 1000) / 100, code % 100)
    }
}

/// Loads libnccl (once) and checks its version; returns the version code.
pub fn ensure_loaded() -> Result<i32> {
    static LOADED: OnceLock<std::result::Result<i32, String>> = OnceLock::new();
    let r = LOADED.get_or_init(|| {
        // SAFETY: only tries to dlopen the candidate library names.
        if !unsafe { sys::is_culib_present() } {
            return Err(
                "libnccl could not be loaded: cudarc looks for libnccl.so (and libnccl.so.{1,9,10,11,12,13}), \
                 not libnccl.so.2. Install the NCCL development package, or put a `libnccl.so` symlink to \
                 libnccl.so.2 in a folder on LD_LIBRARY_PATH"
                    .to_string(),
            );
        }
        let mut v = 0;
        // SAFETY: the library is present; ncclGetVersion writes one int.
        let res = unsafe { sys::ncclGetVersion(&mut v) };
        if res != sys::ncclResult_t::ncclSuccess {
            return Err(format!("ncclGetVersion failed: {res:?}"));
        }
        Ok(v)
    });
    match r {
        Ok(v) if *v >= MIN_NCCL_VERSION => Ok(*v),
        Ok(v) => Err(CollectiveError::NcclTooOld {
            found: version_string(*v),
            required: version_string(MIN_NCCL_VERSION),
        }),
        Err(msg) => Err(CollectiveError::NcclUnavailable(msg.clone())),
    }
}

/// What a successful NCCL call said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Done (or, for a collective, enqueued).
    Done,
    /// Non-blocking communicator: still in progress; poll `ncclCommGetAsyncError`.
    InProgress,
}

/// Maps an NCCL result to a [`Status`] or a typed error carrying NCCL's messages.
pub(crate) fn status(
    call: &'static str,
    res: sys::ncclResult_t,
    comm: sys::ncclComm_t,
) -> Result<Status> {
    match res {
        sys::ncclResult_t::ncclSuccess => Ok(Status::Done),
        sys::ncclResult_t::ncclInProgress => Ok(Status::InProgress),
        other => Err(error(call, other, comm)),
    }
}

/// The typed error of a failed NCCL call: the code's name, `ncclGetErrorString`, and
/// `ncclGetLastError` (NCCL's last detailed message) when there is one.
pub(crate) fn error(
    call: &'static str,
    res: sys::ncclResult_t,
    comm: sys::ncclComm_t,
) -> CollectiveError {
    let text = |p: *const std::ffi::c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: NCCL returns NUL-terminated static or per-thread strings.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    // SAFETY: both take a result code / a comm (NULL allowed) and return a string pointer.
    let (desc, last) = unsafe {
        (
            text(sys::ncclGetErrorString(res)),
            text(sys::ncclGetLastError(comm)),
        )
    };
    let message = if last.is_empty() || last == desc {
        desc
    } else {
        format!("{desc} ({last})")
    };
    CollectiveError::Nccl {
        call,
        code: format!("{res:?}"),
        message,
    }
}

/// `NCCL_CONFIG_UNDEF_INT`.
const UNDEF_INT: i32 = i32::MIN;

/// A config equal to `NCCL_CONFIG_INITIALIZER` with `blocking` set. `version` is the loaded
/// library's code: NCCL copies `min(size, its own sizeof)` bytes and fills any field it knows
/// beyond that with its defaults, so a struct from newer headers is read correctly.
pub(crate) fn config(blocking: bool, version: i32) -> sys::ncclConfig_t {
    sys::ncclConfig_t {
        size: std::mem::size_of::<sys::ncclConfig_t>(),
        magic: 0xcafe_beef,
        version: version as u32,
        blocking: blocking as i32,
        cgaClusterSize: UNDEF_INT,
        minCTAs: UNDEF_INT,
        maxCTAs: UNDEF_INT,
        netName: std::ptr::null(),
        splitShare: UNDEF_INT,
        trafficClass: UNDEF_INT,
        commName: std::ptr::null(),
        collnetEnable: UNDEF_INT,
        CTAPolicy: UNDEF_INT,
        shrinkShare: UNDEF_INT,
        nvlsCTAs: UNDEF_INT,
        nChannelsPerNetPeer: UNDEF_INT,
        nvlinkCentricSched: UNDEF_INT,
        graphUsageMode: UNDEF_INT,
        numRmaCtx: UNDEF_INT,
        maxP2pPeers: UNDEF_INT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_people_write_them() {
        assert_eq!(version_string(22807), "2.28.7");
        assert_eq!(version_string(MIN_NCCL_VERSION), "2.19.0");
        assert_eq!(version_string(2804), "2.8.4");
    }

    #[test]
    fn config_is_the_initializer_with_blocking_set() {
        let c = config(false, 22807);
        assert_eq!(c.magic, 0xcafe_beef);
        assert_eq!(c.blocking, 0);
        assert_eq!(c.version, 22807);
        assert_eq!(c.size, std::mem::size_of::<sys::ncclConfig_t>());
        assert_eq!(c.minCTAs, UNDEF_INT);
        assert!(c.netName.is_null());
    }
}
