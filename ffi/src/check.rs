//! Argument checks shared by every entry point: host pointers, sizes, enum values and device
//! pointers, each failing with a message that names the argument.

use crate::status::{FfiError, FfiResult};
use std::ffi::c_void;

/// Borrow a host input struct, or fail if it is null.
///
/// # Safety
/// A non-null `ptr` must point to a valid, initialised `T` for the returned lifetime.
pub(crate) unsafe fn host_ref<'a, T>(name: &str, ptr: *const T) -> FfiResult<&'a T> {
    // SAFETY: the caller vouches for non-null pointers; null is rejected by `as_ref`.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::invalid(format!("{name} is a null pointer")))
}

/// Fail if a host output pointer is null or misaligned for `T`.
pub(crate) fn host_out<T>(name: &str, ptr: *mut T) -> FfiResult<()> {
    if ptr.is_null() {
        return Err(FfiError::invalid(format!("{name} is a null pointer")));
    }
    if (ptr as usize) % align_of::<T>() != 0 {
        return Err(FfiError::invalid(format!(
            "{name} ({ptr:p}) is not {}-byte aligned",
            align_of::<T>()
        )));
    }
    Ok(())
}

/// Write `value` through a host output pointer checked by [`host_out`].
///
/// # Safety
/// A non-null, aligned `ptr` must be valid for writing one `T`.
pub(crate) unsafe fn write_out<T>(name: &str, ptr: *mut T, value: T) -> FfiResult<()> {
    host_out(name, ptr)?;
    // SAFETY: non-null and aligned (checked); the caller vouches it is writable.
    unsafe { ptr.write(value) };
    Ok(())
}

/// A non-negative size as `usize`.
pub(crate) fn size(name: &str, value: i64) -> FfiResult<usize> {
    usize::try_from(value)
        .map_err(|_| FfiError::invalid(format!("{name} = {value} must be non-negative")))
}

/// A stride where 0 means "the row length" (contiguous rows).
pub(crate) fn stride_or(name: &str, value: i64, row: usize) -> FfiResult<usize> {
    match size(name, value)? {
        0 => Ok(row),
        s => Ok(s),
    }
}

/// A C enum value decoded by `decode`, or an error naming the field and the value.
pub(crate) fn enum_value<T>(
    name: &str,
    value: i32,
    decode: impl FnOnce(i32) -> Option<T>,
) -> FfiResult<T> {
    decode(value).ok_or_else(|| FfiError::invalid(format!("{name} = {value} is not a valid value")))
}

/// A device pointer as the launchers' `u64` address, checked for null (when `required`) and
/// alignment to `align` bytes. Only the address is looked at, never the memory.
pub(crate) fn device_ptr(
    name: &str,
    ptr: *const c_void,
    align: usize,
    required: bool,
) -> FfiResult<u64> {
    let addr = ptr as u64;
    if addr == 0 {
        return if required {
            Err(FfiError::invalid(format!(
                "{name} is a null device pointer"
            )))
        } else {
            Ok(0)
        };
    }
    if addr % align as u64 != 0 {
        return Err(FfiError::invalid(format!(
            "{name} (0x{addr:x}) is not {align}-byte aligned"
        )));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_argument() {
        assert_eq!(size("rows", 3), Ok(3));
        assert!(size("rows", -1).unwrap_err().message.contains("rows = -1"));
        assert_eq!(stride_or("stride", 0, 7), Ok(7));
        assert_eq!(device_ptr("x", std::ptr::null(), 4, false), Ok(0));
        let e = device_ptr("x", 0x1002 as *const c_void, 4, true).unwrap_err();
        assert_eq!(e.message, "x (0x1002) is not 4-byte aligned");
        let e = device_ptr("x", std::ptr::null(), 4, true).unwrap_err();
        assert_eq!(e.message, "x is a null device pointer");
        let e = host_out::<u64>("out", 0x1004 as *mut u64).unwrap_err();
        assert!(e.message.contains("8-byte aligned"), "{}", e.message);
        assert!(host_out::<u64>("out", std::ptr::null_mut()).is_err());
    }
}
