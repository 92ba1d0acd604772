//! Planning (host-only validation and launch configuration) and launching.

use crate::error::{HadamardError, Result};
use crate::variant::{FP8_BLOCK, HadamardVariant, MAX_LOG_N, MIN_LOG_N, ROLE};
use crate::{DType, Output, ScaleGroup};
use cudarc::driver::{
    CudaContext, CudaStream, DevicePtr, DevicePtrMut, DriverError, LaunchConfig, PushKernelArg, sys,
};
use dsa_jit_cache::{KernelCache, check_device_ptr, strided_len};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use dsa_jit_cache::Element;

static KERNELS: Lazy<KernelCache<HadamardVariant>> =
    Lazy::new(|| KernelCache::new(|v| v.smem_bytes()));

/// Where a long-row plan runs on one device: the variant the device's shared memory holds and
/// how many of its persistent CTAs are resident at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Residency {
    /// The variant launched there (the plan's, or its unstaged form when the stage does not fit).
    pub variant: HadamardVariant,
    /// Streaming multiprocessors.
    pub sm_count: u32,
    /// CTAs of `variant` resident per SM (at least 1).
    pub blocks_per_sm: u32,
}

/// Residency by (context, planned variant), filled on first use (host queries only).
static RESIDENCY: Lazy<RwLock<HashMap<(usize, HadamardVariant), Residency>>> =
    Lazy::new(|| RwLock::new(HashMap::new()));

/// What to transform: the shape, layout, types and scale of one launch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HadamardConfig {
    /// Row length (power of two in 2..=32768).
    pub n: usize,
    /// Number of rows.
    pub rows: usize,
    /// Input element type.
    pub input: DType,
    /// Output type (float, or FP8 with scales).
    pub output: Output,
    /// Elements between the starts of consecutive input rows (>= n).
    pub in_stride: usize,
    /// Elements between the starts of consecutive output rows (>= n).
    pub out_stride: usize,
    /// Multiplier applied after the transform (default `1/sqrt(n)`).
    pub scale: f32,
    /// FP8 only: round each scale up to a power of two.
    pub pow2_scales: bool,
}

impl HadamardConfig {
    /// Contiguous rows, scale `1/sqrt(n)`, exact (not power-of-two) FP8 scales.
    pub fn new(n: usize, rows: usize, input: DType, output: Output) -> Self {
        HadamardConfig {
            n,
            rows,
            input,
            output,
            in_stride: n,
            out_stride: n,
            scale: crate::cpu::default_scale(n),
            pow2_scales: false,
        }
    }

    /// With row strides (elements) for input and output.
    pub fn with_strides(mut self, in_stride: usize, out_stride: usize) -> Self {
        self.in_stride = in_stride;
        self.out_stride = out_stride;
        self
    }

    /// With a scale other than `1/sqrt(n)`.
    pub fn with_scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// With FP8 scales rounded up to powers of two (or not).
    pub fn with_pow2_scales(mut self, pow2: bool) -> Self {
        self.pow2_scales = pow2;
        self
    }
}

/// A validated launch plan: the variant and grid for one [`HadamardConfig`].
#[derive(Clone, Debug)]
pub struct Hadamard {
    cfg: HadamardConfig,
    variant: HadamardVariant,
}

