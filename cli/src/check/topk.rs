//! Top-k on the GPU against `dsa_topk::cpu::topk`: every dtype × tie-break × output order, and
//! each fused transform; exact equality per row.

use super::{Outcome, Report};
use crate::error::Result;
use cudarc::driver::CudaSlice;
use dsa_benches::Gpu;
use dsa_benches::gpu::{Elem, random_values, rng};
use dsa_jit_cache::dptr;
use dsa_topk::cpu::{self, Inputs, TransformData};
use dsa_topk::{
    OutputOrder, RequestMap, ScoreDtype, TieBreak, TopkArgs, TopkConfig, TopkPlan, Transform,
    TransformArgs, Tuning,
};
use rand::Rng;
use rand::rngs::StdRng;

const K: usize = 2048;

/// Score rows with ties, NaN, signed zeros and short rows; values exact in `elem`.
pub struct Case {
    /// Rows.
    pub rows: usize,
    /// Elements per row.
    pub stride: usize,
    /// Candidates per row.
    pub lengths: Vec<i32>,
    /// `[rows, stride]` scores (exactly representable in the dtype).
    pub scores: Vec<f32>,
}

impl Case {
    /// `rows` × `stride`: even rows draw from a few integers (many ties), odd rows are
    /// continuous; row 0 holds NaNs and both zeros; `short` rows get random lengths.
    pub fn new(rng: &mut StdRng, rows: usize, stride: usize, short: bool, elem: Elem) -> Case {
        let mut scores = Vec::with_capacity(rows * stride);
        for r in 0..rows {
            if r % 2 == 0 {
                scores.extend((0..stride).map(|_| rng.random_range(-20i32..20) as f32));
            } else {
                scores.extend(random_values(rng, stride, 8.0, elem));
            }
        }
        for (j, v) in [(3, f32::NAN), (17, -0.0), (18, 0.0), (40, f32::INFINITY)] {
            scores[j.min(stride - 1)] = v;
        }
        let lengths = (0..rows)
            .map(|r| match (short, r) {
                (false, _) | (true, 0) => stride as i32,
                (true, 1) => 0,
                (true, 2) => K as i32 - 1,
                (true, 3) => K as i32 + 1,
                (true, _) => rng.random_range(0..=stride as i32),
            })
            .collect();
        Case {
            rows,
            stride,
            lengths,
            scores,
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            scores: &self.scores,
            stride: self.stride,
            lengths: &self.lengths,
            row_starts: None,
        }
    }
}

/// Host data of a fused transform for `rows` rows of `stride`.
struct TransformCase {
    transform: Transform,
    offsets: Vec<i32>,
    table: Vec<i32>,
    pt_stride: usize,
    cols: usize,
    requests: Vec<i32>,
}

const PAGE: u32 = 64;
const NUM_REQ: usize = 3;

impl TransformCase {
    fn new(rng: &mut StdRng, transform: Transform, rows: usize, stride: usize) -> Self {
        let pages = stride.div_ceil(PAGE as usize);
        let requests = match transform {
            Transform::Paged {
                requests: RequestMap::CuSeqlens,
                ..
            } => vec![0, (rows / 3) as i32, (2 * rows / 3) as i32, rows as i32 - 2],
            _ => (0..rows)
                .map(|_| rng.random_range(-1..=NUM_REQ as i32))
                .collect(),
        };
        TransformCase {
            transform,
            offsets: (0..rows).map(|_| rng.random_range(0..1 << 20)).collect(),
            table: (0..NUM_REQ * (pages + 8))
                .map(|_| rng.random_range(-1..4096))
                .collect(),
            pt_stride: pages + 8,
            cols: pages - pages / 8,
            requests,
        }
    }

    fn cpu(&self) -> TransformData<'_> {
        match self.transform {
            Transform::None => TransformData::None,
            Transform::Ragged => TransformData::Ragged {
                offsets: &self.offsets,
            },
            Transform::Paged { .. } => TransformData::Paged {
                page_table: &self.table,
                stride: self.pt_stride,
                cols: self.cols,
                num_requests: NUM_REQ,
                rows_to_requests: &self.requests,
            },
        }
    }

    /// Device copies (kept alive by the caller) and the launch arguments pointing at them.
    fn device(&self, gpu: &Gpu) -> Result<(Vec<CudaSlice<i32>>, TransformArgs)> {
        let s = &gpu.stream;
        Ok(match self.transform {
            Transform::None => (Vec::new(), TransformArgs::None),
            Transform::Ragged => {
                let off = gpu.upload(&self.offsets)?;
                let args = TransformArgs::Ragged {
                    offsets: dptr(&off, s),
                };
                (vec![off], args)
            }
            Transform::Paged { .. } => {
                let (table, map) = (gpu.upload(&self.table)?, gpu.upload(&self.requests)?);
                let args = TransformArgs::Paged {
                    page_table: dptr(&table, s),
                    stride: self.pt_stride,
                    cols: self.cols,
                    num_requests: NUM_REQ,
                    rows_to_requests: dptr(&map, s),
                };
                (vec![table, map], args)
            }
        })
    }
}

