//! Multi-GPU tests of the collective layer (one thread per GPU, world size from the GPUs present
//! or `DSA_WORLD_SIZE`, at least 2). The issue "Collective on two GPUs" runs them.

mod collective_common;

use collective_common::*;
use dsa_indexer::collective::*;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn multi_world() -> usize {
    let w = world_size();
    assert!(
        w >= 2,
        "needs 2+ GPUs (found {w}); run with --ignored on a multi-GPU machine"
    );
    w
}

#[test]
#[ignore = "needs 2+ CUDA GPUs"]
fn same_scores_on_every_rank_verify_with_zero_mismatches() {
    let world = multi_world();
    let (rows, cols, k) = (256usize, 4096usize, 2048usize);
    let reports = run_ranks(
        world,
        config(),
        false,
        move |_rank, _w, _ctx, stream, comm| {
            let idx = upload(
                &stream,
                &topk_indices(&scores(rows, cols, 11), rows, cols, k),
            );
            let layout = WorkspaceLayout::verify(rows);
            let ws_buf = workspace(&stream, layout);
            let view = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
            let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
            comm.verify(&view, &ws, &stream).unwrap();
            comm.check(&ws, &stream, true).unwrap()
        },
    );
    assert!(
        reports.iter().all(VerifyReport::is_consistent),
        "{reports:?}"
    );
}

#[test]
#[ignore = "needs 2+ CUDA GPUs"]
fn a_rank_with_scores_perturbed_at_the_threshold_is_reported_on_exactly_those_rows() {
    let world = multi_world();
    let (rows, cols, k) = (64usize, 4096usize, 2048usize);
    let perturbed = vec![3usize, 40, 63];
    let p = perturbed.clone();
    let reports = run_ranks(
        world,
        config(),
        false,
        move |rank, world, _ctx, stream, comm| {
            let mut s = scores(rows, cols, 12);
            if rank == world - 1 {
                perturb_at_threshold(&mut s, cols, k, &p);
            }
            let idx = upload(&stream, &topk_indices(&s, rows, cols, k));
            let layout = WorkspaceLayout::verify(rows);
            let ws_buf = workspace(&stream, layout);
            let view = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
            let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
            comm.verify(&view, &ws, &stream).unwrap();
            let report = comm.check(&ws, &stream, false).unwrap();
            let strict = comm.check(&ws, &stream, true);
            assert!(
                matches!(strict, Err(CollectiveError::Mismatch { rows: 3, .. })),
                "{strict:?}"
            );
            (report, ws.read_mismatched_rows(&stream).unwrap())
        },
    );
    let want: Vec<u32> = perturbed.iter().map(|&r| r as u32).collect();
    for (rank, (report, rows_flagged)) in reports.iter().enumerate() {
        assert_eq!(rows_flagged, &want, "rank {rank}");
        assert_eq!(report.mismatched_rows, 3, "rank {rank}");
    }
}

#[test]
#[ignore = "needs 2+ CUDA GPUs"]
fn after_broadcast_every_rank_holds_rank0_indices_byte_for_byte() {
    let world = multi_world();
    let (rows, k) = (256usize, 2048usize);
    let results = run_ranks(
        world,
        config(),
        false,
        move |rank, _w, _ctx, stream, comm| {
            let idx = upload(&stream, &indices(rows * k, 1000 + rank as u64, 1 << 30));
            let view = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
            comm.broadcast_from_rank0(&view, &stream).unwrap();
            comm.wait(&stream).unwrap();
            stream.clone_dtoh(&idx).unwrap()
        },
    );
    let rank0 = indices(rows * k, 1000, 1 << 30);
    for (rank, got) in results.iter().enumerate() {
        assert!(
            got == &rank0,
            "rank {rank} differs from rank 0 after the broadcast"
        );
    }
}

#[test]
#[ignore = "needs 2+ CUDA GPUs"]
fn a_rank_that_skips_the_collective_makes_the_others_fail_within_the_timeout() {
    let world = multi_world();
    let timeout = Duration::from_secs(3);
    let done = Arc::new(Barrier::new(world));
    let d = done.clone();
    let results = run_ranks(
        world,
        CommConfig::with_timeout(timeout),
        false,
        move |rank, world, _ctx, stream, comm| {
            let (rows, k) = (8usize, 2048usize);
            let idx = upload(&stream, &indices(rows * k, 7, 1000));
            let layout = WorkspaceLayout::verify(rows);
            let ws_buf = workspace(&stream, layout);
            let view = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
            let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
            let outcome = if rank == world - 1 {
                None // skips the collective
            } else {
                let t = Instant::now();
                let r = comm
                    .verify(&view, &ws, &stream)
                    .and_then(|_| comm.check(&ws, &stream, false));
                Some((r.map(|_| ()), t.elapsed(), comm.is_aborted()))
            };
            d.wait(); // the skipping rank keeps its communicator until the others gave up
            outcome
        },
    );
    for (rank, r) in results.into_iter().enumerate() {
        let Some((res, elapsed, aborted)) = r else {
            continue;
        };
        println!("rank {rank}: {res:?} after {elapsed:?}");
        assert!(
            matches!(res, Err(CollectiveError::Timeout { aborted: true, .. })),
            "rank {rank}: {res:?}"
        );
        assert!(aborted, "rank {rank} aborted its communicator");
        assert!(
            elapsed < timeout + Duration::from_secs(10),
            "rank {rank} took {elapsed:?}"
        );
    }
}
