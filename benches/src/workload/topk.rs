//! Top-k over random scores.

use super::Workload;
use crate::error::Result;
use crate::gpu::{self, Elem, Gpu};
use crate::shapes::TopkShape;
use cudarc::driver::CudaSlice;
use dsa_jit_cache::dptr;
use dsa_topk::{ScoreDtype, TopkArgs, TopkConfig, TopkPlan, Tuning};

/// Top-k of one shape: rotating copies of random scores, lengths, output and workspace.
pub struct TopkWorkload {
    shape: TopkShape,
    plan: TopkPlan,
    inputs: Vec<CudaSlice<u8>>,
    lengths: CudaSlice<i32>,
    out: CudaSlice<i32>,
    ws: CudaSlice<u8>,
    args: Vec<TopkArgs>,
}

impl TopkWorkload {
    /// Buffers for `shape` with `dtype` scores, planned by [`TopkPlan::new`] with `tuning` (so
    /// the tuning database fills what `tuning` leaves open).
    pub fn new(gpu: &Gpu, shape: TopkShape, dtype: ScoreDtype, tuning: Tuning) -> Result<Self> {
        let config = TopkConfig::new(shape.k).dtype(dtype);
        let plan = TopkPlan::new(config, shape.rows, shape.stride, &gpu.info, tuning)?;
        let elem = Elem::from(dtype);
        let mut rng = gpu::rng(0x70b4);
        let mut host = vec![0f32; shape.rows * shape.stride];
        for (i, row) in host.chunks_mut(shape.stride).enumerate() {
            let n = shape.length(i);
            row[..n].copy_from_slice(&gpu::random_values(&mut rng, n, 8.0, elem));
        }
        let bytes = elem.encode(&host);
        drop(host);
        let copies = gpu.copies_for(bytes.len());
        let inputs = (0..copies)
            .map(|_| gpu.upload(&bytes))
            .collect::<Result<Vec<_>>>()?;
        let lens: Vec<i32> = (0..shape.rows).map(|i| shape.length(i) as i32).collect();
        let mut w = TopkWorkload {
            shape,
            lengths: gpu.upload(&lens)?,
            out: gpu.zeros(shape.rows * shape.k)?,
            ws: gpu.zeros(plan.workspace_bytes())?,
            inputs,
            plan,
            args: Vec::new(),
        };
        w.set_args(gpu);
        Ok(w)
    }

    /// Launch with another plan of the same config and shape (the tuner's candidates).
    pub fn set_plan(&mut self, gpu: &Gpu, plan: TopkPlan) -> Result<()> {
        if plan.workspace_bytes() > self.ws.len() {
            self.ws = gpu.zeros(plan.workspace_bytes())?;
        }
        self.plan = plan;
        self.set_args(gpu);
        Ok(())
    }

    /// The plan launched.
    pub fn plan(&self) -> &TopkPlan {
        &self.plan
    }

    /// The shape.
    pub fn topk_shape(&self) -> TopkShape {
        self.shape
    }

    /// The `[rows, k]` output of run 0 (launches it and synchronises).
    pub fn output(&self, gpu: &Gpu) -> Result<Vec<i32>> {
        self.launch(gpu, 0)?;
        gpu.download(&self.out)
    }

    fn set_args(&mut self, gpu: &Gpu) {
        let s = &gpu.stream;
        let (lengths, out, ws) = (
            dptr(&self.lengths, s),
            dptr(&self.out, s),
            dptr(&self.ws, s),
        );
        let workspace_bytes = self.plan.workspace_bytes();
        self.args = self
            .inputs
            .iter()
            .map(|x| TopkArgs {
                scores: dptr(x, s),
                lengths,
                out,
                workspace: ws,
                workspace_bytes,
                ..TopkArgs::default()
            })
            .collect();
    }
}

impl Workload for TopkWorkload {
    fn shape(&self) -> String {
        self.shape.to_string()
    }

    fn detail(&self) -> String {
        let v = self.plan.variant();
        format!(
            "{} threads={} cluster={}",
            v.dtype,
            v.threads,
            self.plan.cluster()
        )
    }

    fn bytes(&self) -> usize {
        let read: usize = (0..self.shape.rows).map(|i| self.shape.length(i)).sum();
        read * self.plan.config().dtype.size() + self.shape.rows * self.shape.k * 4
    }

    fn launch(&self, gpu: &Gpu, i: usize) -> Result<()> {
        // SAFETY: every pointer in `args` is a live allocation of this workload with the shape
        // the plan documents (scores [rows, stride], lengths [rows], out [rows, k], workspace of
        // at least the plan's bytes), all on `gpu`'s context.
        unsafe {
            self.plan
                .launch(&gpu.stream, &self.args[i % self.args.len()])?
        };
        Ok(())
    }
}
