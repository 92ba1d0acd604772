//! LayerNorm / RMSNorm with gamma and beta over random rows.

use super::Workload;
use crate::error::Result;
use crate::gpu::{self, Elem, Gpu};
use crate::shapes::RowShape;
use cudarc::driver::CudaSlice;
use dsa_jit_cache::dptr;
use dsa_layernorm::{DType, LayerNorm, LayerNormConfig, Norm};

/// One norm plan with rotating inputs, its output, gamma and beta.
pub struct LayerNormWorkload {
    shape: RowShape,
    plan: LayerNorm,
    inputs: Vec<CudaSlice<u8>>,
    // Kept alive for the pointers below.
    _bufs: [CudaSlice<u8>; 3],
    ptrs: (Vec<u64>, [u64; 3]),
}

impl LayerNormWorkload {
    /// Buffers for `shape` with `dtype` in and out, `norm` with gamma and beta.
    pub fn new(gpu: &Gpu, shape: RowShape, dtype: DType, norm: Norm) -> Result<Self> {
        let cfg = LayerNormConfig::new(shape.dim, shape.rows, dtype, dtype).with_norm(norm);
        let plan = LayerNorm::plan(cfg)?;
        let elem = Elem::from(dtype);
        let mut rng = gpu::rng(0x1a7e);
        let bytes = elem.encode(&gpu::random_values(&mut rng, plan.input_len(), 4.0, elem));
        let inputs = (0..gpu.copies_for(bytes.len()))
            .map(|_| gpu.upload(&bytes))
            .collect::<Result<Vec<_>>>()?;
        let y = gpu.zeros::<u8>(plan.output_len() * dtype.size())?;
        let gamma =
            gpu.upload(&elem.encode(&gpu::random_values(&mut rng, shape.dim, 2.0, elem)))?;
        let beta = gpu.upload(&elem.encode(&gpu::random_values(&mut rng, shape.dim, 2.0, elem)))?;
        let s = &gpu.stream;
        let ptrs = (
            inputs.iter().map(|x| dptr(x, s)).collect(),
            [dptr(&y, s), dptr(&gamma, s), dptr(&beta, s)],
        );
        Ok(LayerNormWorkload {
            shape,
            plan,
            inputs,
            _bufs: [y, gamma, beta],
            ptrs,
        })
    }
}

impl Workload for LayerNormWorkload {
    fn shape(&self) -> String {
        self.shape.to_string()
    }

    fn detail(&self) -> String {
        let [y, g, b] = self.ptrs.1;
        self.plan.variant_for(self.ptrs.0[0], y, g, b).to_string()
    }

    fn bytes(&self) -> usize {
        self.plan.bytes_moved()
    }

    fn launch(&self, gpu: &Gpu, i: usize) -> Result<()> {
        let x = self.ptrs.0[i % self.inputs.len()];
        let [y, g, b] = self.ptrs.1;
        // SAFETY: x holds input_len elements, y output_len, gamma and beta dim elements of the
        // plan's dtypes, all live allocations on `gpu`'s context.
        unsafe { self.plan.launch_raw(&gpu.stream, x, y, g, b)? };
        Ok(())
    }
}
