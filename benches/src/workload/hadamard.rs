//! Hadamard transform (float or fused FP8 output) over random rows.

use super::Workload;
use crate::error::Result;
use crate::gpu::{self, Elem, Gpu};
use crate::shapes::RowShape;
use cudarc::driver::CudaSlice;
use dsa_hadamard::{DType, Hadamard, HadamardConfig, Output};
use dsa_jit_cache::dptr;

/// One Hadamard plan with rotating inputs, its output and scales.
pub struct HadamardWorkload {
    shape: RowShape,
    plan: Hadamard,
    inputs: Vec<CudaSlice<u8>>,
    // Kept alive for the pointers below.
    _out: CudaSlice<u8>,
    _scales: CudaSlice<f32>,
    ptrs: (Vec<u64>, u64, u64),
}

impl HadamardWorkload {
    /// Buffers for `shape`, `input` elements, `output` float type or FP8.
    pub fn new(gpu: &Gpu, shape: RowShape, input: DType, output: Output) -> Result<Self> {
        let plan = Hadamard::plan(HadamardConfig::new(shape.dim, shape.rows, input, output))?;
        let elem = Elem::from(input);
        let host = gpu::random_values(&mut gpu::rng(0x4ada), plan.input_len(), 4.0, elem);
        let bytes = elem.encode(&host);
        drop(host);
        let inputs = (0..gpu.copies_for(bytes.len()))
            .map(|_| gpu.upload(&bytes))
            .collect::<Result<Vec<_>>>()?;
        let out = gpu.zeros::<u8>(plan.output_len() * output.size())?;
        let scales = gpu.zeros::<f32>(plan.scales_len())?;
        let s = &gpu.stream;
        let ptrs = (
            inputs.iter().map(|x| dptr(x, s)).collect(),
            dptr(&out, s),
            if plan.scales_len() > 0 {
                dptr(&scales, s)
            } else {
                0
            },
        );
        Ok(HadamardWorkload {
            shape,
            plan,
            inputs,
            _out: out,
            _scales: scales,
            ptrs,
        })
    }
}

impl Workload for HadamardWorkload {
    fn shape(&self) -> String {
        self.shape.to_string()
    }

    fn detail(&self) -> String {
        self.plan.variant().to_string()
    }

    fn bytes(&self) -> usize {
        self.plan.bytes_moved()
    }

    fn launch(&self, gpu: &Gpu, i: usize) -> Result<()> {
        let (inputs, out, scales) = &self.ptrs;
        let x = inputs[i % self.inputs.len()];
        // SAFETY: the input copies hold input_len elements, the output output_len elements of
        // the output type and the scales scales_len f32, all live on `gpu`'s context.
        unsafe { self.plan.launch_raw(&gpu.stream, x, *out, *scales)? };
        Ok(())
    }
}
