//! GPU tests of the collective layer for any world size (one thread per GPU; world size from
//! the GPUs present or `DSA_WORLD_SIZE`). On one GPU, world size 1 is a real NCCL communicator,
//! so every NCCL call below runs. Needs libnccl reachable as `libnccl.so` (see the crate docs).

mod collective_common;

use collective_common::*;
use cudarc::driver::{CudaContext, sys};
use dsa_indexer::collective::fingerprint::{fingerprint_rows, reference_mismatches};
use dsa_indexer::collective::*;
use std::time::{Duration, Instant};

/// A simulated-ranks case: name, each rank's indices, the rows expected to differ.
type Case<'a> = (&'static str, Vec<&'a [i32]>, Vec<u32>);

/// Rows a rank other than 0 changes before the broadcast (clamped to the shape).
fn perturbed_rows(rank: usize, rows: usize) -> Vec<usize> {
    if rank == 0 {
        return Vec::new();
    }
    let mut v = vec![(rank * 7) % rows, rows - 1];
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn verify_then_broadcast_eager_on_every_rank() {
    let world = world_size();
    println!("world size {world}");
    for (rows, k) in [(1usize, 1usize), (19, 111), (64, 2048), (989, 64)] {
        let reports = run_ranks(
            world,
            config(),
            false,
            move |rank, world, _ctx, stream, comm| {
                assert_eq!((comm.rank(), comm.world_size()), (rank, world));
                let base = indices(rows * k, 42, 1 << 20);
                let mut mine = base.clone();
                for r in perturbed_rows(rank, rows) {
                    mine[r * k] ^= 1;
                }
                let idx = upload(&stream, &mine);
                let layout = WorkspaceLayout::verify(rows);
                let ws_buf = workspace(&stream, layout);
                let indices = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
                let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
                comm.enforce(
                    ConsistencyPolicy::VerifyThenBroadcast,
                    &indices,
                    Some(&ws),
                    &stream,
                )
                .unwrap();
                let before = comm.check(&ws, &stream, false).unwrap();
                // After the broadcast, every rank holds rank 0's bytes and verify finds nothing.
                assert_eq!(
                    stream.clone_dtoh(&idx).unwrap(),
                    base,
                    "rank {rank} after broadcast"
                );
                comm.verify(&indices, &ws, &stream).unwrap();
                let after = comm.check(&ws, &stream, true).unwrap();
                assert!(after.is_consistent());
                // The reduced packed buffer holds the CPU reference's fingerprints.
                let packed = ws.read_packed(0, &stream).unwrap();
                let fps = fingerprint_rows(&base, k);
                assert_eq!(&packed[..rows], fps.as_slice(), "min fingerprints");
                let maxes: Vec<u64> = packed[rows..].iter().map(|c| !c).collect();
                assert_eq!(maxes, fps, "max fingerprints");
                before
            },
        );
        let mut expected: Vec<u32> = (1..world)
            .flat_map(|r| perturbed_rows(r, rows))
            .map(|r| r as u32)
            .collect();
        expected.sort_unstable();
        expected.dedup();
        for (rank, rep) in reports.iter().enumerate() {
            assert_eq!(
                rep.mismatched_rows as usize,
                expected.len(),
                "rank {rank}, {rows}x{k}"
            );
            let n = expected.len().min(16);
            assert_eq!(
                rep.first_mismatches,
                expected[..n],
                "rank {rank}, {rows}x{k}"
            );
        }
        println!(
            "{rows}x{k}: {} row(s) differed before the broadcast, as expected",
            expected.len()
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn verify_and_broadcast_inside_a_cuda_graph_on_every_rank() {
    let world = world_size();
    let (rows, k) = (64usize, 2048usize);
    run_ranks(
        world,
        config(),
        true,
        move |rank, world, _ctx, stream, comm| {
            let layout = WorkspaceLayout::verify(rows);
            let mut idx = upload(&stream, &vec![0i32; rows * k]);
            let ws_buf = workspace(&stream, layout);
            // Raw pointer: the graph keeps using the buffer while the host refills it between replays.
            // SAFETY: idx holds rows * k i32 on this device and outlives the graph.
            let view = unsafe { IndexRows::from_raw(dsa_jit_cache::dptr(&idx, &stream), rows, k) }
                .unwrap();
            let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
            stream
                .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .unwrap();
            comm.enforce(
                ConsistencyPolicy::VerifyThenBroadcast,
                &view,
                Some(&ws),
                &stream,
            )
            .unwrap();
            let graph = stream
                .end_capture(sys::CUgraphInstantiate_flags(0))
                .unwrap()
                .expect("a graph");
            // Replay with fresh data each time: identical on all ranks, then rank-specific rows.
            for step in 0..3u64 {
                let base = indices(rows * k, 100 + step, 1 << 16);
                let mut mine = base.clone();
                let differing = if step == 1 {
                    perturbed_rows(rank, rows)
                } else {
                    Vec::new()
                };
                for &r in &differing {
                    mine[r * k + k / 2] = -1;
                }
                stream.memcpy_htod(&mine, &mut idx).unwrap();
                graph.launch().unwrap();
                let report = comm.check(&ws, &stream, false).unwrap();
                assert_eq!(
                    stream.clone_dtoh(&idx).unwrap(),
                    base,
                    "rank {rank} step {step}"
                );
                let expected: usize = if step == 1 {
                    let mut all: Vec<usize> =
                        (1..world).flat_map(|r| perturbed_rows(r, rows)).collect();
                    all.sort_unstable();
                    all.dedup();
                    all.len()
                } else {
                    0
                };
                assert_eq!(
                    report.mismatched_rows as usize, expected,
                    "rank {rank} step {step}"
                );
            }
        },
    );
    println!("graph replays checked on {world} rank(s)");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn all_local_gpus_of_one_process_form_one_communicator() {
    let world = world_size();
    let ctxs: Vec<_> = (0..world).map(|i| CudaContext::new(i).unwrap()).collect();
    let comms = Communicator::all_local(&ctxs, config()).unwrap();
    assert_eq!(comms.len(), world);
    // One thread per rank drives its communicator (a single thread would have to group calls).
    let (rows, k) = (19usize, 2048usize);
    let handles: Vec<_> = comms
        .into_iter()
        .enumerate()
        .map(|(rank, comm)| {
            std::thread::spawn(move || {
                assert_eq!(
                    (comm.rank(), comm.world_size(), comm.device()),
                    (rank, world, rank)
                );
                let stream = comm.context().new_stream().unwrap();
                let idx = upload(&stream, &indices(rows * k, 77 + rank as u64, 1 << 20));
                let layout = WorkspaceLayout::verify(rows);
                let ws_buf = workspace(&stream, layout);
                let view = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
                let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
                comm.enforce(
                    ConsistencyPolicy::VerifyThenBroadcast,
                    &view,
                    Some(&ws),
                    &stream,
                )
                .unwrap();
                let before = comm.check(&ws, &stream, false).unwrap();
                (before, stream.clone_dtoh(&idx).unwrap())
            })
        })
        .collect();
    let rank0 = indices(rows * k, 77, 1 << 20);
    for (rank, h) in handles.into_iter().enumerate() {
        let (before, after) = h.join().unwrap();
        // Ranks hold different random rows: with 2+ ranks every row differed before.
        let expected = if world == 1 { 0 } else { rows as u32 };
        assert_eq!(before.mismatched_rows, expected, "rank {rank}");
        assert!(after == rank0, "rank {rank} holds rank 0's indices");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn simulated_ranks_on_one_gpu_give_the_exact_differing_rows() {
    // No NCCL here: the verify kernels over several index buffers, MIN-reduced on device.
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.new_stream().unwrap();
    for (rows, k) in [(1usize, 2048usize), (19, 111), (99, 2048), (989, 7)] {
        let a = indices(rows * k, 5, 1 << 20);
        let mut one_row = a.clone();
        one_row[(rows / 2) * k + k - 1] += 1;
        let mut order_only = a.clone();
        if k > 1 {
            order_only.swap((rows - 1) * k, (rows - 1) * k + 1);
        }
        let cases: Vec<Case> = vec![
            ("identical", vec![&a, &a], vec![]),
            ("one row", vec![&a, &one_row], vec![(rows / 2) as u32]),
            (
                "order only",
                vec![&a, &order_only],
                if k > 1 {
                    vec![(rows - 1) as u32]
                } else {
                    vec![]
                },
            ),
            ("three ranks", vec![&a, &one_row, &order_only], {
                let mut v = vec![(rows / 2) as u32];
                if k > 1 {
                    v.push((rows - 1) as u32);
                }
                v.sort_unstable();
                v.dedup();
                v
            }),
        ];
        for (name, ranks, expected) in cases {
            assert_eq!(
                reference_mismatches(&ranks, k),
                expected,
                "CPU reference, {name}"
            );
            let bufs: Vec<_> = ranks.iter().map(|r| upload(&stream, r)).collect();
            let layout = WorkspaceLayout::simulation(rows, ranks.len());
            let ws_buf = workspace(&stream, layout);
            let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
            let views: Vec<IndexRows> = bufs
                .iter()
                .map(|b| IndexRows::from_slice(b, rows, k, &stream).unwrap())
                .collect();
            simulate_ranks(&views, &ws, &stream).unwrap();
            assert_eq!(
                ws.read_mismatched_rows(&stream).unwrap(),
                expected,
                "{name} {rows}x{k}"
            );
            let report = ws.read_report(&stream).unwrap();
            assert_eq!(
                report.mismatched_rows as usize,
                expected.len(),
                "{name} {rows}x{k}"
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn simulated_ranks_see_exactly_the_rows_whose_scores_were_perturbed_at_the_threshold() {
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.new_stream().unwrap();
    let (rows, cols, k) = (64usize, 4096usize, 2048usize);
    let scores0 = scores(rows, cols, 9);
    let mut scores1 = scores0.clone();
    let perturbed = [0usize, 17, 63];
    perturb_at_threshold(&mut scores1, cols, k, &perturbed);
    let (i0, i1) = (
        topk_indices(&scores0, rows, cols, k),
        topk_indices(&scores1, rows, cols, k),
    );
    let (b0, b1) = (upload(&stream, &i0), upload(&stream, &i1));
    let layout = WorkspaceLayout::simulation(rows, 2);
    let ws_buf = workspace(&stream, layout);
    let ws = VerifyWorkspace::from_slice(&ws_buf, layout, &stream).unwrap();
    let views = [
        IndexRows::from_slice(&b0, rows, k, &stream).unwrap(),
        IndexRows::from_slice(&b1, rows, k, &stream).unwrap(),
    ];
    simulate_ranks(&views, &ws, &stream).unwrap();
    let want: Vec<u32> = perturbed.iter().map(|&r| r as u32).collect();
    assert_eq!(ws.read_mismatched_rows(&stream).unwrap(), want);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_borrowed_communicator_is_neither_destroyed_nor_leaked() {
    use cudarc::nccl::{result, sys as nsys};
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.new_stream().unwrap();
    // An engine's communicator, made outside the crate with cudarc's raw calls.
    let id = result::get_uniqueid().expect("libnccl");
    let mut raw: nsys::ncclComm_t = std::ptr::null_mut();
    ctx.bind_to_thread().unwrap();
    // SAFETY: libnccl is loaded (get_uniqueid succeeded); NCCL writes one comm.
    unsafe { result::comm_init_rank(&mut raw, 1, id, 0) }.unwrap();
    {
        // SAFETY: raw is live until comm_destroy below, and only this thread uses it.
        let comm = unsafe { Communicator::from_raw_borrowed(raw, &ctx, config()) }.unwrap();
        assert!(comm.is_borrowed());
        assert_eq!((comm.rank(), comm.world_size(), comm.device()), (0, 1, 0));
        let (rows, k) = (8usize, 2048usize);
        let host = indices(rows * k, 3, 1000);
        let idx = upload(&stream, &host);
        let layout = WorkspaceLayout::verify(rows);
        let ws_buf = workspace(&stream, layout);
        let reg = comm.register(&ws_buf, &stream).unwrap();
        let indices = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
        let ws = VerifyWorkspace::from_registered(&reg, layout).unwrap();
        comm.enforce(
            ConsistencyPolicy::VerifyThenBroadcast,
            &indices,
            Some(&ws),
            &stream,
        )
        .unwrap();
        assert!(comm.check(&ws, &stream, true).unwrap().is_consistent());
        assert!(
            !comm.abort().unwrap(),
            "a borrowed communicator is never aborted"
        );
        assert!(!comm.is_aborted());
        // reg (deregistered) and comm dropped here.
    }
    // Still alive and usable by its owner.
    // SAFETY: raw is live; ncclCommCount writes one int.
    let count = unsafe { result::comm_count(raw) }.expect("the borrowed comm is still alive");
    assert_eq!(count, 1);
    let buf = stream.clone_htod(&[1.0f32, 2.0]).unwrap();
    let out = stream.alloc_zeros::<f32>(2).unwrap();
    // SAFETY: both buffers hold 2 f32 on this device; raw is live.
    unsafe {
        result::all_reduce(
            dsa_jit_cache::dptr(&buf, &stream) as *const _,
            dsa_jit_cache::dptr(&out, &stream) as *mut _,
            2,
            nsys::ncclDataType_t::ncclFloat32,
            nsys::ncclRedOp_t::ncclSum,
            raw,
            stream.cu_stream() as _,
        )
    }
    .unwrap();
    assert_eq!(stream.clone_dtoh(&out).unwrap(), vec![1.0, 2.0]);
    // And its owner can destroy it: nothing of ours (registration, handle) is left behind.
    // SAFETY: raw is live and no longer used after this.
    unsafe { result::comm_destroy(raw) }.expect("owner destroys the comm");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_buffer_registered_with_one_communicator_is_refused_by_another() {
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.new_stream().unwrap();
    let a = Communicator::from_unique_id(&ctx, &UniqueId::new().unwrap(), 0, 1, config()).unwrap();
    let b = Communicator::from_unique_id(&ctx, &UniqueId::new().unwrap(), 0, 1, config()).unwrap();
    assert_ne!(a.id(), b.id());
    let (rows, k) = (19usize, 111usize);
    let idx = upload(&stream, &indices(rows * k, 1, 500));
    let layout = WorkspaceLayout::verify(rows);
    let ws_buf = workspace(&stream, layout);
    let reg_ws = a.register(&ws_buf, &stream).unwrap();
    let reg_idx = a.register(&idx, &stream).unwrap();
    assert_eq!((reg_ws.comm_id(), reg_idx.comm_id()), (a.id(), a.id()));
    let ws = VerifyWorkspace::from_registered(&reg_ws, layout).unwrap();
    let rows_reg = IndexRows::from_registered(&reg_idx, rows, k).unwrap();
    let rows_plain = IndexRows::from_slice(&idx, rows, k, &stream).unwrap();
    // Right communicator: works.
    a.verify(&rows_reg, &ws, &stream).unwrap();
    a.broadcast_from_rank0(&rows_reg, &stream).unwrap();
    assert!(a.check(&ws, &stream, true).unwrap().is_consistent());
    // Wrong communicator: typed errors naming both, nothing enqueued.
    match b.verify(&rows_plain, &ws, &stream) {
        Err(CollectiveError::ForeignBuffer {
            what,
            registered_with,
            used_with,
        }) => {
            assert_eq!(
                (what, registered_with, used_with),
                ("verify workspace", a.id(), b.id())
            );
        }
        other => panic!("expected ForeignBuffer, got {other:?}"),
    }
    assert!(matches!(
        b.broadcast_from_rank0(&rows_reg, &stream),
        Err(CollectiveError::ForeignBuffer {
            what: "index rows",
            ..
        })
    ));
    assert!(matches!(
        b.enforce(ConsistencyPolicy::Broadcast, &rows_reg, None, &stream),
        Err(CollectiveError::ForeignBuffer { .. })
    ));
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn invalid_world_ids_and_nccl_failures_are_typed_errors() {
    let ctx = CudaContext::new(0).unwrap();
    let id = UniqueId::new().unwrap();
    for (rank, ws) in [(0usize, 0usize), (1, 1), (3, 2)] {
        let e = Communicator::from_unique_id(&ctx, &id, rank, ws, config()).unwrap_err();
        assert!(
            matches!(
                e,
                CollectiveError::InvalidWorldSize { .. } | CollectiveError::InvalidRank { .. }
            ),
            "({rank}, {ws}): {e}"
        );
    }
    // A forged id (not from ncclGetUniqueId): NCCL fails, with its message, or the join times
    // out; either way no hang.
    let forged = UniqueId::from_bytes(&[0x5a; 128]).unwrap();
    let t = Instant::now();
    let cfg = CommConfig::with_timeout(Duration::from_secs(5));
    let e = Communicator::from_unique_id(&ctx, &forged, 0, 1, cfg).unwrap_err();
    println!("forged id: {e} (after {:?})", t.elapsed());
    match &e {
        CollectiveError::Nccl { code, message, .. } => {
            assert!(code.starts_with("nccl") && !message.is_empty(), "{e}")
        }
        CollectiveError::Timeout { .. } => {}
        other => panic!("unexpected error {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(60));
    // A stream on another device than the communicator's is refused (needs 2 GPUs to build).
    if gpus() >= 2 {
        let comm =
            Communicator::from_unique_id(&ctx, &UniqueId::new().unwrap(), 0, 1, config()).unwrap();
        let other = CudaContext::new(1).unwrap().new_stream().unwrap();
        assert!(matches!(
            comm.wait(&other),
            Err(CollectiveError::DeviceMismatch { .. })
        ));
    } else {
        println!("skipped the wrong-device stream check: 1 GPU");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn verify_and_broadcast_timings() {
    let ctx = CudaContext::new(0).unwrap();
    // SAFETY: the timing code orders everything by the stream.
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx.new_stream().unwrap();
    let comm =
        Communicator::from_unique_id(&ctx, &UniqueId::new().unwrap(), 0, 1, config()).unwrap();
    println!("| op | rows | k | eager us | graph us |\n| --- | --- | --- | --- | --- |");
    for op in [
        bench::TimedOp::VerifyKernels,
        bench::TimedOp::Verify,
        bench::TimedOp::Broadcast,
    ] {
        for t in bench::time_benchmark(op, &stream, Some(&comm)).unwrap() {
            println!(
                "| {:?} | {} | {} | {:.2} | {:.2} |",
                t.op, t.rows, t.k, t.eager_us, t.graph_us
            );
            assert!(t.eager_us > 0.0 && t.graph_us > 0.0);
        }
    }
}
