//! The collective layer on one GPU: the verify kernels over simulated ranks against the
//! fingerprint reference, and, when NCCL loads, a real verify at world size 1.

use super::{Outcome, Report};
use crate::error::Result;
use dsa_benches::Gpu;
use dsa_benches::gpu::rng;
use dsa_indexer::collective::fingerprint::reference_mismatches;
use dsa_indexer::collective::nccl::{ensure_loaded, version_string};
use dsa_indexer::collective::{
    CommConfig, Communicator, IndexRows, VerifyWorkspace, WorkspaceLayout, simulate_ranks,
};
use rand::Rng;

const ROWS: usize = 64;
const K: usize = 2048;

/// Three ranks' indices: rank 1 changes one index of row 3, rank 2 swaps two in row 40.
fn ranks() -> [Vec<i32>; 3] {
    let mut r = rng(0xc0);
    let a: Vec<i32> = (0..ROWS * K).map(|_| r.random_range(-1..1 << 20)).collect();
    let mut b = a.clone();
    b[3 * K + 7] += 1;
    let mut c = a.clone();
    c.swap(40 * K, 40 * K + 1);
    [a, b, c]
}

fn simulated(gpu: &Gpu) -> Result<(bool, String)> {
    let host = ranks();
    let bufs = host
        .iter()
        .map(|h| gpu.upload(h))
        .collect::<dsa_benches::Result<Vec<_>>>()?;
    let layout = WorkspaceLayout::simulation(ROWS, host.len());
    let ws_buf = gpu.zeros::<u8>(layout.total_bytes)?;
    let s = &gpu.stream;
    let rows = bufs
        .iter()
        .map(|b| IndexRows::from_slice(b, ROWS, K, s))
        .collect::<Result<Vec<_>, _>>()?;
    let ws = VerifyWorkspace::from_slice(&ws_buf, layout, s)?;
    simulate_ranks(&rows, &ws, s)?;
    let report = ws.read_report(s)?;
    let want = reference_mismatches(&[&host[0], &host[1], &host[2]], K);
    let pass = report.first_mismatches == want && report.mismatched_rows as usize == want.len();
    Ok((
        pass,
        format!(
            "rows flagged {:?}, reference {want:?}",
            report.first_mismatches
        ),
    ))
}

fn world_of_one(gpu: &Gpu) -> Result<(bool, String)> {
    let comm = Communicator::all_local(std::slice::from_ref(&gpu.ctx), CommConfig::default())?
        .pop()
        .expect("one communicator per context");
    let host = &ranks()[0];
    let buf = gpu.upload(host)?;
    let layout = WorkspaceLayout::verify(ROWS);
    let ws_buf = gpu.zeros::<u8>(layout.total_bytes)?;
    let s = &gpu.stream;
    let idx = IndexRows::from_slice(&buf, ROWS, K, s)?;
    let ws = VerifyWorkspace::from_slice(&ws_buf, layout, s)?;
    comm.verify(&idx, &ws, s)?;
    let report = comm.check(&ws, s, false)?;
    Ok((
        report.is_consistent(),
        format!("{} of {ROWS} rows differ", report.mismatched_rows),
    ))
}

/// Simulated ranks always; NCCL verify when the library loads.
pub fn gpu(gpu: &Gpu, report: &mut Report) {
    let what = format!("verify kernels, 3 simulated ranks, {ROWS}x{K}");
    report.add(Outcome::from_result("collective", what, simulated(gpu)));
    match ensure_loaded() {
        Ok(v) => {
            let what = format!(
                "NCCL {} verify, world size 1, {ROWS}x{K}",
                version_string(v)
            );
            report.add(Outcome::from_result("collective", what, world_of_one(gpu)));
        }
        Err(e) => report.add(Outcome::skip(
            "collective",
            "NCCL verify, world size 1",
            e.to_string(),
        )),
    }
}
