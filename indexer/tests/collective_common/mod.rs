//! Helpers shared by the collective GPU tests: world size, one thread per rank, test data.
#![allow(dead_code)] // each test binary uses a different part

use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use dsa_indexer::collective::*;
use dsa_topk::TopkConfig;
use dsa_topk::cpu::{Inputs, TransformData, topk};
use std::sync::Arc;
use std::time::Duration;

/// Env var: ranks to run (default: every visible GPU).
pub const WORLD_ENV: &str = "DSA_WORLD_SIZE";

/// GPUs visible to this process.
pub fn gpus() -> usize {
    CudaContext::device_count().expect("CUDA driver") as usize
}

/// World size: `DSA_WORLD_SIZE` if set (at most the GPUs present), else the GPUs present.
pub fn world_size() -> usize {
    let n = gpus();
    match std::env::var(WORLD_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(w) => {
            assert!(
                w >= 1 && w <= n,
                "{WORLD_ENV}={w} but {n} GPU(s) are visible"
            );
            w
        }
        None => n,
    }
}

/// A short timeout so that a broken test fails instead of hanging CI.
pub fn config() -> CommConfig {
    CommConfig::with_timeout(Duration::from_secs(30))
}

/// Runs `f(rank, world, ctx, stream, comm)` on one thread per rank (rank r on GPU r), all
/// joined to one communicator made from a fresh unique id; returns the ranks' results in order.
pub fn run_ranks<T: Send + 'static>(
    world: usize,
    cfg: CommConfig,
    graphs: bool,
    f: impl Fn(usize, usize, Arc<CudaContext>, Arc<CudaStream>, Communicator) -> T
    + Send
    + Sync
    + 'static,
) -> Vec<T> {
    let id = UniqueId::new().expect("libnccl (see CollectiveError::NcclUnavailable for the fix)");
    let f = Arc::new(f);
    let handles: Vec<_> = (0..world)
        .map(|rank| {
            let (f, cfg) = (f.clone(), cfg.clone());
            std::thread::spawn(move || {
                let ctx = CudaContext::new(rank).unwrap();
                if graphs {
                    // SAFETY: this test orders all work by the stream alone.
                    unsafe { ctx.disable_event_tracking() };
                }
                let stream = ctx.new_stream().unwrap();
                let comm = Communicator::from_unique_id(&ctx, &id, rank, world, cfg).unwrap();
                f(rank, world, ctx, stream, comm)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("rank thread panicked"))
        .collect()
}

/// Deterministic pseudo-random i32 indices in `0..range`.
pub fn indices(n: usize, seed: u64, range: u32) -> Vec<i32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % range as u64) as i32
        })
        .collect()
}

/// Deterministic scores `[rows, cols]` with distinct values in every row.
pub fn scores(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let perm = indices(rows * cols, seed, u32::MAX);
    perm.iter()
        .enumerate()
        .map(|(i, &p)| (p as u32 % 100_000) as f32 + (i % cols) as f32 * 1e-4)
        .collect()
}

/// The top-k indices of `scores` (the topk crate's CPU reference, index order).
pub fn topk_indices(scores: &[f32], rows: usize, cols: usize, k: usize) -> Vec<i32> {
    let lengths = vec![cols as i32; rows];
    let input = Inputs {
        scores,
        stride: cols,
        lengths: &lengths,
        row_starts: None,
    };
    topk(&input, &TopkConfig::new(k), &TransformData::None)
}

/// Perturbs `scores` at the selection threshold in each of `rows`: the best unselected
/// candidate is raised just above the worst selected one, so exactly those rows' top-k change.
pub fn perturb_at_threshold(scores: &mut [f32], cols: usize, k: usize, rows: &[usize]) {
    for &r in rows {
        let row = &mut scores[r * cols..(r + 1) * cols];
        let mut order: Vec<usize> = (0..cols).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let (kth, next) = (order[k - 1], order[k]);
        row[next] = row[kth] + 0.5;
    }
}

/// Uploads host indices.
pub fn upload(stream: &Arc<CudaStream>, host: &[i32]) -> CudaSlice<i32> {
    stream.clone_htod(host).unwrap()
}

/// A zeroed verify workspace for `rows` rows and `slots` rank slots.
pub fn workspace(stream: &Arc<CudaStream>, layout: WorkspaceLayout) -> CudaSlice<u8> {
    stream.alloc_zeros::<u8>(layout.total_bytes).unwrap()
}
