//! `dsa bench collective-verify`: the collective layer's own timing ([`time_op`]), eager and
//! replayed from a CUDA graph: the verify kernels alone, and with NCCL the verify and the
//! broadcast at world size 1 and, on a machine with several GPUs, across all of them.

use super::Measured;
use crate::error::Result;
use dsa_benches::{Error as GpuError, Gpu};
use dsa_indexer::collective::bench::{TimedOp, time_op};
use dsa_indexer::collective::nccl::ensure_loaded;
use dsa_indexer::collective::{CommConfig, Communicator, UniqueId};
use std::sync::Arc;

/// Time every op that can run here over `rows` × `k`.
pub fn time(gpu: &Gpu, copy_gbs: f64, rows: &[usize], k: usize) -> Result<Vec<Measured>> {
    let comm = match ensure_loaded() {
        Ok(_) => {
            Communicator::all_local(std::slice::from_ref(&gpu.ctx), CommConfig::default())?.pop()
        }
        Err(e) => {
            println!("NCCL not available ({e}); timing the verify kernels only\n");
            None
        }
    };
    let mut ops = vec![(TimedOp::VerifyKernels, "verify kernels")];
    if comm.is_some() {
        ops.push((TimedOp::Verify, "verify (NCCL, world 1)"));
        ops.push((TimedOp::Broadcast, "broadcast (NCCL, world 1)"));
    }
    let mut out = Vec::new();
    for (op, name) in ops {
        for &r in rows {
            let t = time_op(op, &gpu.stream, comm.as_ref(), r, k, 10, 100)?;
            out.push(measured(
                name.into(),
                r,
                k,
                t.eager_us,
                t.graph_us,
                copy_gbs,
            ));
        }
    }
    Ok(out)
}

/// Verify and broadcast across every local GPU (one thread a rank, each on its own stream, all
/// timing the same ops in the same order), reported as the slowest rank's median; empty with
/// fewer than two GPUs or without NCCL.
pub fn time_all_gpus(copy_gbs: f64, rows: &[usize], k: usize) -> Result<Vec<Measured>> {
    let world = cudarc::driver::CudaContext::device_count()
        .map_err(GpuError::driver("counting GPUs"))? as usize;
    if world < 2 || ensure_loaded().is_err() {
        return Ok(Vec::new());
    }
    let id = UniqueId::new()?;
    let rows: Arc<[usize]> = rows.into();
    let ranks: Vec<_> = (0..world)
        .map(|rank| {
            let rows = rows.clone();
            std::thread::spawn(move || -> Result<Vec<(TimedOp, usize, f64, f64)>> {
                let ctx = cudarc::driver::CudaContext::new(rank)
                    .map_err(GpuError::driver("opening a GPU"))?;
                // SAFETY: every op here is ordered by the one stream (graph capture needs that).
                unsafe { ctx.disable_event_tracking() };
                let stream = ctx
                    .new_stream()
                    .map_err(GpuError::driver("creating a stream"))?;
                let comm =
                    Communicator::from_unique_id(&ctx, &id, rank, world, CommConfig::default())?;
                let mut out = Vec::new();
                for op in [TimedOp::Verify, TimedOp::Broadcast] {
                    for &r in rows.iter() {
                        let t = time_op(op, &stream, Some(&comm), r, k, 10, 100)?;
                        out.push((op, r, t.eager_us, t.graph_us));
                    }
                }
                Ok(out)
            })
        })
        .collect();
    let mut per_rank = Vec::new();
    for h in ranks {
        per_rank.push(h.join().expect("rank thread panicked")?);
    }
    let mut out = Vec::new();
    for (i, &(op, r, _, _)) in per_rank[0].iter().enumerate() {
        let eager = per_rank.iter().map(|t| t[i].2).fold(0.0, f64::max);
        let graph = per_rank.iter().map(|t| t[i].3).fold(0.0, f64::max);
        let name = match op {
            TimedOp::Broadcast => format!("broadcast (NCCL, world {world})"),
            _ => format!("verify (NCCL, world {world})"),
        };
        out.push(measured(name, r, k, eager, graph, copy_gbs));
    }
    Ok(out)
}

/// One row of the table: `rows` × `k` indices (4 bytes each) timed eagerly and from a graph.
fn measured(
    name: String,
    rows: usize,
    k: usize,
    eager: f64,
    graph: f64,
    copy_gbs: f64,
) -> Measured {
    let mut m = Measured::new(format!("{rows}x{k}"), name, eager, rows * k * 4, copy_gbs);
    m.graph_us = Some(graph);
    m
}
