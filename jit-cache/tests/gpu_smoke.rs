//! On a GPU: compile, load and launch a kernel through the cache, and time the three paths.

mod common;

use common::Axpy;
use cudarc::driver::{CudaContext, LaunchConfig, PushKernelArg};
use dsa_jit_cache::{CacheConfig, JitCache, KernelCache, dptr};
use std::time::Instant;

#[test]
#[ignore = "needs a CUDA GPU"]
fn compiles_loads_launches_and_times_the_cache() {
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.default_stream();
    let dir = tempfile::tempdir().unwrap();
    let variant = Axpy {
        bf16: false,
        salt: std::process::id(),
    };

    // Cold: NVRTC compile + module load.
    let cold_jit = JitCache::new(CacheConfig {
        dir: Some(dir.path().into()),
    });
    let t = Instant::now();
    let kernel = KernelCache::new(|_| 0)
        .get_in(&cold_jit, &ctx, &variant)
        .unwrap();
    let cold = t.elapsed();
    assert_eq!(cold_jit.stats().compiles, 1);

    // Disk: a fresh cache over the same folder (a restarted process) + module load.
    let warm_jit = JitCache::new(CacheConfig {
        dir: Some(dir.path().into()),
    });
    let t = Instant::now();
    let reloaded = KernelCache::new(|_| 0)
        .get_in(&warm_jit, &ctx, &variant)
        .unwrap();
    let disk = t.elapsed();
    assert_eq!(
        (warm_jit.stats().compiles, warm_jit.stats().disk_hits),
        (0, 1)
    );

    // Memory: the launch fast path.
    let cache = KernelCache::new(|_| 0);
    cache.get_in(&warm_jit, &ctx, &variant).unwrap();
    let n_lookups = 1_000_000;
    let t = Instant::now();
    for _ in 0..n_lookups {
        std::hint::black_box(cache.get_in(&warm_jit, &ctx, &variant).unwrap());
    }
    let mem_ns = t.elapsed().as_nanos() as f64 / n_lookups as f64;
    println!(
        "jit timings: cold compile+load {:.1} ms, disk hit+load {:.3} ms ({:.0}x faster), memory hit {:.0} ns",
        cold.as_secs_f64() * 1e3,
        disk.as_secs_f64() * 1e3,
        cold.as_secs_f64() / disk.as_secs_f64(),
        mem_ns
    );
    assert!(mem_ns < 1000.0, "memory hit {mem_ns} ns");

    // The kernel computes what it should, from both loads.
    let n = 1000usize;
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let y0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
    for k in [&kernel, &reloaded] {
        let xd = stream.clone_htod(&x).unwrap();
        let yd = stream.clone_htod(&y0).unwrap();
        let (a, nn) = (2.5f32, n as i32);
        let (xp, yp) = (dptr(&xd, &stream), dptr(&yd, &stream));
        let mut b = stream.launch_builder(k.function("MAIN"));
        b.arg(&a).arg(&xp).arg(&yp).arg(&nn);
        // SAFETY: x and y hold n floats on this context; the kernel touches indices < n only.
        unsafe { b.launch(LaunchConfig::for_num_elems(n as u32)) }.unwrap();
        let y = stream.clone_dtoh(&yd).unwrap();
        for i in 0..n {
            let want = 2.5 * x[i] + y0[i] + variant.salt as f32;
            assert!(
                (y[i] - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{i}: {} vs {want}",
                y[i]
            );
        }
    }
}
