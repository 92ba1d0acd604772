//! Planning (host-only validation and launch configuration) and launching.

use crate::error::{LayerNormError, Result};
use crate::variant::{CTA_CHUNKS, LayerNormVariant, ROLE, Team, WARP_CHUNKS};
use crate::{DType, MAX_DIM, Norm};
use cudarc::driver::{
    CudaContext, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg,
};
use dsa_jit_cache::{KernelCache, check_aligned, check_device_ptr, strided_len};
use once_cell::sync::Lazy;
use std::sync::Arc;

pub use dsa_jit_cache::Element;

static KERNELS: Lazy<KernelCache<LayerNormVariant>> = Lazy::new(|| KernelCache::new(|_| 0));

/// Rows whose chunk count is at most this go to a warp team; longer rows to a CTA.
const MAX_WARP_CHUNKS: usize = 128;
/// Threads per block of the warp-team kernels.
const WARP_TEAM_BLOCK: u32 = 128;

/// What to normalize: shape, layout, types and parameters of one launch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig {
    /// Row length (1..=16384).
    pub dim: usize,
    /// Number of rows.
    pub rows: usize,
    /// Input (and gamma/beta) element type.
    pub input: DType,
    /// Output element type.
    pub output: DType,
    /// LayerNorm or RMSNorm.
    pub norm: Norm,
    /// Added to the variance (mean square for RMSNorm); default 1e-5.
    pub eps: f32,
    /// Elements between the starts of consecutive rows of x (>= dim).
    pub x_stride: usize,
    /// Elements between the starts of consecutive rows of y (>= dim).
    pub y_stride: usize,
}

impl LayerNormConfig {
    /// Contiguous LayerNorm with eps 1e-5.
    pub fn new(dim: usize, rows: usize, input: DType, output: DType) -> Self {
        LayerNormConfig {
            dim,
            rows,
            input,
            output,
            norm: Norm::LayerNorm,
            eps: 1e-5,
            x_stride: dim,
            y_stride: dim,
        }
    }

    /// With another normalization.
    pub fn with_norm(mut self, norm: Norm) -> Self {
        self.norm = norm;
        self
    }

    /// With another eps.
    pub fn with_eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// With row strides (elements) for x and y.
    pub fn with_strides(mut self, x_stride: usize, y_stride: usize) -> Self {
        self.x_stride = x_stride;
        self.y_stride = y_stride;
        self
    }
}

/// One kernel choice with its team size and rows per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    variant: LayerNormVariant,
    lanes: u32,
    block: u32,
    rows_per_block: usize,
}

impl Shape {
    fn new(input: DType, output: DType, vector: bool, dim: usize) -> Shape {
        let v = if vector { 16 / input.size() } else { 1 };
        let nch = dim / v;
        let variant = |team, chunks| LayerNormVariant {
            input,
            output,
            vector,
            team,
            chunks,
        };
        if nch <= MAX_WARP_CHUNKS {
            // As many chunks per thread as the row has (up to 4), so each thread has up to four
            // loads in flight: one 16-byte chunk per thread left a 128-thread block at ~20 KB
            // in flight per SM (48 registers, 10 blocks), too little to saturate HBM.
            let chunks = WARP_CHUNKS
                .into_iter()
                .rev()
                .find(|&c| c as usize <= nch)
                .unwrap_or(1);
            let lanes = nch.div_ceil(chunks as usize).next_power_of_two() as u32;
            Shape {
                variant: variant(Team::Warp, chunks),
                lanes,
                block: WARP_TEAM_BLOCK,
                rows_per_block: (WARP_TEAM_BLOCK / 32 * (32 / lanes)) as usize,
            }
        } else {
            let chunks = if nch <= 4 * 1024 {
                CTA_CHUNKS[0]
            } else {
                CTA_CHUNKS[1]
            };
            let threads = (nch.div_ceil(chunks as usize).div_ceil(32) * 32) as u32;
            Shape {
                variant: variant(Team::Cta, chunks),
                lanes: threads,
                block: threads,
                rows_per_block: 1,
            }
        }
    }
}

/// A validated plan: the vector and scalar kernel choices for one [`LayerNormConfig`]; the
/// launch picks the vector one when the pointers allow it.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    cfg: LayerNormConfig,
    vector: Option<Shape>,
    scalar: Shape,
}

