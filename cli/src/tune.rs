//! `dsa tune`: search launch parameters per shape bucket, keep only candidates whose output is
//! bit-identical to the heuristic's, and record the fastest in the tuning database.

use crate::args::{TopkShapeArgs, TuneArgs, TuneOp};
use crate::bench::{score_dtype, topk_shapes};
use crate::error::{CliError, Result};
use crate::table::Table;
use dsa_benches::Gpu;
use dsa_benches::workload::{TopkWorkload, median_us};
use dsa_jit_cache::tuning::{Entry, TuningDb};
use dsa_topk::variant::{MAX_CLUSTER, RESIDENT, THREADS, WIDE_RESIDENT};
use dsa_topk::{TopkConfig, TopkPlan, Transform, Tuning};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

/// A candidate must beat the heuristic by this factor to replace it (timing noise).
const MIN_GAIN: f64 = 1.02;

/// `dsa tune`.
pub fn run(a: &TuneArgs) -> Result<()> {
    let path = match a.db.clone().or_else(TuningDb::default_path) {
        Some(p) => p,
        None => {
            return Err(CliError::Usage(
                "no tuning database path: the JIT cache is off (DSA_JIT_CACHE=off); pass --db FILE or set DSA_TUNING_DB".into(),
            ));
        }
    };
    match (&a.op, a.report) {
        (_, true) => report(&path),
        (Some(TuneOp::Topk(s)), false) => topk(&path, s),
        (None, false) => Err(CliError::Usage(
            "name an op to tune (`dsa tune topk`) or pass --report".into(),
        )),
    }
}

/// Every [`Tuning`] of top-k: threads per block (the chunk a block streams) times CTAs per row
/// (the cluster; up to 16 on sm_90+, only shapes of at most two waves of blocks), and for
/// blocks of up to 512 threads whose rows stay in registers with 32 scores a thread, that form
/// too.
fn candidates(gpu: &Gpu, config: TopkConfig, rows: usize, stride: usize) -> Result<Vec<TopkPlan>> {
    let max_cluster = if gpu.info.compute_capability.0 >= 9 {
        MAX_CLUSTER
    } else {
        1
    };
    let clusters = (0..=max_cluster.trailing_zeros())
        .map(|b| 1u32 << b)
        .filter(|&c| c == 1 || rows * c as usize <= 4 * gpu.info.sm_count as usize);
    let mut out = Vec::new();
    for cluster in clusters {
        for &threads in &THREADS {
            for keys in [RESIDENT, WIDE_RESIDENT] {
                if keys == WIDE_RESIDENT && threads > 512 {
                    continue;
                }
                let tuning = Tuning {
                    threads: Some(threads),
                    cluster: Some(cluster),
                    keys: Some(keys),
                };
                let plan =
                    TopkPlan::with_db(config, rows, stride, &gpu.info, tuning, &TuningDb::empty())?;
                // 32 scores a thread only matter where the rows stay in registers (a streaming
                // variant keeps 16).
                if plan.variant().keys == keys {
                    out.push(plan);
                }
            }
        }
    }
    Ok(out)
}