/// Run `config` on `case` on the GPU; returns the `[rows, k]` output.
fn run_gpu(gpu: &Gpu, config: TopkConfig, case: &Case, tx: &TransformCase) -> Result<Vec<i32>> {
    let plan = TopkPlan::new(config, case.rows, case.stride, &gpu.info, Tuning::default())?;
    let elem = Elem::from(config.dtype);
    let scores = gpu.upload(&elem.encode(&case.scores))?;
    let lengths = gpu.upload(&case.lengths)?;
    let out = gpu.upload(&vec![i32::MIN; case.rows * config.k])?;
    let ws = gpu.zeros::<u8>(plan.workspace_bytes())?;
    let (_keep, transform) = tx.device(gpu)?;
    let s = &gpu.stream;
    let args = TopkArgs {
        scores: dptr(&scores, s),
        lengths: dptr(&lengths, s),
        out: dptr(&out, s),
        workspace: dptr(&ws, s),
        workspace_bytes: plan.workspace_bytes(),
        transform,
        ..TopkArgs::default()
    };
    // SAFETY: scores [rows, stride] of the plan's dtype, lengths [rows], out [rows, k] and the
    // workspace (the plan's bytes) are live allocations on this context; the transform's
    // buffers are kept alive in `_keep` until the download below synchronises.
    unsafe { plan.launch(s, &args)? };
    Ok(gpu.download(&out)?)
}

/// Rows of `got` that differ from `want`, as a figure.
pub fn compare_rows(got: &[i32], want: &[i32], k: usize) -> (bool, String) {
    let rows = want.len() / k;
    let bad: Vec<usize> = (0..rows)
        .filter(|&r| got[r * k..(r + 1) * k] != want[r * k..(r + 1) * k])
        .collect();
    match bad.first() {
        None => (true, format!("exact: {rows}/{rows} rows equal")),
        Some(first) => (
            false,
            format!("{} of {rows} rows differ (first: row {first})", bad.len()),
        ),
    }
}

fn check(
    gpu: &Gpu,
    config: TopkConfig,
    cases: &[&Case],
    tx: &TransformCase,
) -> Result<(bool, String)> {
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for case in cases {
        got.extend(run_gpu(gpu, config, case, tx)?);
        want.extend(cpu::topk(&case.inputs(), &config, &tx.cpu()));
    }
    Ok(compare_rows(&got, &want, config.k))
}

/// Every dtype × tie-break × order (a short-row shape and a split-row shape), then each
/// transform.
pub fn gpu(gpu: &Gpu, report: &mut Report) {
    let mut r = rng(0x7c);
    for dtype in ScoreDtype::ALL {
        let elem = Elem::from(dtype);
        let short = Case::new(&mut r, 19, 9000, true, elem);
        let split = Case::new(&mut r, 2, 150_000, false, elem);
        let none = TransformCase::new(&mut r, Transform::None, 0, 1);
        for tie in [TieBreak::Small, TieBreak::Large] {
            for order in [OutputOrder::Index, OutputOrder::Sorted] {
                let config = TopkConfig::new(K).dtype(dtype).tie_break(tie).order(order);
                let what = format!("{dtype} tie={tie:?} order={order:?}, 19x9000 + 2x150000")
                    .to_lowercase();
                report.add(Outcome::from_result(
                    "topk",
                    what,
                    check(gpu, config, &[&short, &split], &none),
                ));
            }
        }
    }
    let case = Case::new(&mut r, 19, 9000, true, Elem::F32);
    let transforms = [
        ("ragged", Transform::Ragged),
        (
            "paged per-row",
            Transform::Paged {
                page_size: PAGE,
                requests: RequestMap::PerRow,
            },
        ),
        (
            "paged cu_seqlens",
            Transform::Paged {
                page_size: PAGE,
                requests: RequestMap::CuSeqlens,
            },
        ),
    ];
    for (name, transform) in transforms {
        let tx = TransformCase::new(&mut r, transform, case.rows, case.stride);
        let config = TopkConfig::new(K)
            .order(OutputOrder::Sorted)
            .transform(transform);
        let what = format!("f32 {name} (page {PAGE}), 19x9000");
        report.add(Outcome::from_result(
            "topk",
            what,
            check(gpu, config, &[&case], &tx),
        ));
    }
}
