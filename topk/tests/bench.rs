//! Timing table for the shapes (run with `--include-ignored --nocapture`); the `dsa
//! bench` command is the user-facing version.

use cudarc::driver::CudaContext;
use dsa_jit_cache::gpu::copy_bandwidth_gbs;
use dsa_jit_cache::{DeviceInfo, dptr, median_gpu_us};
use dsa_topk::{TopkArgs, TopkConfig, TopkPlan, Tuning};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
#[ignore = "needs a CUDA GPU"]
fn topk_timings() {
    let ctx = CudaContext::new(0).unwrap();
    let s = ctx.default_stream();
    let info = DeviceInfo::of(&ctx).unwrap();
    let bw = copy_bandwidth_gbs(&s, 1 << 30).unwrap();
    println!("device copy bandwidth {bw:.0} GB/s");
    let mut shapes: Vec<(String, usize, usize, bool)> = Vec::new();
    for rows in [1usize, 8, 64, 256] {
        for len in [8192usize, 32768, 131072, 262144] {
            shapes.push((format!("{rows}x{len}"), rows, len, false));
        }
    }
    shapes.push(("1024x8192".into(), 1024, 8192, false));
    shapes.push(("prefill4096".into(), 4096, 4096, true));
    shapes.push(("prefill16384".into(), 16384, 16384, true));
    let mut rng = StdRng::seed_from_u64(9);
    println!(
        "{:>14} {:>6} {:>10} {:>8} {:>8} {:>8}",
        "shape", "cluster", "us", "GB/s", "floor", "x floor"
    );
    for (name, rows, len, causal) in shapes {
        let k = 2048;
        let plan = TopkPlan::new(TopkConfig::new(k), rows, len, &info, Tuning::default()).unwrap();
        let lengths: Vec<i32> = (0..rows)
            .map(|i| if causal { i as i32 + 1 } else { len as i32 })
            .collect();
        let bytes_in: usize = lengths.iter().map(|&l| l as usize * 4).sum();
        let bytes = bytes_in + rows * k * 4;
        let copies = (3 * info.l2_bytes as usize)
            .div_ceil(rows * len * 4)
            .clamp(1, 16);
        let host: Vec<f32> = (0..rows * len)
            .map(|_| rng.random_range(-8.0f32..8.0))
            .collect();
        let inputs: Vec<_> = (0..copies).map(|_| s.clone_htod(&host).unwrap()).collect();
        let lens = s.clone_htod(&lengths).unwrap();
        let out = s.alloc_zeros::<i32>(rows * k).unwrap();
        let ws = s.alloc_zeros::<u8>(plan.workspace_bytes().max(16)).unwrap();
        let args: Vec<TopkArgs> = inputs
            .iter()
            .map(|x| TopkArgs {
                scores: dptr(x, &s),
                lengths: dptr(&lens, &s),
                out: dptr(&out, &s),
                workspace: dptr(&ws, &s),
                workspace_bytes: plan.workspace_bytes(),
                ..TopkArgs::default()
            })
            .collect();
        let us = median_gpu_us(&s, 5, 50, |i| {
            // SAFETY: all pointers are live allocations of the documented shapes.
            unsafe { plan.launch(&s, &args[i % args.len()]) }.map_err(|e| match e {
                dsa_topk::TopkError::Jit(j) => j,
                other => panic!("{other}"),
            })
        })
        .unwrap();
        let floor = bytes as f64 / (bw * 1e3);
        println!(
            "{name:>14} {:>6} {us:>10.1} {:>8.0} {floor:>8.1} {:>8.2}",
            plan.cluster(),
            bytes as f64 / (us * 1e3),
            us / floor
        );
        // What other launch shapes would give (all give the same bits; the tuner's search space).
        let mut alt = String::new();
        for (threads, cluster) in [256u32, 512, 1024]
            .into_iter()
            .flat_map(|t| [1u32, 2, 4, 8, 16].map(move |c| (t, c)))
            .filter(|&(_, c)| c == 1 || rows * c as usize <= 4 * info.sm_count as usize)
        {
            let tuning = Tuning {
                threads: Some(threads),
                cluster: Some(cluster),
                keys: None,
            };
            let p2 = TopkPlan::new(TopkConfig::new(k), rows, len, &info, tuning).unwrap();
            let ws2 = s.alloc_zeros::<u8>(p2.workspace_bytes().max(16)).unwrap();
            let a2: Vec<TopkArgs> = args
                .iter()
                .map(|a| TopkArgs {
                    workspace: dptr(&ws2, &s),
                    workspace_bytes: p2.workspace_bytes(),
                    ..*a
                })
                .collect();
            let t = median_gpu_us(&s, 3, 20, |i| {
                // SAFETY: as above.
                unsafe { p2.launch(&s, &a2[i % a2.len()]) }.map_err(|e| match e {
                    dsa_topk::TopkError::Jit(j) => j,
                    other => panic!("{other}"),
                })
            })
            .unwrap();
            alt.push_str(&format!(" {threads}/{cluster}:{t:.1}"));
        }
        println!("{:>14} threads/cluster:us{alt}", "");
    }
}

/// A few launches of one shape for a profiler: `DSA_PROFILE=rows,len,threads[,cluster[,keys]]`.
#[test]
#[ignore = "needs a CUDA GPU"]
fn profile_one_shape() {
    let spec = std::env::var("DSA_PROFILE").unwrap_or_else(|_| "1024,8192,256".into());
    let v: Vec<usize> = spec.split(',').map(|x| x.parse().unwrap()).collect();
    let (rows, len, threads) = (v[0], v[1], v[2] as u32);
    let cluster = v.get(3).map(|&c| c as u32);
    let keys = v.get(4).map(|&k| k as u32);
    let ctx = CudaContext::new(0).unwrap();
    let s = ctx.default_stream();
    let info = DeviceInfo::of(&ctx).unwrap();
    let tuning = Tuning {
        threads: Some(threads),
        cluster,
        keys,
    };
    let plan = TopkPlan::new(TopkConfig::new(2048), rows, len, &info, tuning).unwrap();
    let mut rng = StdRng::seed_from_u64(10);
    let host: Vec<f32> = (0..rows * len)
        .map(|_| rng.random_range(-8.0f32..8.0))
        .collect();
    let x = s.clone_htod(&host).unwrap();
    let lens = s.clone_htod(&vec![len as i32; rows]).unwrap();
    let out = s.alloc_zeros::<i32>(rows * 2048).unwrap();
    let ws = s.alloc_zeros::<u8>(plan.workspace_bytes().max(16)).unwrap();
    let args = TopkArgs {
        scores: dptr(&x, &s),
        lengths: dptr(&lens, &s),
        out: dptr(&out, &s),
        workspace: dptr(&ws, &s),
        workspace_bytes: plan.workspace_bytes(),
        ..TopkArgs::default()
    };
    for _ in 0..4 {
        // SAFETY: all pointers are live allocations of the documented shapes.
        unsafe { plan.launch(&s, &args) }.unwrap();
    }
    s.synchronize().unwrap();
}
