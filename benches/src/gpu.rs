//! Opening the GPU, timing, and random device data.

use crate::error::{Error, Result};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DeviceRepr, ValidAsZeroBits};
use dsa_jit_cache::{Arch, DeviceInfo, JitError, libs, median_gpu_us};
use half::{bf16, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// Device 0 with one non-default stream (CUDA graph capture needs one) and its facts.
pub struct Gpu {
    /// The primary context.
    pub ctx: Arc<CudaContext>,
    /// The stream every workload runs on.
    pub stream: Arc<CudaStream>,
    /// Planning facts.
    pub info: DeviceInfo,
    /// The driver's name of the device (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// The compilation target of the device.
    pub arch: Arch,
}

impl Gpu {
    /// Open device 0, or say why there is no usable GPU ([`Error::NoGpu`]) without touching a
    /// missing driver.
    pub fn open() -> Result<Gpu> {
        if !libs::driver_available() {
            return Err(Error::NoGpu(
                "the CUDA driver (libcuda.so.1) is not installed on this machine".into(),
            ));
        }
        let count = CudaContext::device_count()
            .map_err(|e| Error::NoGpu(format!("the CUDA driver found no usable device ({e})")))?;
        if count < 1 {
            return Err(Error::NoGpu("the CUDA driver reports no device".into()));
        }
        let ctx = CudaContext::new(0)
            .map_err(|e| Error::NoGpu(format!("device 0 could not be opened ({e})")))?;
        let stream = ctx
            .new_stream()
            .map_err(Error::driver("creating a stream"))?;
        let info = DeviceInfo::of(&ctx)?;
        let name = ctx
            .name()
            .map_err(Error::driver("reading the device name"))?;
        let (major, minor) = info.compute_capability;
        Ok(Gpu {
            arch: Arch::for_device(major, minor),
            ctx,
            stream,
            info,
            name,
        })
    }

    /// Copy `data` to a new device buffer.
    pub fn upload<T: DeviceRepr>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        self.stream
            .clone_htod(data)
            .map_err(Error::driver("uploading to the device"))
    }

    /// A zeroed device buffer of `n` elements (at least one, so it has an address).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<CudaSlice<T>> {
        self.stream
            .alloc_zeros(n.max(1))
            .map_err(Error::driver("allocating device memory"))
    }

    /// Copy a device buffer back (synchronises the stream).
    pub fn download<T: DeviceRepr + Default + Clone>(&self, data: &CudaSlice<T>) -> Result<Vec<T>> {
        self.stream
            .clone_dtoh(data)
            .map_err(Error::driver("downloading from the device"))
    }

    /// Device-to-device copy bandwidth (GB/s, read + write) over 1 GiB: the floor's yardstick.
    pub fn copy_bandwidth_gbs(&self) -> Result<f64> {
        Ok(dsa_jit_cache::gpu::copy_bandwidth_gbs(
            &self.stream,
            1 << 30,
        )?)
    }

    /// Copies of an input of `bytes` bytes to rotate through so the working set exceeds three
    /// times the L2 (1 to 64).
    pub fn copies_for(&self, bytes: usize) -> usize {
        copies_for(bytes, self.info.l2_bytes as usize)
    }
}

/// Copies of an input of `bytes` bytes that make a working set of at least `3 * l2` (1 to 64).
pub fn copies_for(bytes: usize, l2: usize) -> usize {
    (3 * l2).div_ceil(bytes.max(1)).clamp(1, 64)
}

/// Median GPU time (µs) of `iters` runs of `f` after `warmup`, each between two CUDA events on
/// `stream` ([`median_gpu_us`]); `f(i)` gets the run index to rotate inputs. The first error
/// of `f` is returned as it is.
pub fn time_us<E: Into<Error>>(
    stream: &Arc<CudaStream>,
    warmup: usize,
    iters: usize,
    mut f: impl FnMut(usize) -> Result<(), E>,
) -> Result<f64> {
    let mut failed = None;
    let timed = median_gpu_us(stream, warmup, iters, |i| {
        f(i).map_err(|e| {
            failed = Some(e.into());
            // Stops the timing loop; `failed` is what the caller sees.
            JitError::Arch("workload failed".into())
        })
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(timed?),
    }
}

/// An element type of device data, for the ops' dtypes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    /// f32.
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
}

impl Elem {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::Bf16 | Elem::F16 => 2,
        }
    }

    /// `x` rounded (nearest even) to this type and widened back: the value the device sees.
    pub fn round(self, x: f32) -> f32 {
        match self {
            Elem::F32 => x,
            Elem::Bf16 => bf16::from_f32(x).to_f32(),
            Elem::F16 => f16::from_f32(x).to_f32(),
        }
    }

    /// Little-endian bytes of `values` in this type.
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() * self.size());
        for &x in values {
            match self {
                Elem::F32 => out.extend_from_slice(&x.to_le_bytes()),
                Elem::Bf16 => out.extend_from_slice(&bf16::from_f32(x).to_le_bytes()),
                Elem::F16 => out.extend_from_slice(&f16::from_f32(x).to_le_bytes()),
            }
        }
        out
    }

    /// Values from little-endian bytes of this type.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Elem::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Elem::Bf16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Elem::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        }
    }
}

macro_rules! elem_from {
    ($t:ty) => {
        impl From<$t> for Elem {
            fn from(d: $t) -> Self {
                match d {
                    <$t>::F32 => Elem::F32,
                    <$t>::Bf16 => Elem::Bf16,
                    <$t>::F16 => Elem::F16,
                }
            }
        }
    };
}
elem_from!(dsa_topk::ScoreDtype);
elem_from!(dsa_jit_cache::DType);

/// A seeded generator (a fixed seed per purpose, so runs are comparable).
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` uniform values in `[-scale, scale)`, already rounded to `elem`.
pub fn random_values(rng: &mut StdRng, n: usize, scale: f32, elem: Elem) -> Vec<f32> {
    (0..n)
        .map(|_| elem.round(rng.random_range(-scale..scale)))
        .collect()
}
