//! `dsa bench <op>`: median GPU time per shape, achieved bandwidth and its share of the floor
//! (the bytes each run must move at the device's measured copy bandwidth).

mod collective;
mod indexer;
mod plot;

use crate::args::{BenchArgs, BenchOp, Dtype, RowShapeArgs, TopkShapeArgs, TransformKind};
use crate::error::{CliError, Result};
use crate::table::Table;
use dsa_benches::Gpu;
use dsa_benches::shapes::{self, RowShape, TopkShape};
use dsa_benches::workload::{self, HadamardWorkload, LayerNormWorkload, TopkWorkload, Workload};
use dsa_topk::{MAX_K, ScoreDtype, Transform, Tuning};
use indicatif::ProgressBar;
use serde::Serialize;
use std::path::Path;

/// One timed shape.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// The shape, e.g. `64x131072`.
    pub shape: String,
    /// The kernel / plan used.
    pub kernel: String,
    /// Median GPU time, µs.
    pub us: f64,
    /// Median time replayed from a CUDA graph, µs (collective only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_us: Option<f64>,
    /// Bytes one run must move.
    pub bytes: usize,
    /// Achieved bandwidth, GB/s.
    pub gbs: f64,
    /// Time to move `bytes` at the copy bandwidth, µs.
    pub floor_us: f64,
    /// `floor_us / us` in percent.
    pub pct_of_floor: f64,
}

impl Measured {
    /// Figures of `bytes` moved in `us` against a copy bandwidth of `copy_gbs`.
    pub fn new(shape: String, kernel: String, us: f64, bytes: usize, copy_gbs: f64) -> Self {
        let floor_us = bytes as f64 / (copy_gbs * 1e3);
        Measured {
            shape,
            kernel,
            us,
            graph_us: None,
            bytes,
            gbs: bytes as f64 / (us * 1e3),
            floor_us,
            pct_of_floor: 100.0 * floor_us / us,
        }
    }
}

/// The JSON document `--json` writes.
#[derive(Serialize)]
struct Document<'a> {
    op: &'a str,
    device: &'a str,
    arch: String,
    copy_bandwidth_gbs: f64,
    results: &'a [Measured],
}

/// Top-k score dtype from the command line.
pub fn score_dtype(d: Dtype) -> ScoreDtype {
    match d {
        Dtype::F32 => ScoreDtype::F32,
        Dtype::Bf16 => ScoreDtype::Bf16,
        Dtype::F16 => ScoreDtype::F16,
    }
}

/// The top-k shapes the options ask for (with `default_prefill` when no shape is given),
/// checked on the host.
pub fn topk_shapes(a: &TopkShapeArgs, default_prefill: bool) -> Result<Vec<TopkShape>> {
    if a.k == 0 || a.k > MAX_K {
        return Err(CliError::Usage(format!(
            "--k {} is out of range: 1..={MAX_K}",
            a.k
        )));
    }
    let given = !a.rows.is_empty() || !a.lengths.is_empty() || !a.prefill.is_empty();
    let or = |v: &[usize], d: &[usize]| if v.is_empty() { d.to_vec() } else { v.to_vec() };
    let (rows, lengths) = (
        or(&a.rows, &shapes::TOPK_ROWS),
        or(&a.lengths, &shapes::TOPK_LENGTHS),
    );
    let decode = !given || !a.rows.is_empty() || !a.lengths.is_empty();
    let extra: &[(usize, usize)] = if given { &[] } else { &[(1024, 8192)] };
    let prefill = match (given, default_prefill) {
        (false, true) => shapes::TOPK_PREFILL.to_vec(),
        _ => a.prefill.clone(),
    };
    let (rows, lengths) = if decode {
        (rows, lengths)
    } else {
        (vec![], vec![])
    };
    let all = shapes::topk_shapes(&rows, &lengths, extra, &prefill, a.k);
    if let Some(bad) = all.iter().find(|s| {
        s.rows == 0 || s.stride == 0 || s.rows > i32::MAX as usize || s.stride > i32::MAX as usize
    }) {
        return Err(CliError::Usage(format!(
            "bad top-k shape {bad}: rows and lengths must be in 1..=2^31-1"
        )));
    }
    Ok(all)
}

fn row_shapes(a: &RowShapeArgs, defaults: Vec<RowShape>, max_dim: usize) -> Result<Vec<RowShape>> {
    let all = if a.dims.is_empty() {
        defaults
            .into_iter()
            .map(|s| RowShape {
                rows: a.rows.unwrap_or(s.rows),
                ..s
            })
            .collect()
    } else {
        shapes::hadamard_shapes(&a.dims, a.rows)
    };
    if let Some(bad) = all
        .iter()
        .find(|s| s.dim == 0 || s.dim > max_dim || s.rows == 0)
    {
        return Err(CliError::Usage(format!(
            "bad shape {bad}: dims must be in 1..={max_dim}, rows at least 1"
        )));
    }
    Ok(all)
}