impl LayerNorm {
    /// Check the configuration and pick the kernels. Host only; needs no GPU.
    pub fn plan(cfg: LayerNormConfig) -> Result<Self> {
        let dim = cfg.dim;
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(LayerNormError::BadDim { dim });
        }
        if !cfg.eps.is_finite() || cfg.eps < 0.0 {
            return Err(LayerNormError::BadEps { eps: cfg.eps });
        }
        for (which, stride) in [("x", cfg.x_stride), ("y", cfg.y_stride)] {
            if stride < dim {
                return Err(LayerNormError::StrideTooSmall { which, stride, dim });
            }
        }
        let max = i32::MAX as usize;
        if cfg.rows > max {
            return Err(LayerNormError::TooManyRows {
                rows: cfg.rows,
                max,
            });
        }
        let v = 16 / cfg.input.size();
        let vector = [dim, cfg.x_stride, cfg.y_stride].iter().all(|s| s % v == 0);
        Ok(LayerNorm {
            cfg,
            vector: vector.then(|| Shape::new(cfg.input, cfg.output, true, dim)),
            scalar: Shape::new(cfg.input, cfg.output, false, dim),
        })
    }

    /// The configuration this plan was made for.
    pub fn config(&self) -> &LayerNormConfig {
        &self.cfg
    }

    /// The variant a launch with these pointers runs (vector when aligned, else scalar).
    pub fn variant_for(&self, x: u64, y: u64, gamma: u64, beta: u64) -> LayerNormVariant {
        self.shape_for(x, y, gamma, beta).variant
    }

    /// Both variants this plan may launch (vector first when the shape allows one).
    pub fn variants(&self) -> Vec<LayerNormVariant> {
        self.vector
            .iter()
            .chain([&self.scalar])
            .map(|s| s.variant)
            .collect()
    }

    /// Grid, block and shared memory for the variant these pointers select.
    pub fn launch_config(&self, x: u64, y: u64, gamma: u64, beta: u64) -> LaunchConfig {
        let s = self.shape_for(x, y, gamma, beta);
        LaunchConfig {
            grid_dim: (self.cfg.rows.div_ceil(s.rows_per_block) as u32, 1, 1),
            block_dim: (s.block, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    /// Bytes read and written by one launch (x + y; gamma/beta are reused from cache).
    pub fn bytes_moved(&self) -> usize {
        self.cfg.rows * self.cfg.dim * (self.cfg.input.size() + self.cfg.output.size())
    }

    /// Elements x must hold: `(rows - 1) * x_stride + dim` (0 for no rows).
    pub fn input_len(&self) -> usize {
        strided_len(self.cfg.rows, self.cfg.x_stride, self.cfg.dim)
    }

    /// Elements y must hold.
    pub fn output_len(&self) -> usize {
        strided_len(self.cfg.rows, self.cfg.y_stride, self.cfg.dim)
    }

    /// Compile (or fetch) and load both kernels into `ctx` now, e.g. before graph capture.
    pub fn prepare(&self, ctx: &Arc<CudaContext>) -> Result<()> {
        for v in self.variants() {
            KERNELS.get(ctx, &v)?;
        }
        Ok(())
    }

    /// Host checks of the pointers: x and y non-null, every pointer aligned to its element,
    /// no overlap of x and y other than exact in place. gamma/beta may be 0 (absent).
    pub fn check_pointers(&self, x: u64, y: u64, gamma: u64, beta: u64) -> Result<()> {
        let c = &self.cfg;
        // x and y non-null first (alignment 1: the null check alone), then every pointer
        // aligned to its element, so a null y is reported even when x is misaligned.
        for (which, ptr) in [("x", x), ("y", y)] {
            check_device_ptr(which, ptr, 1)?;
        }
        for (which, ptr, align) in [
            ("x", x, c.input.size()),
            ("y", y, c.output.size()),
            ("gamma", gamma, c.input.size()),
            ("beta", beta, c.input.size()),
        ] {
            check_aligned(which, ptr, align as u64)?;
        }
        let x_bytes = (self.input_len() * c.input.size()) as u64;
        let y_bytes = (self.output_len() * c.output.size()) as u64;
        let overlap = x < y + y_bytes && y < x + x_bytes;
        let in_place = x == y && c.x_stride == c.y_stride && c.input.size() == c.output.size();
        if c.rows > 0 && overlap && !in_place {
            return Err(LayerNormError::Overlap);
        }
        Ok(())
    }

    /// Launch on raw device pointers: `x` `[rows, x_stride]` of the input dtype, `y`
    /// `[rows, y_stride]` of the output dtype, `gamma`/`beta` `[dim]` of the input dtype or 0.
    ///
    /// # Safety
    /// The non-null pointers are device addresses in `stream`'s context, valid for
    /// [`LayerNorm::input_len`] / [`LayerNorm::output_len`] / `dim` elements until the launch
    /// completes, and nothing else writes them meanwhile.
    pub unsafe fn launch_raw(
        &self,
        stream: &Arc<CudaStream>,
        x: u64,
        y: u64,
        gamma: u64,
        beta: u64,
    ) -> Result<()> {
        self.check_pointers(x, y, gamma, beta)?;
        if self.cfg.rows == 0 {
            return Ok(());
        }
        let shape = self.shape_for(x, y, gamma, beta);
        let kernel = KERNELS.get(stream.context(), &shape.variant)?;
        let c = &self.cfg;
        let (rows, dim) = (c.rows as i64, c.dim as i32);
        let (xs, ys) = (c.x_stride as i64, c.y_stride as i64);
        let (rms, lanes) = ((c.norm == Norm::RmsNorm) as i32, shape.lanes as i32);
        let mut b = stream.launch_builder(kernel.function(ROLE));
        b.arg(&x)
            .arg(&y)
            .arg(&gamma)
            .arg(&beta)
            .arg(&rows)
            .arg(&dim);
        b.arg(&xs).arg(&ys).arg(&c.eps).arg(&rms).arg(&lanes);
        // SAFETY: the arguments match the kernel's signature (four pointers, i64, i32, two
        // i64, f32, two i32); the caller guarantees the extents; the plan checked shapes,
        // strides, alignment (vector kernel only on aligned pointers) and overlap.
        unsafe { b.launch(self.launch_config(x, y, gamma, beta)) }.map_err(|source| {
            LayerNormError::Launch {
                variant: shape.variant.to_string(),
                source,
            }
        })?;
        Ok(())
    }

    /// Out-of-place norm of typed buffers; `gamma`/`beta` are `[dim]` of the input type.
    pub fn run<I: Element, O: Element>(
        &self,
        stream: &Arc<CudaStream>,
        x: &impl DevicePtr<I>,
        y: &mut impl DevicePtrMut<O>,
        gamma: Option<&dyn DevicePtr<I>>,
        beta: Option<&dyn DevicePtr<I>>,
    ) -> Result<()> {
        self.check_types(I::DTYPE, O::DTYPE)?;
        check_len("x", x.len(), self.input_len())?;
        check_len("y", y.len(), self.output_len())?;
        for (which, v) in [("gamma", &gamma), ("beta", &beta)] {
            if let Some(v) = v {
                check_len(which, v.len(), self.cfg.dim)?;
            }
        }
        let (xp, _rx) = x.device_ptr(stream);
        let (yp, _wy) = y.device_ptr_mut(stream);
        let g = gamma.map(|g| g.device_ptr(stream));
        let b = beta.map(|b| b.device_ptr(stream));
        let (gp, bp) = (g.as_ref().map_or(0, |g| g.0), b.as_ref().map_or(0, |b| b.0));
        // SAFETY: every buffer lives on this stream's context and is long enough (checked);
        // the guards keep cudarc's event tracking alive until after the launch.
        unsafe { self.launch_raw(stream, xp, yp, gp, bp) }
    }

    /// In-place norm of a typed buffer (input and output dtype `T`, equal strides).
    pub fn run_in_place<T: Element>(
        &self,
        stream: &Arc<CudaStream>,
        data: &mut impl DevicePtrMut<T>,
        gamma: Option<&dyn DevicePtr<T>>,
        beta: Option<&dyn DevicePtr<T>>,
    ) -> Result<()> {
        self.check_types(T::DTYPE, T::DTYPE)?;
        check_len("x", data.len(), self.input_len().max(self.output_len()))?;
        for (which, v) in [("gamma", &gamma), ("beta", &beta)] {
            if let Some(v) = v {
                check_len(which, v.len(), self.cfg.dim)?;
            }
        }
        let (p, _w) = data.device_ptr_mut(stream);
        let g = gamma.map(|g| g.device_ptr(stream));
        let b = beta.map(|b| b.device_ptr(stream));
        let (gp, bp) = (g.as_ref().map_or(0, |g| g.0), b.as_ref().map_or(0, |b| b.0));
        // SAFETY: as in `run`; launch_raw rejects unequal strides.
        unsafe { self.launch_raw(stream, p, p, gp, bp) }
    }

    fn check_types(&self, input: DType, output: DType) -> Result<()> {
        if input == self.cfg.input && output == self.cfg.output {
            return Ok(());
        }
        Err(LayerNormError::DTypeMismatch {
            which: "x/y",
            got: format!("{input}->{output}"),
            want: format!("{}->{}", self.cfg.input, self.cfg.output),
        })
    }

    fn shape_for(&self, x: u64, y: u64, gamma: u64, beta: u64) -> Shape {
        let Some(v) = self.vector else {
            return self.scalar;
        };
        let out_align = (v.variant.vec_elems() * self.cfg.output.size()).min(16) as u64;
        let aligned = x % 16 == 0 && gamma % 16 == 0 && beta % 16 == 0 && y % out_align == 0;
        if aligned { v } else { self.scalar }
    }
}

fn check_len(which: &'static str, len: usize, need: usize) -> Result<()> {
    if len < need {
        return Err(LayerNormError::BufferTooShort { which, len, need });
    }
    Ok(())
}
