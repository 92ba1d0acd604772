//! `dsa jit`: ahead-of-time compiles, the cache folder's entries, and the cache's timings.

use crate::args::JitAction;
use crate::compile;
use crate::error::{CliError, Result};
use crate::table::Table;
use dsa_benches::Gpu;
use dsa_jit_cache::tuning::TuningDb;
use dsa_jit_cache::{Arch, CacheConfig, JitCache, KernelVariant, registered_families};
use dsa_topk::{ScoreDtype, TopkVariant};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `dsa jit ...`.
pub fn run(action: &JitAction) -> Result<()> {
    match action {
        JitAction::Warm {
            archs,
            families,
            threads,
        } => warm(archs, families, *threads),
        JitAction::Ls => ls(),
        JitAction::Clear => clear(),
        JitAction::Bench { arch } => bench(arch.as_deref()),
        JitAction::DiskProbe { dir, arch } => disk_probe(dir, arch),
    }
}

/// This machine's GPU arch, if it has a usable GPU.
fn local_arch() -> Option<Arch> {
    Gpu::open().ok().map(|g| g.arch)
}

fn cache_dir() -> Result<PathBuf> {
    JitCache::global()
        .disk()
        .map(|d| d.dir().to_path_buf())
        .ok_or_else(|| CliError::Usage("the disk cache is off (DSA_JIT_CACHE=off)".into()))
}

fn warm(archs: &[String], families: &[String], threads: Option<usize>) -> Result<()> {
    let families = compile::families(families)?;
    let mut archs = compile::archs(archs)?;
    if archs.is_empty() {
        archs = Arch::CI_TARGETS.to_vec();
        archs.extend(local_arch().filter(|a| !archs.contains(a)));
    }
    let names: Vec<&str> = families.iter().map(|f| f.name).collect();
    let targets: Vec<String> = archs.iter().map(Arch::to_string).collect();
    println!(
        "warming the JIT cache: {} for {}",
        names.join(", "),
        targets.join(", ")
    );
    let jit = JitCache::global();
    let s = compile::compile_all(
        jit,
        &families,
        &archs,
        threads.unwrap_or_else(compile::default_threads),
    )?;
    let variants: usize = s.families.iter().map(|(_, n)| n).sum();
    println!(
        "{} variant/target pairs ({variants} variants x {} targets) in {:.1} s: {} compiled, {} already on disk",
        s.jobs,
        archs.len(),
        s.elapsed.as_secs_f64(),
        s.compiled,
        s.disk_hits
    );
    match jit.disk() {
        Some(d) => println!("cache: {}", d.dir().display()),
        None => println!("cache: memory only (DSA_JIT_CACHE=off): nothing was kept"),
    }
    if s.failures.is_empty() {
        return Ok(());
    }
    for f in &s.failures {
        eprintln!("  {f}");
    }
    Err(CliError::Failed(format!(
        "{} variant/target pair(s) failed to compile cleanly",
        s.failures.len()
    )))
}

/// Content keys of every registered variant for the usual targets, to name cache entries.
fn known_entries() -> HashMap<String, (String, Arch)> {
    let mut archs = Arch::CI_TARGETS.to_vec();
    archs.extend(
        ["sm_86", "sm_89", "sm_90", "sm_120"]
            .iter()
            .filter_map(|s| Arch::parse(s)),
    );
    let mut out = HashMap::new();
    if dsa_jit_cache::libs::nvrtc_location().is_err() {
        return out;
    }
    for f in registered_families() {
        for spec in (f.all)() {
            for &arch in &archs {
                if let Ok(key) = JitCache::key(&spec, arch) {
                    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                    out.insert(hex, (spec.id.clone(), arch));
                }
            }
        }
    }
    out
}

fn ls() -> Result<()> {
    let dir = cache_dir()?;
    let disk = JitCache::global().disk().expect("checked by cache_dir");
    let entries = disk.entries();
    let known = known_entries();
    let mut t = Table::new(&["entry", "KiB", "variant", "target"]);
    let mut total = 0;
    for (path, size) in &entries {
        total += size;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (id, arch) = known.get(&stem).map_or(
            ("(other build or NVRTC version)".to_string(), String::new()),
            |(id, a)| (id.clone(), a.to_string()),
        );
        t.push(vec![
            format!("{}…", &stem[..stem.len().min(16)]),
            format!("{:.1}", *size as f64 / 1024.0),
            id,
            arch,
        ]);
    }
    println!(
        "JIT cache {}: {} entries, {:.1} MiB\n",
        dir.display(),
        entries.len(),
        total as f64 / (1 << 20) as f64
    );
    if !entries.is_empty() {
        print!("{t}");
    }
    if let Some(db) = TuningDb::default_path() {
        let state = if db.exists() { "present" } else { "none yet" };
        println!("\ntuning database: {} ({state})", db.display());
    }
    Ok(())
}

