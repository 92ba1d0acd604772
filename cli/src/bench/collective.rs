//! `dsa bench collective-verify`: the collective layer's own timing ([`time_op`]), eager and
//! replayed from a CUDA graph: the verify kernels alone, and with NCCL the verify and the
//! broadcast at world size 1.

use super::Measured;
use crate::error::Result;
use dsa_benches::Gpu;
use dsa_indexer::collective::bench::{TimedOp, time_op};
use dsa_indexer::collective::nccl::ensure_loaded;
use dsa_indexer::collective::{CommConfig, Communicator};

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
            let mut m = Measured::new(
                format!("{r}x{k}"),
                name.into(),
                t.eager_us,
                r * k * 4,
                copy_gbs,
            );
            m.graph_us = Some(t.graph_us);
            out.push(m);
        }
    }
    Ok(out)
}
