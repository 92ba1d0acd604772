//! User-buffer registration (`ncclCommRegister`) bound to the communicator that made it.

use super::comm::{Communicator, Inner};
use super::error::{CollectiveError, Result};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};
use cudarc::nccl::sys;
use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

impl Communicator {
    /// Registers device memory with NCCL (`ncclCommRegister`, zero-copy collectives). The
    /// registration is bound to this communicator: buffers made from it are refused by any
    /// other ([`CollectiveError::ForeignBuffer`]). Deregistered on drop.
    ///
    /// # Safety
    /// `ptr` must address `bytes` bytes of device memory on this communicator's device that
    /// stay allocated until the returned registration is dropped.
    pub unsafe fn register_raw(&self, ptr: u64, bytes: usize) -> Result<RegisteredBuffer<'static>> {
        // SAFETY: forwarded from the caller.
        unsafe { self.register_impl(ptr, bytes) }
    }

    /// # Safety
    /// As [`Communicator::register_raw`], for the lifetime `'a`.
    unsafe fn register_impl<'a>(&self, ptr: u64, bytes: usize) -> Result<RegisteredBuffer<'a>> {
        if ptr == 0 || bytes == 0 {
            return Err(CollectiveError::shape(
                "ncclCommRegister",
                "null pointer or zero bytes",
            ));
        }
        let mut handle: *mut c_void = std::ptr::null_mut();
        self.inner.call("ncclCommRegister", |c| {
            // SAFETY: the caller promises the memory; NCCL writes one handle.
            unsafe { sys::ncclCommRegister(c, ptr as *mut c_void, bytes, &mut handle) }
        })?;
        Ok(RegisteredBuffer {
            comm: self.inner.clone(),
            ptr,
            bytes,
            handle,
            _borrow: PhantomData,
        })
    }

    /// Registers a cudarc slice (see [`Communicator::register_raw`]); the registration borrows it.
    pub fn register<'a, T>(
        &self,
        slice: &'a CudaSlice<T>,
        stream: &CudaStream,
    ) -> Result<RegisteredBuffer<'a>> {
        self.check_stream(stream)?;
        let (ptr, _sync) = slice.device_ptr(stream);
        // SAFETY: the slice's memory is on the stream's (= our) device and is borrowed for 'a,
        // which the registration's lifetime carries.
        unsafe { self.register_impl(ptr, slice.num_bytes()) }
    }
}

/// Device memory registered with one communicator (`ncclCommRegister`), bound to it.
pub struct RegisteredBuffer<'a> {
    comm: Arc<Inner>,
    ptr: u64,
    bytes: usize,
    handle: *mut c_void,
    _borrow: PhantomData<&'a ()>,
}

// SAFETY: the NCCL handle is an opaque token used only under the communicator's mutex.
unsafe impl Send for RegisteredBuffer<'_> {}
// SAFETY: shared access only reads plain fields; NCCL calls go through the mutex.
unsafe impl Sync for RegisteredBuffer<'_> {}

impl RegisteredBuffer<'_> {
    /// The device address.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    /// Registered bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    /// Identity of the communicator it is registered with ([`Communicator::id`]).
    pub fn comm_id(&self) -> u64 {
        self.comm.id
    }
}

impl fmt::Debug for RegisteredBuffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RegisteredBuffer({:#x}, {} bytes, comm #{})",
            self.ptr, self.bytes, self.comm.id
        )
    }
}

impl Drop for RegisteredBuffer<'_> {
    fn drop(&mut self) {
        let handle = self.handle;
        // An aborted communicator has released its registrations already.
        let _ = self.comm.call("ncclCommDeregister", |c| {
            // SAFETY: `handle` came from ncclCommRegister on this live communicator.
            unsafe { sys::ncclCommDeregister(c, handle) }
        });
    }
}
