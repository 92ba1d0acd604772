//! Every registered variant of every kernel family compiles through the real NVRTC for every CI
//! target, with no error and no warning. Runs on CI without a GPU.

use dsa_jit_cache::{Arch, CacheConfig, JitCache, registered_families};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Families that must be present: a crate whose registrations were dropped by the linker would
/// otherwise pass this test vacuously.
const EXPECTED: &[&str] = &["collective", "hadamard", "layernorm", "topk"];

#[test]
fn every_registered_variant_compiles_warning_free_for_every_ci_target() {
    let _ = dsa_tests::topk::MAX_K; // keep the crates linked
    let families = registered_families();
    let names: Vec<&str> = families.iter().map(|f| f.name).collect();
    for want in EXPECTED {
        assert!(
            names.contains(want),
            "family {want} not registered; have {names:?}"
        );
    }
    let jobs: Vec<_> = families
        .iter()
        .flat_map(|f| (f.all)())
        .flat_map(|spec| Arch::CI_TARGETS.map(|arch| (spec.clone(), arch)))
        .collect();
    let jit = JitCache::new(CacheConfig::from_env());
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some((spec, arch)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match jit.image(spec, *arch) {
                        Ok(img) if img.log.is_empty() => {}
                        Ok(img) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {arch}: warnings:\n{}", spec.id, img.log)),
                        Err(e) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {arch}: {e}", spec.id)),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    println!(
        "compiled {} variant/arch pairs of families {names:?} ({} compiles, {} disk hits)",
        jobs.len(),
        jit.stats().compiles,
        jit.stats().disk_hits
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
