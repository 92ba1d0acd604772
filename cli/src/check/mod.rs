//! `dsa check`: every op against its CPU reference on the GPU; without one, every variant
//! through NVRTC and the CPU references against independent checks.

mod collective;
mod cpu;
mod hadamard;
mod layernorm;
mod topk;

use crate::args::CheckArgs;
use crate::compile;
use crate::error::{CliError, Result};
use dsa_benches::Gpu;
use dsa_jit_cache::{Arch, JitCache, VariantFamily};

/// One check's verdict and its error figure.
pub struct Outcome {
    /// `PASS`, `FAIL` or `SKIP`.
    pub status: Status,
    /// The op (`topk`, `hadamard`, ...).
    pub op: &'static str,
    /// The variant / shape checked.
    pub what: String,
    /// The error figure, or why it failed or was skipped.
    pub figure: String,
}

/// A check's verdict.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Within tolerance (or exactly equal where the contract is exact).
    Pass,
    /// Outside tolerance, or an error.
    Fail,
    /// Could not run here (e.g. no NCCL).
    Skip,
}

impl Outcome {
    /// `pass` decides between PASS and FAIL.
    pub fn new(
        op: &'static str,
        what: impl Into<String>,
        pass: bool,
        figure: impl Into<String>,
    ) -> Self {
        Outcome {
            status: if pass { Status::Pass } else { Status::Fail },
            op,
            what: what.into(),
            figure: figure.into(),
        }
    }

    /// An outcome from a result: an error is a FAIL with the error as its figure.
    pub fn from_result(
        op: &'static str,
        what: impl Into<String>,
        r: Result<(bool, String)>,
    ) -> Self {
        match r {
            Ok((pass, figure)) => Outcome::new(op, what, pass, figure),
            Err(e) => Outcome::new(op, what, false, format!("error: {e}")),
        }
    }

    /// A check that could not run here.
    pub fn skip(op: &'static str, what: impl Into<String>, why: impl Into<String>) -> Self {
        Outcome {
            status: Status::Skip,
            op,
            what: what.into(),
            figure: why.into(),
        }
    }
}

/// Prints outcomes as they come and counts them.
#[derive(Default)]
pub struct Report {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Report {
    /// Print and count one outcome.
    pub fn add(&mut self, o: Outcome) {
        let tag = match o.status {
            Status::Pass => {
                self.passed += 1;
                "PASS"
            }
            Status::Fail => {
                self.failed += 1;
                "FAIL"
            }
            Status::Skip => {
                self.skipped += 1;
                "SKIP"
            }
        };
        let mut figure = o.figure.lines();
        println!(
            "  {tag}  {:<10} {:<46} {}",
            o.op,
            o.what,
            figure.next().unwrap_or("")
        );
        for more in figure {
            println!("  {:<4}  {:<10} {:<46} {more}", "", "", "");
        }
    }

    /// The summary line; an error if anything failed.
    pub fn finish(self) -> Result<()> {
        println!();
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        println!("{} passed, {} failed{skipped}", self.passed, self.failed);
        if self.failed > 0 {
            return Err(CliError::Failed(format!("{} check(s) failed", self.failed)));
        }
        Ok(())
    }
}

/// ‖got − want‖ / ‖want‖ (0 when both are zero).
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    if num == 0.0 {
        0.0
    } else {
        (num / den.max(f64::MIN_POSITIVE)).sqrt()
    }
}

/// The figure of a tolerance check.
pub fn tolerance(err: f64, tol: f64) -> (bool, String) {
    (err < tol, format!("rel err {err:.2e} (tol {tol:.0e})"))
}

/// `dsa check`.
pub fn run(a: &CheckArgs) -> Result<()> {
    let families = compile::families(&a.families)?;
    let archs = compile::archs(&a.archs)?;
    match Gpu::open() {
        Ok(gpu) => on_gpu(&gpu, &families),
        Err(dsa_benches::Error::NoGpu(why)) => without_gpu(&why, &families, &archs),
        Err(e) => Err(e.into()),
    }
}

fn describe_jit() -> Result<String> {
    let nvrtc = dsa_jit_cache::libs::nvrtc_location()?;
    let (major, minor) = dsa_jit_cache::nvrtc::version()?;
    let at = nvrtc.map_or("the loader path".to_string(), |p| p.display().to_string());
    let cache = JitCache::global()
        .disk()
        .map_or("memory only".to_string(), |d| d.dir().display().to_string());
    Ok(format!("NVRTC {major}.{minor} ({at}); JIT cache: {cache}"))
}

fn compile_outcomes(
    report: &mut Report,
    families: &[&'static VariantFamily],
    archs: &[Arch],
) -> Result<()> {
    let s = compile::compile_all(
        JitCache::global(),
        families,
        archs,
        compile::default_threads(),
    )?;
    let targets: Vec<String> = archs.iter().map(Arch::to_string).collect();
    for (name, count) in &s.families {
        let prefix = format!("{name}.");
        let failed: Vec<&String> = s
            .failures
            .iter()
            .filter(|f| f.starts_with(&prefix))
            .collect();
        let what = format!("compile {count} variants for {}", targets.join(", "));
        let figure = match failed.first() {
            None => "no errors, no warnings".to_string(),
            Some(first) => format!("{} failed; first: {first}", failed.len()),
        };
        report.add(Outcome::new(
            "jit",
            format!("{name}: {what}"),
            failed.is_empty(),
            figure,
        ));
    }
    println!(
        "  ({} variant/target pairs in {:.1} s: {} compiled, {} from the disk cache)",
        s.jobs,
        s.elapsed.as_secs_f64(),
        s.compiled,
        s.disk_hits
    );
    Ok(())
}

fn on_gpu(gpu: &Gpu, families: &[&'static VariantFamily]) -> Result<()> {
    println!(
        "dsa check on {} ({}, {} SMs, {} MiB L2)",
        gpu.name,
        gpu.arch,
        gpu.info.sm_count,
        gpu.info.l2_bytes >> 20
    );
    println!("{}\n", describe_jit()?);
    let mut report = Report::default();
    compile_outcomes(&mut report, families, &[gpu.arch])?;
    for f in families {
        match f.name {
            "topk" => topk::gpu(gpu, &mut report),
            "hadamard" => hadamard::gpu(gpu, &mut report),
            "layernorm" => layernorm::gpu(gpu, &mut report),
            "collective" => collective::gpu(gpu, &mut report),
            other => report.add(Outcome::skip(
                other,
                "GPU run",
                "no check for this family yet",
            )),
        }
    }
    report.finish()
}

fn without_gpu(why: &str, families: &[&'static VariantFamily], archs: &[Arch]) -> Result<()> {
    let archs = if archs.is_empty() {
        Arch::CI_TARGETS.to_vec()
    } else {
        archs.to_vec()
    };
    let targets: Vec<String> = archs.iter().map(Arch::to_string).collect();
    println!("dsa check: no GPU ({why}).");
    println!(
        "Compiling every kernel variant for {} and checking the CPU references instead.",
        targets.join(", ")
    );
    println!("{}\n", describe_jit()?);
    let mut report = Report::default();
    compile_outcomes(&mut report, families, &archs)?;
    for f in families {
        cpu::check(f.name, &mut report);
    }
    report.finish()
}
