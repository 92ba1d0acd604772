//! Compiling registered kernel variants in parallel, with a progress bar: `dsa jit warm` and
//! the GPU-less `dsa check`.

use crate::error::{CliError, Result};
use dsa_jit_cache::{Arch, JitCache, VariantFamily, registered_families};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a batch of compiles did.
pub struct Summary {
    /// Per family: (name, variants).
    pub families: Vec<(&'static str, usize)>,
    /// Variant × arch pairs.
    pub jobs: usize,
    /// Fresh NVRTC compiles.
    pub compiled: u64,
    /// Images read from the disk cache.
    pub disk_hits: u64,
    /// `variant arch: error or warnings`, one per failed pair.
    pub failures: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

/// The registered families named in `names` (all when empty).
pub fn families(names: &[String]) -> Result<Vec<&'static VariantFamily>> {
    let all = registered_families();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter().copied().find(|f| f.name == n).ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|f| f.name).collect();
                CliError::Usage(format!(
                    "unknown kernel family `{n}`; known: {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// Parse `sm_90a`-style targets.
pub fn archs(names: &[String]) -> Result<Vec<Arch>> {
    names
        .iter()
        .map(|s| {
            Arch::parse(s).ok_or_else(|| {
                CliError::Usage(format!(
                    "`{s}` is not a GPU architecture (examples: sm_80, sm_90a, sm_100)"
                ))
            })
        })
        .collect()
}

/// Compile every variant of `families` for every arch in `archs` through `jit` on `threads`
/// threads. A variant that fails, or compiles with warnings, is a failure.
pub fn compile_all(
    jit: &JitCache,
    families: &[&'static VariantFamily],
    archs: &[Arch],
    threads: usize,
) -> Result<Summary> {
    dsa_jit_cache::libs::nvrtc_location()?;
    let per_family: Vec<_> = families.iter().map(|f| (f.name, (f.all)())).collect();
    let jobs: Vec<_> = per_family
        .iter()
        .flat_map(|(_, specs)| specs.iter())
        .flat_map(|spec| archs.iter().map(move |&a| (spec, a)))
        .collect();
    let bar = ProgressBar::new(jobs.len() as u64).with_style(
        ProgressStyle::with_template("  {spinner} compiling [{bar:30}] {pos}/{len} {wide_msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let before = jit.stats();
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                while let Some((spec, arch)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    bar.set_message(format!("{} {arch}", spec.id));
                    let failure = match jit.image(spec, *arch) {
                        Ok(img) if img.log.is_empty() => None,
                        Ok(img) => Some(format!("{} {arch}: warnings:\n{}", spec.id, img.log)),
                        Err(e) => Some(format!("{} {arch}: {e}", spec.id)),
                    };
                    if let Some(f) = failure {
                        failures.lock().expect("no panics hold the lock").push(f);
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let after = jit.stats();
    let mut failures = failures.into_inner().expect("no panics hold the lock");
    failures.sort();
    Ok(Summary {
        families: per_family.iter().map(|(n, s)| (*n, s.len())).collect(),
        jobs: jobs.len(),
        compiled: after.compiles - before.compiles,
        disk_hits: after.disk_hits - before.disk_hits,
        failures,
        elapsed: start.elapsed(),
    })
}

/// Default compile threads: the machine's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
