//! The compile cache on a machine without a GPU, through the real NVRTC.

mod common;

use common::Axpy;
use dsa_jit_cache::nvrtc::ImageKind;
use dsa_jit_cache::{Arch, CacheConfig, JitCache, JitError, KernelSpec, KernelVariant};
use std::path::Path;
use std::sync::Arc;

fn cache_in(dir: &Path) -> JitCache {
    JitCache::new(CacheConfig {
        dir: Some(dir.to_path_buf()),
    })
}

fn spec(salt: u32) -> KernelSpec {
    Axpy { bf16: true, salt }.spec()
}

#[test]
fn compiles_cubin_for_every_ci_target() {
    let jit = JitCache::new(CacheConfig { dir: None });
    for arch in Arch::CI_TARGETS {
        let img = jit.image(&spec(0), arch).unwrap();
        assert_eq!(img.kind, ImageKind::Cubin, "{arch}");
        assert_eq!(
            &img.bytes[..4],
            b"\x7fELF",
            "{arch}: a CUBIN is an ELF file"
        );
        let sym = spec(0).symbol("MAIN").to_string();
        assert!(
            img.bytes.windows(sym.len()).any(|w| w == sym.as_bytes()),
            "{arch}: entry symbol {sym} missing"
        );
        assert!(img.log.is_empty(), "{arch}: warnings: {}", img.log);
    }
}

#[test]
fn unknown_future_arch_falls_back_to_ptx() {
    let jit = JitCache::new(CacheConfig { dir: None });
    let img = jit.image(&spec(1), Arch::new(19, 9, false)).unwrap();
    assert_eq!(img.kind, ImageKind::Ptx);
    assert!(String::from_utf8_lossy(&img.bytes).contains(".entry"));
}

#[test]
fn compile_error_carries_variant_options_and_log() {
    let mut bad = spec(2);
    bad.source = "extern \"C\" __global__ void DSA_ENTRY_MAIN() { undeclared_thing(); }";
    let err = JitCache::new(CacheConfig { dir: None })
        .image(&bad, Arch::SM90A)
        .unwrap_err();
    match &err {
        JitError::Compile {
            variant,
            options,
            log,
            ..
        } => {
            assert_eq!(variant, "test.axpy[bf16,salt=2]");
            assert!(options.iter().any(|o| o == "--gpu-architecture=sm_90a"));
            assert!(log.contains("undeclared_thing"), "{log}");
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(err.to_string().contains("undeclared_thing"));
}

#[test]
fn warnings_are_kept_in_the_log() {
    let mut noisy = spec(3);
    noisy.source = "extern \"C\" __global__ void DSA_ENTRY_MAIN() { int unused_var = 1; }";
    let img = JitCache::new(CacheConfig { dir: None })
        .image(&noisy, Arch::SM90A)
        .unwrap();
    assert!(img.log.contains("unused_var"), "log: {:?}", img.log);
}

#[test]
fn key_covers_source_options_and_arch() {
    let base = JitCache::key(&spec(4), Arch::SM90A).unwrap();
    assert_ne!(base, JitCache::key(&spec(5), Arch::SM90A).unwrap());
    assert_ne!(base, JitCache::key(&spec(4), Arch::SM80).unwrap());
    let mut opt = spec(4);
    opt.extra_options.push("--maxrregcount=64".into());
    assert_ne!(base, JitCache::key(&opt, Arch::SM90A).unwrap());
    assert_eq!(base, JitCache::key(&spec(4), Arch::SM90A).unwrap());
}

#[test]
fn memory_then_disk_hits_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = cache_in(dir.path());
    let a = first.image(&spec(10), Arch::SM90A).unwrap();
    let b = first.image(&spec(10), Arch::SM90A).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "second ask is a memory hit");
    assert_eq!(first.stats().compiles, 1);
    // A fresh cache object over the same folder stands for a restarted process.
    let second = cache_in(dir.path());
    let c = second.image(&spec(10), Arch::SM90A).unwrap();
    assert_eq!(c.bytes, a.bytes);
    assert_eq!((second.stats().compiles, second.stats().disk_hits), (0, 1));
}

