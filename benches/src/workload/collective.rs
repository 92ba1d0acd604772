//! The verify kernels of the collective layer (fingerprint + compare) on one GPU, no NCCL.

use super::Workload;
use crate::error::Result;
use crate::gpu::{self, Gpu};
use cudarc::driver::CudaSlice;
use dsa_indexer::collective::kernels::{launch_compare, launch_fingerprint};
use dsa_indexer::collective::{IndexRows, VerifyWorkspace, WorkspaceLayout};
use dsa_jit_cache::dptr;
use rand::Rng;

/// Fingerprint and compare of `[rows, k]` indices, with rotating index buffers.
pub struct VerifyKernelsWorkload {
    rows: usize,
    k: usize,
    inputs: Vec<CudaSlice<i32>>,
    ws: CudaSlice<u8>,
    layout: WorkspaceLayout,
}

impl VerifyKernelsWorkload {
    /// Buffers for `rows` × `k` random indices.
    pub fn new(gpu: &Gpu, rows: usize, k: usize) -> Result<Self> {
        IndexRows::check_shape(rows, k)?;
        let mut rng = gpu::rng(0xc011);
        let host: Vec<i32> = (0..rows * k)
            .map(|_| rng.random_range(-1..1 << 20))
            .collect();
        let inputs = (0..gpu.copies_for(host.len() * 4))
            .map(|_| gpu.upload(&host))
            .collect::<Result<Vec<_>>>()?;
        let layout = WorkspaceLayout::verify(rows);
        Ok(VerifyKernelsWorkload {
            rows,
            k,
            inputs,
            ws: gpu.zeros(layout.total_bytes)?,
            layout,
        })
    }
}

impl Workload for VerifyKernelsWorkload {
    fn shape(&self) -> String {
        format!("{}x{}", self.rows, self.k)
    }

    fn detail(&self) -> String {
        dsa_indexer::collective::VerifyKernels::for_k(self.k).to_string()
    }

    fn bytes(&self) -> usize {
        self.rows * self.k * 4
    }

    fn launch(&self, gpu: &Gpu, i: usize) -> Result<()> {
        let s = &gpu.stream;
        let x = &self.inputs[i % self.inputs.len()];
        // SAFETY: `x` holds rows * k i32 and `ws` the layout's bytes, both owned by this
        // workload on `gpu`'s context and used only on its stream.
        let (idx, ws) = unsafe {
            (
                IndexRows::from_raw(dptr(x, s), self.rows, self.k)?,
                VerifyWorkspace::from_raw(dptr(&self.ws, s), self.ws.len(), self.layout)?,
            )
        };
        launch_fingerprint(&idx, &ws, 0, s)?;
        launch_compare(&ws, self.k, s)?;
        Ok(())
    }
}
