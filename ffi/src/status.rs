//! Status codes, the thread-local last-error message, and the guard every entry point runs
//! in: it turns errors into a status plus message and catches panics, so no panic (and no
//! abort) ever crosses the C boundary.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a call returns. `DSA_STATUS_OK` (0) is success; on any other value
/// [`dsa_last_error`] describes what went wrong.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaStatus {
    /// Success.
    Ok = 0,
    /// A null, misaligned or out-of-range argument, a bad size or enum value: nothing was
    /// launched.
    InvalidArgument = 1,
    /// No CUDA driver (`libcuda.so.1`) or no such device.
    NoDriver = 2,
    /// NVRTC (`libnvrtc.so.13`) could not be found (set `DSA_NVRTC_PATH`).
    NoNvrtc = 3,
    /// NVRTC failed to compile a kernel (the message holds its log).
    Compile = 4,
    /// A CUDA driver call or a launch failed.
    Cuda = 5,
    /// The GPU's architecture is not supported.
    Unsupported = 6,
    /// A bug in the library (a caught panic); please report the message.
    Internal = 7,
    /// NCCL is missing or too old, or a collective failed, timed out or was aborted.
    Nccl = 8,
}

/// An error on its way to the C caller: a status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfiError {
    /// The status returned.
    pub status: DsaStatus,
    /// The message [`dsa_last_error`] returns.
    pub message: String,
}

impl FfiError {
    /// A [`DsaStatus::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        FfiError {
            status: DsaStatus::InvalidArgument,
            message: message.into(),
        }
    }

    /// An error of any status.
    pub fn new(status: DsaStatus, message: impl Into<String>) -> Self {
        FfiError {
            status,
            message: message.into(),
        }
    }
}

/// Result alias of the boundary layer.
pub type FfiResult<T> = Result<T, FfiError>;

impl From<dsa_jit_cache::JitError> for FfiError {
    fn from(e: dsa_jit_cache::JitError) -> Self {
        use dsa_jit_cache::JitError as J;
        let status = match &e {
            J::NvrtcNotFound { .. } => DsaStatus::NoNvrtc,
            J::NoDriver(_) => DsaStatus::NoDriver,
            J::Compile { .. } | J::Nvrtc { .. } => DsaStatus::Compile,
            J::Driver { .. } => DsaStatus::Cuda,
            J::Arch(_) => DsaStatus::Unsupported,
        };
        FfiError::new(status, e.to_string())
    }
}

impl From<dsa_topk::TopkError> for FfiError {
    fn from(e: dsa_topk::TopkError) -> Self {
        use dsa_topk::TopkError as T;
        match e {
            T::Jit(j) => j.into(),
            T::Launch { .. } => FfiError::new(DsaStatus::Cuda, e.to_string()),
            _ => FfiError::invalid(e.to_string()),
        }
    }
}

impl From<dsa_hadamard::HadamardError> for FfiError {
    fn from(e: dsa_hadamard::HadamardError) -> Self {
        use dsa_hadamard::HadamardError as H;
        match e {
            H::Jit(j) => j.into(),
            H::Launch { .. } => FfiError::new(DsaStatus::Cuda, e.to_string()),
            _ => FfiError::invalid(e.to_string()),
        }
    }
}

impl From<dsa_layernorm::LayerNormError> for FfiError {
    fn from(e: dsa_layernorm::LayerNormError) -> Self {
        use dsa_layernorm::LayerNormError as L;
        match e {
            L::Jit(j) => j.into(),
            L::Launch { .. } => FfiError::new(DsaStatus::Cuda, e.to_string()),
            _ => FfiError::invalid(e.to_string()),
        }
    }
}

/// A driver error while `doing` something.
pub(crate) fn cuda(doing: &str, e: cudarc::driver::DriverError) -> FfiError {
    FfiError::new(
        DsaStatus::Cuda,
        format!("CUDA driver error while {doing}: {e:?}"),
    )
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(function: &str, message: &str) {
    let text = format!("{function}: {message}").replace('\0', "\\0");
    let c = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|m| *m.borrow_mut() = c);
}

/// Run one entry point's body: `Ok` gives `DSA_STATUS_OK`; an error or a panic records its
/// message (prefixed with `function`) for [`dsa_last_error`] and returns its status.
pub(crate) fn guard(function: &str, body: impl FnOnce() -> FfiResult<()>) -> DsaStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => DsaStatus::Ok,
        Ok(Err(e)) => {
            set_last_error(function, &e.message);
            e.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(function, &format!("internal error (caught panic): {what}"));
            DsaStatus::Internal
        }
    }
}

/// The message of the most recent call on this thread that did not return `DSA_STATUS_OK`
/// (an empty string if none has failed).
///
/// Returns a host pointer to a NUL-terminated UTF-8 string owned by the library, valid until
/// the next failing call on the same thread; never NULL. Copy it to keep it.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|m| m.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

/// A short, static, NUL-terminated name of a status code (e.g. `"DSA_STATUS_OK"`), or
/// `"DSA_STATUS_UNKNOWN"` for a value that is not one. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_status_name(status: i32) -> *const c_char {
    let name = match status {
        0 => c"DSA_STATUS_OK",
        1 => c"DSA_STATUS_INVALID_ARGUMENT",
        2 => c"DSA_STATUS_NO_DRIVER",
        3 => c"DSA_STATUS_NO_NVRTC",
        4 => c"DSA_STATUS_COMPILE",
        5 => c"DSA_STATUS_CUDA",
        6 => c"DSA_STATUS_UNSUPPORTED",
        7 => c"DSA_STATUS_INTERNAL",
        8 => c"DSA_STATUS_NCCL",
        _ => c"DSA_STATUS_UNKNOWN",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: dsa_last_error never returns null and the string lives until the next failure
        // on this thread; we copy it at once.
        unsafe { CStr::from_ptr(dsa_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn panics_become_internal_status_with_the_message() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let s = guard("dsa_test", || panic!("boom {}", 42));
        std::panic::set_hook(prev);
        assert_eq!(s, DsaStatus::Internal);
        assert_eq!(last(), "dsa_test: internal error (caught panic): boom 42");
    }

    #[test]
    fn errors_set_the_message_and_success_keeps_it() {
        assert_eq!(
            guard("dsa_x", || Err(FfiError::invalid("bad k"))),
            DsaStatus::InvalidArgument
        );
        assert_eq!(last(), "dsa_x: bad k");
        assert_eq!(guard("dsa_y", || Ok(())), DsaStatus::Ok);
        assert_eq!(last(), "dsa_x: bad k");
        assert_eq!(
            guard("dsa_z", || Err(FfiError::invalid("nul\0inside"))),
            DsaStatus::InvalidArgument
        );
        assert_eq!(last(), "dsa_z: nul\\0inside");
    }

    #[test]
    fn status_names_cover_every_code() {
        for (code, name) in [
            (0, "OK"),
            (1, "INVALID_ARGUMENT"),
            (7, "INTERNAL"),
            (99, "UNKNOWN"),
        ] {
            // SAFETY: static NUL-terminated strings.
            let got = unsafe { CStr::from_ptr(dsa_status_name(code)) };
            assert_eq!(got.to_str().unwrap(), format!("DSA_STATUS_{name}"));
        }
    }
}