#[test]
fn disk_hit_in_a_new_process() {
    if std::env::var_os("DSA_TEST_CHILD").is_some() {
        return; // the child run of this test does its work in `child_reads_disk_entry`
    }
    let dir = tempfile::tempdir().unwrap();
    cache_in(dir.path()).image(&spec(11), Arch::SM90A).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_reads_disk_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DSA_TEST_CHILD", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("child stats: compiles=0 disk_hits=1"),
        "{text}"
    );
}

#[test]
fn child_reads_disk_entry() {
    let Some(dir) = std::env::var_os("DSA_TEST_CHILD") else {
        return; // only meaningful when spawned by `disk_hit_in_a_new_process`
    };
    let jit = cache_in(Path::new(&dir));
    jit.image(&spec(11), Arch::SM90A).unwrap();
    let s = jit.stats();
    println!(
        "child stats: compiles={} disk_hits={}",
        s.compiles, s.disk_hits
    );
}

#[test]
fn damaged_entries_are_recompiled_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let good = cache_in(dir.path()).image(&spec(12), Arch::SM90A).unwrap();
    let key = JitCache::key(&spec(12), Arch::SM90A).unwrap();
    let path = cache_in(dir.path()).disk().unwrap().path_for(&key);
    let pristine = std::fs::read(&path).unwrap();
    let other_key_entry = {
        let other = cache_in(dir.path());
        other.image(&spec(13), Arch::SM90A).unwrap();
        let k = JitCache::key(&spec(13), Arch::SM90A).unwrap();
        std::fs::read(other.disk().unwrap().path_for(&k)).unwrap()
    };
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", pristine[..pristine.len() / 2].to_vec()),
        ("flipped byte", {
            let mut b = pristine.clone();
            let n = b.len();
            b[n - 100] ^= 0x40;
            b
        }),
        ("wrong key", other_key_entry),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in damages {
        std::fs::write(&path, bytes).unwrap();
        let jit = cache_in(dir.path());
        let img = jit.image(&spec(12), Arch::SM90A).unwrap();
        assert_eq!(img.bytes, good.bytes, "{what}");
        assert_eq!(jit.stats().compiles, 1, "{what}: recompiled");
        assert_eq!(std::fs::read(&path).unwrap(), pristine, "{what}: replaced");
    }
}

#[test]
fn threads_asking_at_once_compile_once() {
    let jit = Arc::new(JitCache::new(CacheConfig { dir: None }));
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (jit, barrier) = (jit.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                jit.image(&spec(20), Arch::SM90A).unwrap()
            })
        })
        .collect();
    let images: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(images.iter().all(|i| Arc::ptr_eq(i, &images[0])));
    assert_eq!(jit.stats().compiles, 1);
}

#[test]
fn concurrent_writers_to_one_folder_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (path, barrier) = (dir.path().to_path_buf(), barrier.clone());
            std::thread::spawn(move || {
                let jit = cache_in(&path); // each its own cache: four "processes"
                barrier.wait();
                jit.image(&spec(21), Arch::SM90A).unwrap().bytes.clone()
            })
        })
        .collect();
    let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(outs.iter().all(|o| *o == outs[0]));
    let reread = cache_in(dir.path());
    reread.image(&spec(21), Arch::SM90A).unwrap();
    assert_eq!(reread.stats().disk_hits, 1, "the published entry is valid");
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no temp files left behind");
}

#[test]
fn unusable_folders_degrade_to_memory_only() {
    // A folder that cannot be created (even by root), and one that exists but takes no writes.
    for dir in ["/proc/dsa-kernels-test", "/proc/self"] {
        let jit = cache_in(Path::new(dir));
        let img = jit.image(&spec(30), Arch::SM90A).unwrap();
        assert!(!img.bytes.is_empty(), "{dir}");
        assert!(jit.image(&spec(30), Arch::SM90A).is_ok(), "{dir}");
        assert_eq!(jit.stats().compiles, 1, "{dir}");
    }
}