impl Hadamard {
    /// Check the configuration and pick the kernel. Host only; needs no GPU.
    pub fn plan(cfg: HadamardConfig) -> Result<Self> {
        let n = cfg.n;
        let log_n = n.trailing_zeros();
        if !n.is_power_of_two() || !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return Err(HadamardError::BadDim { n });
        }
        if cfg.output
            == (Output::Fp8 {
                group: ScaleGroup::Block128,
            })
            && n < FP8_BLOCK
        {
            return Err(HadamardError::GroupLargerThanRow { n });
        }
        let vec = vec_elems(cfg.input, n);
        for (which, stride) in [("input", cfg.in_stride), ("output", cfg.out_stride)] {
            if stride < n {
                return Err(HadamardError::StrideTooSmall { which, stride, n });
            }
            if stride % vec != 0 {
                let multiple = vec;
                return Err(HadamardError::StrideMisaligned {
                    which,
                    stride,
                    multiple,
                });
            }
        }
        let max = i32::MAX as usize;
        if cfg.rows > max {
            return Err(HadamardError::TooManyRows {
                rows: cfg.rows,
                max,
            });
        }
        let variant = HadamardVariant::preferred(cfg.input, cfg.output, log_n);
        Ok(Hadamard { cfg, variant })
    }

    /// With (the default where it fits) or without the shared-memory input stage of the
    /// long-row kernel; no effect on rows of at most 1024 elements. Both give the same bits;
    /// unstaged is what GPUs with less opt-in shared memory run anyway (and what a comparison
    /// of the two times).
    pub fn with_stage(mut self, stage: bool) -> Self {
        let preferred =
            HadamardVariant::preferred(self.variant.input, self.variant.output, self.variant.log_n);
        self.variant.stage = stage && preferred.stage;
        self
    }

    /// The configuration this plan was made for.
    pub fn config(&self) -> &HadamardConfig {
        &self.cfg
    }

    /// The kernel variant this plan launches on a GPU whose opt-in shared memory holds it
    /// (every variant on sm_90/sm_100); others launch [`HadamardVariant::unstaged`] of it (see
    /// [`Hadamard::residency`]).
    pub fn variant(&self) -> HadamardVariant {
        self.variant
    }

    /// Grid, block and dynamic shared memory of a launch of `variant` (this plan's or its
    /// unstaged form). Rows up to 1024 elements: one block per `rows_per_block` rows. Longer
    /// rows: persistent blocks, at most `resident_blocks` (what the GPU holds at once) and at
    /// most one per row.
    pub fn launch_config(&self, variant: HadamardVariant, resident_blocks: u32) -> LaunchConfig {
        let blocks = if variant.is_small() {
            self.cfg.rows.div_ceil(variant.rows_per_block())
        } else {
            self.cfg.rows.min(resident_blocks.max(1) as usize)
        };
        LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (variant.block_threads(), 1, 1),
            shared_mem_bytes: variant.smem_bytes(),
        }
    }

    /// For rows longer than 1024 elements: the variant this plan runs in `ctx` and how many of
    /// its CTAs the device holds at once (device attributes and the driver's occupancy
    /// calculator, queried once per context and variant; loads the kernel). `None` for shorter
    /// rows, whose launch needs no device facts.
    pub fn residency(&self, ctx: &Arc<CudaContext>) -> Result<Option<Residency>> {
        if self.variant.is_small() {
            return Ok(None);
        }
        let key = (ctx.cu_ctx() as usize, self.variant);
        let known = RESIDENCY
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        if let Some(r) = known {
            return Ok(Some(r));
        }
        let failed = |v: HadamardVariant| {
            move |source: DriverError| HadamardError::Launch {
                variant: v.to_string(),
                source,
            }
        };
        use sys::CUdevice_attribute::*;
        let attr = |a| ctx.attribute(a).map(|x| x.max(0) as u32);
        let sm_count =
            attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).map_err(failed(self.variant))?;
        let optin = attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(failed(self.variant))?;
        let variant = if self.variant.smem_bytes() <= optin {
            self.variant
        } else {
            self.variant.unstaged()
        };
        let kernel = KERNELS.get(ctx, &variant)?;
        let blocks_per_sm = kernel
            .function(ROLE)
            .occupancy_max_active_blocks_per_multiprocessor(
                variant.block_threads(),
                variant.smem_bytes() as usize,
                None,
            )
            .map_err(failed(variant))?
            .max(1);
        let r = Residency {
            variant,
            sm_count: sm_count.max(1),
            blocks_per_sm,
        };
        RESIDENCY
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, r);
        Ok(Some(r))
    }

    /// FP8 scales written per launch (`rows * n / group`); 0 for float outputs.
    pub fn scales_len(&self) -> usize {
        self.variant
            .fp8_group()
            .map_or(0, |g| self.cfg.rows * (self.cfg.n / g))
    }

    /// Bytes read and written by one launch (input + output + scales), for bandwidth figures.
    pub fn bytes_moved(&self) -> usize {
        let elems = self.cfg.rows * self.cfg.n;
        elems * (self.cfg.input.size() + self.cfg.output.size()) + 4 * self.scales_len()
    }

    /// Elements the input buffer must hold: `(rows - 1) * in_stride + n` (0 for no rows).
    pub fn input_len(&self) -> usize {
        strided_len(self.cfg.rows, self.cfg.in_stride, self.cfg.n)
    }

    /// Elements (bytes for FP8) the output buffer must hold.
    pub fn output_len(&self) -> usize {
        strided_len(self.cfg.rows, self.cfg.out_stride, self.cfg.n)
    }

    /// Compile (or fetch from the cache) and load the kernel into `ctx` now, e.g. before
    /// capturing a CUDA graph.
    pub fn prepare(&self, ctx: &Arc<CudaContext>) -> Result<()> {
        match self.residency(ctx)? {
            Some(r) => KERNELS.get(ctx, &r.variant)?,
            None => KERNELS.get(ctx, &self.variant)?,
        };
        Ok(())
    }

    /// Host checks of the device pointers a launch would use: null, alignment, overlap.
    /// `scales` is ignored (may be 0) for float outputs.
    pub fn check_pointers(&self, input: u64, output: u64, scales: u64) -> Result<()> {
        let c = &self.cfg;
        let vec = vec_elems(c.input, c.n);
        let out_align = (vec * c.output.size()).min(16);
        let mut ptrs = vec![
            ("input", input, vec * c.input.size()),
            ("output", output, out_align),
        ];
        if matches!(c.output, Output::Fp8 { .. }) {
            ptrs.push(("scales", scales, 4));
        }
        for (which, ptr, align) in ptrs {
            check_device_ptr(which, ptr, align as u64)?;
        }
        let in_bytes = (self.input_len() * c.input.size()) as u64;
        let out_bytes = (self.output_len() * c.output.size()) as u64;
        let overlap = input < output + out_bytes && output < input + in_bytes;
        let in_place = input == output
            && c.in_stride == c.out_stride
            && matches!(c.output, Output::Float(d) if d.size() == c.input.size());
        if c.rows > 0 && overlap && !in_place {
            return Err(HadamardError::Overlap);
        }
        Ok(())
    }

    /// Launch on raw device pointers: `input` `[rows, in_stride]` of the input dtype, `output`
    /// `[rows, out_stride]` of the output type (bytes for FP8), `scales` `[rows, n / group]`
    /// f32 for FP8 (0 otherwise). Pointers are checked with [`Hadamard::check_pointers`].
    ///
    /// # Safety
    /// The pointers are device addresses in `stream`'s context, valid for
    /// [`Hadamard::input_len`] / [`Hadamard::output_len`] / [`Hadamard::scales_len`] elements
    /// until the launch completes, and nothing else writes them meanwhile.
    pub unsafe fn launch_raw(
        &self,
        stream: &Arc<CudaStream>,
        input: u64,
        output: u64,
        scales: u64,
    ) -> Result<()> {
        self.check_pointers(input, output, scales)?;
        if self.cfg.rows == 0 {
            return Ok(());
        }
        let (variant, resident) = match self.residency(stream.context())? {
            Some(r) => (r.variant, r.sm_count * r.blocks_per_sm),
            None => (self.variant, 0),
        };
        let kernel = KERNELS.get(stream.context(), &variant)?;
        let c = &self.cfg;
        let (rows, in_stride, out_stride) =
            (c.rows as i64, c.in_stride as i64, c.out_stride as i64);
        let pow2 = c.pow2_scales as i32;
        let mut b = stream.launch_builder(kernel.function(ROLE));
        b.arg(&input).arg(&output).arg(&scales).arg(&rows);
        b.arg(&in_stride).arg(&out_stride).arg(&c.scale).arg(&pow2);
        // SAFETY: the argument list matches the kernel's signature (three pointers, three i64,
        // f32, i32); the caller guarantees the buffers cover the extents the grid touches, and
        // the plan checked shapes, strides, alignment and overlap. The shared memory is the
        // variant's, which the kernel cache opted the function into.
        unsafe { b.launch(self.launch_config(variant, resident)) }.map_err(|source| {
            HadamardError::Launch {
                variant: variant.to_string(),
                source,
            }
        })?;
        Ok(())
    }

    /// Out-of-place transform of typed buffers (float output).
    pub fn run<I: Element, O: Element>(
        &self,
        stream: &Arc<CudaStream>,
        input: &impl DevicePtr<I>,
        output: &mut impl DevicePtrMut<O>,
    ) -> Result<()> {
        self.check_types(I::DTYPE, Output::Float(O::DTYPE))?;
        check_len("input", input.len(), self.input_len())?;
        check_len("output", output.len(), self.output_len())?;
        let (x, _rx) = input.device_ptr(stream);
        let (y, _wy) = output.device_ptr_mut(stream);
        // SAFETY: both buffers live on this stream's context and are long enough (checked);
        // the guards keep cudarc's event tracking alive until after the launch.
        unsafe { self.launch_raw(stream, x, y, 0) }
    }

    /// In-place transform of a typed buffer (input and output dtype `T`, equal strides).
    pub fn run_in_place<T: Element>(
        &self,
        stream: &Arc<CudaStream>,
        data: &mut impl DevicePtrMut<T>,
    ) -> Result<()> {
        self.check_types(T::DTYPE, Output::Float(T::DTYPE))?;
        check_len("data", data.len(), self.input_len().max(self.output_len()))?;
        let (p, _w) = data.device_ptr_mut(stream);
        // SAFETY: the buffer lives on this stream's context and covers both extents (checked);
        // launch_raw rejects unequal strides.
        unsafe { self.launch_raw(stream, p, p, 0) }
    }

    /// Fused transform + FP8 quantization of typed buffers: e4m3 bytes and f32 scales.
    pub fn run_fp8<I: Element>(
        &self,
        stream: &Arc<CudaStream>,
        input: &impl DevicePtr<I>,
        output: &mut impl DevicePtrMut<u8>,
        scales: &mut impl DevicePtrMut<f32>,
    ) -> Result<()> {
        if I::DTYPE != self.cfg.input || !matches!(self.cfg.output, Output::Fp8 { .. }) {
            return Err(HadamardError::DTypeMismatch {
                which: "input/output",
                got: format!("{}->e4m3", I::DTYPE),
                want: self.variant.to_string(),
            });
        }
        check_len("input", input.len(), self.input_len())?;
        check_len("output", output.len(), self.output_len())?;
        check_len("scales", scales.len(), self.scales_len())?;
        let (x, _rx) = input.device_ptr(stream);
        let (y, _wy) = output.device_ptr_mut(stream);
        let (s, _ws) = scales.device_ptr_mut(stream);
        // SAFETY: all three buffers live on this stream's context and are long enough.
        unsafe { self.launch_raw(stream, x, y, s) }
    }

    fn check_types(&self, input: DType, output: Output) -> Result<()> {
        if input == self.cfg.input && output == self.cfg.output {
            return Ok(());
        }
        let got = match output {
            Output::Float(d) => format!("{input}->{d}"),
            Output::Fp8 { .. } => format!("{input}->e4m3"),
        };
        Err(HadamardError::DTypeMismatch {
            which: "input/output",
            got,
            want: self.variant.to_string(),
        })
    }
}

/// Elements per 16-byte chunk of the input (fewer for rows shorter than one chunk).
fn vec_elems(input: DType, n: usize) -> usize {
    (16 / input.size()).min(n)
}

fn check_len(which: &'static str, len: usize, need: usize) -> Result<()> {
    if len < need {
        return Err(HadamardError::BufferTooShort { which, len, need });
    }
    Ok(())
}
