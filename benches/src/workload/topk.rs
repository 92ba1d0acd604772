//! Top-k over random scores, with or without a fused index transform.

use super::Workload;
use crate::error::Result;
use crate::gpu::{self, Elem, Gpu};
use crate::shapes::TopkShape;
use cudarc::driver::CudaSlice;
use dsa_jit_cache::dptr;
use dsa_topk::{
    RequestMap, ScoreDtype, TopkArgs, TopkConfig, TopkPlan, Transform, TransformArgs, Tuning,
};
use rand::Rng;

/// Top-k of one shape: rotating copies of random scores, lengths, output, workspace and the
/// transform's tables.
pub struct TopkWorkload {
    shape: TopkShape,
    plan: TopkPlan,
    inputs: Vec<CudaSlice<u8>>,
    lengths: CudaSlice<i32>,
    out: CudaSlice<i32>,
    ws: CudaSlice<u8>,
    tables: Tables,
    args: Vec<TopkArgs>,
}

/// The device data of the fused transform: ragged offsets, or a page table with one request
/// a row (random entries, so a paged write gathers).
enum Tables {
    None,
    Ragged(CudaSlice<i32>),
    Paged {
        page_table: CudaSlice<i32>,
        cols: usize,
        rows_to_requests: CudaSlice<i32>,
    },
}

impl Tables {
    fn new(gpu: &Gpu, shape: TopkShape, transform: Transform) -> Result<Self> {
        let mut rng = gpu::rng(0x7ab1e);
        Ok(match transform {
            Transform::None => Tables::None,
            Transform::Ragged => {
                let offsets: Vec<i32> = (0..shape.rows)
                    .map(|_| rng.random_range(0..1 << 20))
                    .collect();
                Tables::Ragged(gpu.upload(&offsets)?)
            }
            Transform::Paged { page_size, .. } => {
                let cols = shape.stride.div_ceil(page_size as usize);
                let limit = (i32::MAX as u32 / page_size) as i32;
                let table: Vec<i32> = (0..shape.rows * cols)
                    .map(|_| rng.random_range(0..limit.min(1 << 20)))
                    .collect();
                let requests: Vec<i32> = (0..shape.rows as i32).collect();
                Tables::Paged {
                    page_table: gpu.upload(&table)?,
                    cols,
                    rows_to_requests: gpu.upload(&requests)?,
                }
            }
        })
    }

    fn args(&self, rows: usize, gpu: &Gpu) -> TransformArgs {
        let s = &gpu.stream;
        match self {
            Tables::None => TransformArgs::None,
            Tables::Ragged(offsets) => TransformArgs::Ragged {
                offsets: dptr(offsets, s),
            },
            Tables::Paged {
                page_table,
                cols,
                rows_to_requests,
            } => TransformArgs::Paged {
                page_table: dptr(page_table, s),
                stride: *cols,
                cols: *cols,
                num_requests: rows,
                rows_to_requests: dptr(rows_to_requests, s),
            },
        }
    }
}

/// The paged transform of the bench: one request a row, `page_size` tokens a page.
pub fn paged(page_size: u32) -> Transform {
    Transform::Paged {
        page_size,
        requests: RequestMap::PerRow,
    }
}

impl TopkWorkload {
    /// Buffers for `shape` with `dtype` scores and `transform` fused into the write, planned
    /// by [`TopkPlan::new`] with `tuning` (so the tuning database fills what `tuning` leaves
    /// open).
    pub fn new(
        gpu: &Gpu,
        shape: TopkShape,
        dtype: ScoreDtype,
        transform: Transform,
        tuning: Tuning,
    ) -> Result<Self> {
        let config = TopkConfig::new(shape.k).dtype(dtype).transform(transform);
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
            tables: Tables::new(gpu, shape, transform)?,
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
        let transform = self.tables.args(self.shape.rows, gpu);
        self.args = self
            .inputs
            .iter()
            .map(|x| TopkArgs {
                scores: dptr(x, s),
                lengths,
                out,
                workspace: ws,
                workspace_bytes,
                transform,
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
        let keys = if v.keys != dsa_topk::variant::RESIDENT {
            format!(" keys={}", v.keys)
        } else {
            String::new()
        };
        let transform = match self.plan.config().transform {
            Transform::None => String::new(),
            Transform::Ragged => " ragged".into(),
            Transform::Paged { page_size, .. } => format!(" paged{page_size}"),
        };
        format!(
            "{} threads={} cluster={}{keys}{transform}",
            v.dtype,
            v.threads,
            self.plan.cluster()
        )
    }

    /// Scores read, indices written, and the transform's table entries read once: a row's
    /// offset, or the pages its `k` indices fall in (at most one entry an index).
    fn bytes(&self) -> usize {
        let read: usize = (0..self.shape.rows).map(|i| self.shape.length(i)).sum();
        let tables: usize = match self.plan.config().transform {
            Transform::None => 0,
            Transform::Ragged => self.shape.rows,
            Transform::Paged { page_size, .. } => (0..self.shape.rows)
                .map(|i| {
                    self.shape
                        .k
                        .min(self.shape.length(i).div_ceil(page_size as usize))
                })
                .sum(),
        };
        read * self.plan.config().dtype.size() + (self.shape.rows * self.shape.k + tables) * 4
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
