//! Caller-provided device buffers: the index rows and the verify workspace.
//!
//! Nothing in the collective layer allocates device memory: the caller sizes buffers with
//! [`WorkspaceLayout`] on the host, once, and every launch works in them, so every operation
//! can be captured in a CUDA graph and replayed.

use super::error::{CollectiveError, Result};
use super::registration::RegisteredBuffer;
use cudarc::driver::{CudaSlice, CudaStream};
use std::marker::PhantomData;

/// Byte layout of a verify workspace for `rows` rows and `slots` rank slots (1 for a real
/// communicator, N for N simulated ranks on one GPU). All offsets are 8-byte aligned.
///
/// | region | type | size |
/// | --- | --- | --- |
/// | packed fingerprints, per slot `[fp; rows] ++ [!fp; rows]` | u64 | `slots * 16 * rows` |
/// | per-row mismatch flags (1 = differs) | u32 | `4 * rows` |
/// | mismatch count | u32 | 8 (padded) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkspaceLayout {
    /// Rows of indices the workspace serves.
    pub rows: usize,
    /// Rank slots in the packed region.
    pub slots: usize,
    /// Offset of the packed fingerprints (slot 0 is what the all-reduce and compare use).
    pub packed_offset: usize,
    /// Offset of the per-row flags.
    pub flags_offset: usize,
    /// Offset of the mismatch count.
    pub count_offset: usize,
    /// Total bytes.
    pub total_bytes: usize,
}

impl WorkspaceLayout {
    /// The layout for one rank of a real communicator.
    pub const fn verify(rows: usize) -> Self {
        Self::with_slots(rows, 1)
    }

    /// The layout for `ranks` simulated ranks on one GPU ([`super::simulate_ranks`]).
    pub const fn simulation(rows: usize, ranks: usize) -> Self {
        Self::with_slots(rows, ranks)
    }

    const fn with_slots(rows: usize, slots: usize) -> Self {
        let packed_bytes = slots * 16 * rows;
        let flags_offset = packed_bytes;
        let count_offset = (flags_offset + 4 * rows).div_ceil(8) * 8;
        WorkspaceLayout {
            rows,
            slots,
            packed_offset: 0,
            flags_offset,
            count_offset,
            total_bytes: count_offset + 8,
        }
    }

    /// Bytes moved per rank by the verify all-reduce (16 per row).
    pub const fn allreduce_bytes(&self) -> usize {
        16 * self.rows
    }
}

/// Checks shared by every buffer constructor.
fn check_ptr(what: &'static str, ptr: u64, align: u64) -> Result<()> {
    if ptr == 0 {
        return Err(CollectiveError::shape(what, "null device pointer"));
    }
    if ptr % align != 0 {
        return Err(CollectiveError::Misaligned { what, ptr, align });
    }
    Ok(())
}

/// A row-major `[rows, k]` matrix of i32 top-k indices in device memory, borrowed for `'a`.
#[derive(Clone, Copy, Debug)]
pub struct IndexRows<'a> {
    ptr: u64,
    rows: usize,
    k: usize,
    registered_with: Option<u64>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a> IndexRows<'a> {
    /// Checks the shape: `rows >= 1`, `k >= 1`, `rows * k` elements addressable by NCCL and
    /// the kernels.
    pub fn check_shape(rows: usize, k: usize) -> Result<usize> {
        if rows == 0 || k == 0 {
            return Err(CollectiveError::shape(
                "index rows",
                format!("rows ({rows}) and k ({k}) must both be at least 1"),
            ));
        }
        if k > u32::MAX as usize || rows > i32::MAX as usize {
            return Err(CollectiveError::shape(
                "index rows",
                format!("rows {rows} x k {k} exceeds the kernels' 32-bit row/position range"),
            ));
        }
        rows.checked_mul(k)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| CollectiveError::shape("index rows", "rows * k * 4 overflows"))
    }

    /// Index rows at a raw device address.
    ///
    /// # Safety
    /// `ptr` must address `rows * k` i32 of device memory on the device of the communicator and
    /// stream it is used with, valid (and not used by anything else that races with it) for as
    /// long as any operation enqueued on it, or any CUDA graph that captured one, may run.
    pub unsafe fn from_raw(ptr: u64, rows: usize, k: usize) -> Result<Self> {
        Self::check_shape(rows, k)?;
        check_ptr("index rows", ptr, 4)?;
        Ok(IndexRows {
            ptr,
            rows,
            k,
            registered_with: None,
            _borrow: PhantomData,
        })
    }

    /// The first `rows * k` elements of a cudarc slice.
    pub fn from_slice(
        slice: &'a CudaSlice<i32>,
        rows: usize,
        k: usize,
        stream: &CudaStream,
    ) -> Result<Self> {
        let bytes = Self::check_shape(rows, k)?;
        if slice.len() < rows * k {
            return Err(CollectiveError::BufferTooSmall {
                what: "index rows",
                needed: bytes,
                got: slice.num_bytes(),
            });
        }
        let ptr = dsa_jit_cache::dptr(slice, stream);
        // SAFETY: the slice holds at least rows * k i32 and is borrowed for 'a.
        unsafe { Self::from_raw(ptr, rows, k) }
    }

    /// Index rows at the start of a buffer registered with a communicator; operations on
    /// another communicator refuse them ([`CollectiveError::ForeignBuffer`]).
    pub fn from_registered(buf: &'a RegisteredBuffer<'_>, rows: usize, k: usize) -> Result<Self> {
        let bytes = Self::check_shape(rows, k)?;
        if buf.bytes() < bytes {
            return Err(CollectiveError::BufferTooSmall {
                what: "registered index rows",
                needed: bytes,
                got: buf.bytes(),
            });
        }
        // SAFETY: the registration covers `bytes` of device memory that outlives it ('a).
        let mut r = unsafe { Self::from_raw(buf.ptr(), rows, k)? };
        r.registered_with = Some(buf.comm_id());
        Ok(r)
    }

    /// The device address.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Indices per row.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Bytes (`4 * rows * k`).
    pub fn bytes(&self) -> usize {
        4 * self.rows * self.k
    }
    /// The identity of the communicator the memory is registered with, if any.
    pub fn registered_with(&self) -> Option<u64> {
        self.registered_with
    }
}