/// `dsa bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
    if let BenchOp::Indexer(ia) = &a.op {
        return indexer::run(ia, a.json.as_deref(), a.plot.as_deref());
    }
    // Check the options before touching the GPU, so mistakes are reported first.
    let plan = plan(&a.op)?;
    let gpu = Gpu::open()?;
    let copy_gbs = gpu.copy_bandwidth_gbs()?;
    println!(
        "dsa bench {} on {} ({}): copy bandwidth {copy_gbs:.0} GB/s (read + write, 1 GiB)",
        plan.name, gpu.name, gpu.arch
    );
    println!(
        "floor = bytes moved once / copy bandwidth; median of {} runs after {} warm-up, inputs rotated beyond L2\n",
        workload::ITERS,
        workload::WARMUP
    );
    let results = match plan.kind {
        Kind::Workloads(make) => time_all(&gpu, copy_gbs, &make)?,
        Kind::Collective { rows, k } => {
            let mut m = collective::time(&gpu, copy_gbs, &rows, k)?;
            m.extend(collective::time_all_gpus(copy_gbs, &rows, k)?);
            m
        }
    };
    print_table(&results);
    if let Some(path) = &a.json {
        let doc = Document {
            op: plan.name,
            device: &gpu.name,
            arch: gpu.arch.to_string(),
            copy_bandwidth_gbs: copy_gbs,
            results: &results,
        };
        let text = serde_json::to_string_pretty(&doc).expect("results serialize");
        write(path, text.as_bytes())?;
        println!("\nwrote {}", path.display());
    }
    if let Some(path) = &a.plot {
        let title = format!("dsa {} on {}", plan.name, gpu.name);
        plot::bandwidth_svg(path, &title, &results, copy_gbs)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Builds one shape's workload on the GPU.
type MakeFn = Box<dyn Fn(&Gpu) -> dsa_benches::Result<Box<dyn Workload>>>;
/// The shapes to time: label and builder.
type Make = Vec<(String, MakeFn)>;

enum Kind {
    Workloads(Make),
    Collective { rows: Vec<usize>, k: usize },
}

struct Plan {
    name: &'static str,
    kind: Kind,
}

fn boxed<W: Workload + 'static>(
    w: dsa_benches::Result<W>,
) -> dsa_benches::Result<Box<dyn Workload>> {
    Ok(Box::new(w?))
}

fn plan(op: &BenchOp) -> Result<Plan> {
    Ok(match op {
        BenchOp::Topk {
            shape: a,
            transform,
            page_size,
        } => {
            let mut make: Make = Vec::new();
            for &d in &a.dtype {
                for s in topk_shapes(a, true)? {
                    for &t in transform {
                        let dtype = score_dtype(d);
                        let t = match t {
                            TransformKind::None => Transform::None,
                            TransformKind::Ragged => Transform::Ragged,
                            TransformKind::Paged => workload::paged(*page_size),
                        };
                        make.push((
                            s.to_string(),
                            Box::new(move |g| {
                                boxed(TopkWorkload::new(g, s, dtype, t, Tuning::default()))
                            }),
                        ));
                    }
                }
            }
            Plan {
                name: "topk",
                kind: Kind::Workloads(make),
            }
        }
        BenchOp::Hadamard { shape, fp8 } => {
            let dtype = float_dtype(shape.dtype);
            let output = if *fp8 {
                dsa_hadamard::Output::Fp8 {
                    group: dsa_hadamard::ScaleGroup::Block128,
                }
            } else {
                dsa_hadamard::Output::Float(dtype)
            };
            let make = row_shapes(shape, shapes::hadamard_default(), 32768)?
                .into_iter()
                .map(|s| -> (String, MakeFn) {
                    (
                        s.to_string(),
                        Box::new(move |g| boxed(HadamardWorkload::new(g, s, dtype, output))),
                    )
                })
                .collect();
            Plan {
                name: "hadamard",
                kind: Kind::Workloads(make),
            }
        }
        BenchOp::Layernorm { shape, rms } => {
            let dtype = float_dtype(shape.dtype);
            let norm = if *rms {
                dsa_layernorm::Norm::RmsNorm
            } else {
                dsa_layernorm::Norm::LayerNorm
            };
            let make = row_shapes(shape, shapes::layernorm_default(), dsa_layernorm::MAX_DIM)?
                .into_iter()
                .map(|s| -> (String, MakeFn) {
                    (
                        s.to_string(),
                        Box::new(move |g| boxed(LayerNormWorkload::new(g, s, dtype, norm))),
                    )
                })
                .collect();
            Plan {
                name: "layernorm",
                kind: Kind::Workloads(make),
            }
        }
        BenchOp::Indexer(_) => {
            return Err(CliError::Usage(
                "the indexer bench runs through bench::indexer::run".into(),
            ));
        }
        BenchOp::CollectiveVerify { rows, k } => {
            let rows = if rows.is_empty() {
                shapes::COLLECTIVE_ROWS.to_vec()
            } else {
                rows.clone()
            };
            if *k == 0 || rows.contains(&0) {
                return Err(CliError::Usage("rows and k must be at least 1".into()));
            }
            Plan {
                name: "collective-verify",
                kind: Kind::Collective { rows, k: *k },
            }
        }
    })
}