fn clear() -> Result<()> {
    let dir = cache_dir()?;
    let n = JitCache::global()
        .disk()
        .expect("checked by cache_dir")
        .clear();
    println!("removed {n} entries from {}", dir.display());
    Ok(())
}

/// The kernel `dsa jit bench` times: top-k f32, 512 threads, k up to 2048.
fn probe_variant() -> TopkVariant {
    TopkVariant::streaming(ScoreDtype::F32, 512, 2048)
}

/// Average time of `f` over `n` calls, nanoseconds.
fn average_ns(n: u32, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(start.elapsed().as_nanos() as f64 / n as f64)
}

fn bench(arch: Option<&str>) -> Result<()> {
    let gpu = Gpu::open().ok();
    let arch = match arch {
        Some(a) => compile::archs(&[a.to_string()])?[0],
        None => gpu.as_ref().map_or(Arch::SM90A, |g| g.arch),
    };
    let (major, minor) = dsa_jit_cache::nvrtc::version()?;
    let spec = probe_variant().spec();
    println!(
        "JIT cache timings of {} for {arch} (NVRTC {major}.{minor})\n",
        spec.id
    );
    let dir = tempfile::tempdir().map_err(|source| CliError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let jit = JitCache::new(CacheConfig {
        dir: Some(dir.path().to_path_buf()),
    });
    let t = Instant::now();
    jit.image(&spec, arch)?;
    let cold_us = t.elapsed().as_secs_f64() * 1e6;
    let disk_us = spawn_probe(dir.path(), arch)?;
    let memory_ns = average_ns(1000, || Ok(jit.image(&spec, arch).map(|_| ())?))?;
    let mut table = Table::new(&["level", "time", "vs cold compile"]);
    table.push(vec![
        "cold compile (empty cache folder)".into(),
        format!("{:.1} ms", cold_us / 1e3),
        "1x".into(),
    ]);
    table.push(vec![
        "disk hit (new process)".into(),
        format!("{disk_us:.0} us"),
        format!("{:.0}x faster", cold_us / disk_us),
    ]);
    table.push(vec![
        "memory hit (image by content key)".into(),
        format!("{:.2} us", memory_ns / 1e3),
        format!("{:.0}x faster", cold_us * 1e3 / memory_ns),
    ]);
    if let Some(g) = &gpu {
        let plan = dsa_topk::TopkPlan::new(
            dsa_topk::TopkConfig::new(2048),
            64,
            131072,
            &g.info,
            dsa_topk::Tuning {
                threads: Some(512),
                ..Default::default()
            },
        )?;
        plan.prepare(&g.ctx)?;
        let lookup_ns = average_ns(100_000, || Ok(plan.prepare(&g.ctx)?))?;
        table.push(vec![
            "memory hit (loaded kernel, the launch path)".into(),
            format!("{:.0} ns", lookup_ns),
            format!("{:.0}x faster", cold_us * 1e3 / lookup_ns),
        ]);
    }
    print!("{table}");
    println!("\ngoals (issue 2): disk hit >= 50x faster than a cold compile, memory hit < 1 us");
    Ok(())
}

/// Run `dsa jit disk-probe` in a new process and read the disk hit time (µs) it prints.
fn spawn_probe(dir: &Path, arch: Arch) -> Result<f64> {
    let exe = std::env::current_exe().map_err(|source| CliError::Io {
        path: "dsa".into(),
        source,
    })?;
    let out = std::process::Command::new(&exe)
        .args(["jit", "disk-probe", "--arch", &arch.to_string(), "--dir"])
        .arg(dir)
        .output()
        .map_err(|source| CliError::Io {
            path: exe.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<f64>() {
        Ok(us) if out.status.success() => Ok(us),
        _ => Err(CliError::Failed(format!(
            "the disk-hit probe failed: {}{}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// In a fresh process: load NVRTC (not timed: its version is part of the key), then time one
/// image lookup that must be a disk hit, and print it in µs.
fn disk_probe(dir: &Path, arch: &str) -> Result<()> {
    let arch = compile::archs(&[arch.to_string()])?[0];
    dsa_jit_cache::nvrtc::version()?;
    let spec = probe_variant().spec();
    let jit = JitCache::new(CacheConfig {
        dir: Some(dir.to_path_buf()),
    });
    let t = Instant::now();
    jit.image(&spec, arch)?;
    let us = t.elapsed().as_secs_f64() * 1e6;
    if jit.stats().disk_hits != 1 {
        return Err(CliError::Failed(format!(
            "expected a disk hit in {}, got a compile",
            dir.display()
        )));
    }
    println!("{us:.1}");
    Ok(())
}