/// A verify workspace in device memory, borrowed for `'a`, laid out by [`WorkspaceLayout`].
#[derive(Clone, Copy, Debug)]
pub struct VerifyWorkspace<'a> {
    ptr: u64,
    layout: WorkspaceLayout,
    registered_with: Option<u64>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a> VerifyWorkspace<'a> {
    /// A workspace at a raw device address holding `bytes` bytes.
    ///
    /// # Safety
    /// `ptr` must address `bytes` bytes of device memory on the device it is used with, valid
    /// and not raced with for as long as operations (or captured graphs) using it may run.
    pub unsafe fn from_raw(ptr: u64, bytes: usize, layout: WorkspaceLayout) -> Result<Self> {
        if layout.rows == 0 || layout.slots == 0 {
            return Err(CollectiveError::shape(
                "verify workspace",
                "rows and slots must be at least 1",
            ));
        }
        check_ptr("verify workspace", ptr, 8)?;
        if bytes < layout.total_bytes {
            return Err(CollectiveError::BufferTooSmall {
                what: "verify workspace",
                needed: layout.total_bytes,
                got: bytes,
            });
        }
        Ok(VerifyWorkspace {
            ptr,
            layout,
            registered_with: None,
            _borrow: PhantomData,
        })
    }

    /// A workspace in a cudarc byte slice.
    pub fn from_slice(
        slice: &'a CudaSlice<u8>,
        layout: WorkspaceLayout,
        stream: &CudaStream,
    ) -> Result<Self> {
        let ptr = dsa_jit_cache::dptr(slice, stream);
        // SAFETY: the slice holds num_bytes() bytes and is borrowed for 'a.
        unsafe { Self::from_raw(ptr, slice.num_bytes(), layout) }
    }

    /// A workspace at the start of a buffer registered with a communicator.
    pub fn from_registered(buf: &'a RegisteredBuffer<'_>, layout: WorkspaceLayout) -> Result<Self> {
        // SAFETY: the registration covers `bytes()` of device memory that outlives it ('a).
        let mut w = unsafe { Self::from_raw(buf.ptr(), buf.bytes(), layout)? };
        w.registered_with = Some(buf.comm_id());
        Ok(w)
    }

    /// The layout.
    pub fn layout(&self) -> WorkspaceLayout {
        self.layout
    }
    /// The device address of the workspace.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    /// Device address of rank slot `slot`'s packed fingerprints.
    pub fn packed_ptr(&self, slot: usize) -> u64 {
        self.ptr + (self.layout.packed_offset + slot * 16 * self.layout.rows) as u64
    }
    /// Device address of the per-row flags.
    pub fn flags_ptr(&self) -> u64 {
        self.ptr + self.layout.flags_offset as u64
    }
    /// Device address of the mismatch count.
    pub fn count_ptr(&self) -> u64 {
        self.ptr + self.layout.count_offset as u64
    }
    /// The identity of the communicator the memory is registered with, if any.
    pub fn registered_with(&self) -> Option<u64> {
        self.registered_with
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes_and_alignment() {
        for rows in [1usize, 8, 19, 64, 99, 256, 989] {
            let l = WorkspaceLayout::verify(rows);
            assert_eq!(l.packed_offset, 0);
            assert_eq!(l.flags_offset, 16 * rows);
            assert!(l.count_offset >= l.flags_offset + 4 * rows);
            assert_eq!(l.count_offset % 8, 0);
            assert_eq!(l.total_bytes, l.count_offset + 8);
            assert!(l.total_bytes <= 20 * rows + 16);
            assert_eq!(l.allreduce_bytes(), 16 * rows);
            let s = WorkspaceLayout::simulation(rows, 3);
            assert_eq!(s.flags_offset, 3 * 16 * rows);
        }
        assert_eq!(WorkspaceLayout::verify(1).total_bytes, 32);
    }

    #[test]
    fn shape_and_pointer_validation() {
        assert!(IndexRows::check_shape(0, 2048).is_err());
        assert!(IndexRows::check_shape(4, 0).is_err());
        assert_eq!(IndexRows::check_shape(4, 2048).unwrap(), 4 * 2048 * 4);
        // SAFETY: these are rejected before anything dereferences the address.
        unsafe {
            assert!(matches!(
                IndexRows::from_raw(0, 1, 1),
                Err(CollectiveError::InvalidShape { .. })
            ));
            assert!(matches!(
                IndexRows::from_raw(0x1002, 1, 1),
                Err(CollectiveError::Misaligned { align: 4, .. })
            ));
            let l = WorkspaceLayout::verify(8);
            assert!(matches!(
                VerifyWorkspace::from_raw(0x1000, l.total_bytes - 1, l),
                Err(CollectiveError::BufferTooSmall { .. })
            ));
            assert!(matches!(
                VerifyWorkspace::from_raw(0x1004, l.total_bytes, l),
                Err(CollectiveError::Misaligned { align: 8, .. })
            ));
            let w = VerifyWorkspace::from_raw(0x1000, l.total_bytes, l).unwrap();
            assert_eq!(w.flags_ptr(), 0x1000 + 128);
            assert_eq!(w.count_ptr(), 0x1000 + l.count_offset as u64);
            assert!(w.registered_with().is_none());
        }
    }
}