fn float_dtype(d: Dtype) -> dsa_jit_cache::DType {
    match d {
        Dtype::F32 => dsa_jit_cache::DType::F32,
        Dtype::Bf16 => dsa_jit_cache::DType::Bf16,
        Dtype::F16 => dsa_jit_cache::DType::F16,
    }
}

fn time_all(gpu: &Gpu, copy_gbs: f64, make: &Make) -> Result<Vec<Measured>> {
    let bar = ProgressBar::new(make.len() as u64);
    let mut out = Vec::with_capacity(make.len());
    for (label, f) in make {
        bar.set_message(label.clone());
        let w = f(gpu)?;
        let us = workload::median_us(gpu, w.as_ref())?;
        out.push(Measured::new(
            w.shape(),
            w.detail(),
            us,
            w.bytes(),
            copy_gbs,
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

fn print_table(results: &[Measured]) {
    let graphs = results.iter().any(|m| m.graph_us.is_some());
    let mut headers = vec!["shape", "kernel", "median us"];
    if graphs {
        headers.push("graph us");
    }
    headers.extend(["MB moved", "GB/s", "floor us", "% of floor"]);
    let mut t = Table::new(&headers);
    for m in results {
        let mut row = vec![m.shape.clone(), m.kernel.clone(), format!("{:.1}", m.us)];
        if graphs {
            row.push(m.graph_us.map_or("-".into(), |g| format!("{g:.1}")));
        }
        row.extend([
            format!("{:.2}", m.bytes as f64 / 1e6),
            format!("{:.0}", m.gbs),
            format!("{:.1}", m.floor_us),
            format!("{:.0}%", m.pct_of_floor),
        ]);
        t.push(row);
    }
    print!("{t}");
}

/// Write `bytes` to `path`.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| CliError::Io {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(rows: &[usize], lengths: &[usize], prefill: &[usize]) -> TopkShapeArgs {
        TopkShapeArgs {
            rows: rows.to_vec(),
            lengths: lengths.to_vec(),
            prefill: prefill.to_vec(),
            k: 2048,
            dtype: vec![Dtype::F32],
        }
    }

    #[test]
    fn topk_shape_options() {
        let all = topk_shapes(&args(&[], &[], &[]), true).unwrap();
        assert_eq!(all, shapes::topk_default());
        assert_eq!(topk_shapes(&args(&[], &[], &[]), false).unwrap().len(), 17);
        let some = topk_shapes(&args(&[8], &[], &[]), true).unwrap();
        let names: Vec<String> = some.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["8x8192", "8x32768", "8x131072", "8x262144"]);
        let prefill = topk_shapes(&args(&[], &[], &[4096]), true).unwrap();
        assert_eq!(prefill.len(), 1);
        assert!(prefill[0].causal);
        assert!(topk_shapes(&args(&[0], &[], &[]), true).is_err());
        let bad_k = TopkShapeArgs {
            k: 5000,
            ..args(&[], &[], &[])
        };
        assert!(matches!(topk_shapes(&bad_k, true), Err(CliError::Usage(_))));
    }

    #[test]
    fn topk_runs_each_shape_once_a_transform() {
        use clap::Parser;
        let cli = crate::args::Cli::try_parse_from([
            "dsa",
            "bench",
            "topk",
            "--rows",
            "8",
            "--lengths",
            "8192,32768",
            "--transform",
            "none,ragged,paged",
            "--page-size",
            "64",
        ])
        .unwrap();
        let crate::args::Command::Bench(b) = cli.command else {
            panic!("not a bench");
        };
        let BenchOp::Topk { page_size, .. } = &b.op else {
            panic!("not top-k");
        };
        assert_eq!(*page_size, 64);
        let Kind::Workloads(make) = plan(&b.op).unwrap().kind else {
            panic!("not workloads");
        };
        let names: Vec<&str> = make.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "8x8192", "8x8192", "8x8192", "8x32768", "8x32768", "8x32768"
            ]
        );
    }
}