fn params(p: &TopkPlan) -> [(&'static str, u64); 3] {
    [
        ("threads", p.variant().threads as u64),
        ("cluster", p.cluster() as u64),
        ("keys", p.variant().keys as u64),
    ]
}

/// `threads/CTAs per row`, and `x32` for 32 resident scores a thread.
fn label(p: &TopkPlan) -> String {
    let v = p.variant();
    let wide = if v.keys != RESIDENT {
        format!("x{}", v.keys)
    } else {
        String::new()
    };
    format!("{}/{}{wide}", v.threads, p.cluster())
}

fn topk(path: &Path, a: &TopkShapeArgs) -> Result<()> {
    let shapes = topk_shapes(a, false)?;
    let gpu = Gpu::open()?;
    println!(
        "dsa tune topk on {} ({}): threads per block per bucket (t/p below: threads/tiles per row); database {}",
        gpu.name,
        gpu.arch,
        path.display()
    );
    println!("every candidate's indices must equal the heuristic's bit for bit\n");
    let mut db = TuningDb::load_or_warn(path);
    let mut jobs = Vec::new();
    for &d in &a.dtype {
        for &s in &shapes {
            let config = TopkConfig::new(s.k).dtype(score_dtype(d));
            let cands = candidates(&gpu, config, s.rows, s.stride)?;
            jobs.push((config, s, cands));
        }
    }
    let bar = ProgressBar::new(jobs.iter().map(|j| j.2.len() as u64).sum()).with_style(
        ProgressStyle::with_template("  {spinner} tuning [{bar:30}] {pos}/{len} {wide_msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut table = Table::new(&[
        "dtype",
        "shape",
        "bucket",
        "default t/p",
        "us",
        "tuned t/p",
        "us",
        "speedup",
        "tried",
    ]);
    let mut mismatches = Vec::new();
    for (config, shape, cands) in jobs {
        bar.set_message(format!("{} {shape}", config.dtype));
        let heuristic = TopkPlan::with_db(
            config,
            shape.rows,
            shape.stride,
            &gpu.info,
            Tuning::default(),
            &TuningDb::empty(),
        )?;
        let mut w = TopkWorkload::new(
            &gpu,
            shape,
            config.dtype,
            Transform::None,
            Tuning::default(),
        )?;
        w.set_plan(&gpu, heuristic.clone())?;
        let reference = w.output(&gpu)?;
        let default_us = median_us(&gpu, &w)?;
        let mut best = (heuristic.clone(), default_us);
        for cand in &cands {
            w.set_plan(&gpu, cand.clone())?;
            if w.output(&gpu)? != reference {
                mismatches.push(format!(
                    "{} {shape} threads/tiles {}",
                    config.dtype,
                    label(cand)
                ));
            } else {
                let us = median_us(&gpu, &w)?;
                if us * MIN_GAIN < best.1 {
                    best = (cand.clone(), us);
                }
            }
            bar.inc(1);
        }
        let mut entry = Entry::topk(
            &gpu.name,
            &gpu.arch.to_string(),
            &config.dtype.to_string(),
            (heuristic.kmax_class(), shape.rows, shape.stride),
            params(&best.0),
        );
        entry.default_params = params(&heuristic)
            .iter()
            .map(|&(k, v)| (k.to_string(), v))
            .collect();
        entry.default_us = default_us;
        entry.tuned_us = best.1;
        entry.shape = shape.to_string();
        table.push(vec![
            config.dtype.to_string(),
            shape.to_string(),
            entry.bucket.clone(),
            label(&heuristic),
            format!("{default_us:.1}"),
            label(&best.0),
            format!("{:.1}", best.1),
            format!("{:.2}x", entry.speedup()),
            cands.len().to_string(),
        ]);
        db.upsert(entry);
    }
    bar.finish_and_clear();
    print!("{table}");
    db.save(path)?;
    println!(
        "\nwrote {} ({} entries)",
        path.display(),
        db.entries().len()
    );
    if !mismatches.is_empty() {
        for m in &mismatches {
            eprintln!("  determinism violated: {m}");
        }
        return Err(CliError::Failed(format!(
            "{} candidate(s) gave indices different from the heuristic's",
            mismatches.len()
        )));
    }
    Ok(())
}

fn show(p: &dsa_jit_cache::tuning::Params) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `dsa tune --report`: every entry's tuned vs default time.
fn report(path: &Path) -> Result<()> {
    let db = TuningDb::load(path)?;
    println!("tuning database {}\n", path.display());
    if db.is_empty() {
        println!("no entries yet: run `dsa tune topk` on a GPU");
        return Ok(());
    }
    let mut t = Table::new(&[
        "gpu", "arch", "op", "dtype", "bucket", "shape", "default", "us", "tuned", "us", "speedup",
    ]);
    for e in db.entries() {
        t.push(vec![
            e.gpu.clone(),
            e.arch.clone(),
            e.op.clone(),
            e.dtype.clone(),
            e.bucket.clone(),
            e.shape.clone(),
            show(&e.default_params),
            format!("{:.1}", e.default_us),
            show(&e.params),
            format!("{:.1}", e.tuned_us),
            format!("{:.2}x", e.speedup()),
        ]);
    }
    print!("{t}");
    let better = db.entries().iter().filter(|e| e.speedup() > 1.0).count();
    println!(
        "\n{better} of {} buckets beat the built-in heuristic",
        db.entries().len()
    );
    Ok(())
}
