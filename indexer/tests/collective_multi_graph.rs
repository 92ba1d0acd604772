//! The indexer's decode step with a broadcast from rank 0, captured in a CUDA graph on every
//! rank and replayed with new data (multi-GPU; the issue "Collective on two GPUs" runs it):
//! every rank ends each round with rank 0's indices, replay equal to eager, although each rank
//! was given different inputs.

mod collective_common;
mod pipeline_common;

use collective_common::*;
use cudarc::driver::sys;
use dsa_indexer::collective::ConsistencyPolicy;
use dsa_indexer::{DecodeArgs, Indexer, IndexerConfig};
use dsa_jit_cache::{DeviceInfo, dptr};
use pipeline_common::*;
use rand::Rng;

const ROUNDS: usize = 3;

/// Per round: (indices replayed from the graph, indices of the eager step, this rank's own
/// indices without the broadcast).
type Rounds = Vec<(Vec<i32>, Vec<i32>, Vec<i32>)>;

#[test]
#[ignore = "needs 2+ CUDA GPUs"]
fn decode_with_broadcast_replayed_on_every_rank_gives_rank0_indices() {
    let world = world_size();
    assert!(world >= 2, "needs 2+ GPUs (found {world})");
    let results: Vec<Rounds> = run_ranks(world, config(), true, |rank, _world, ctx, s, comm| {
        let base = IndexerConfig::default();
        let c = IndexerConfig {
            policy: ConsistencyPolicy::Broadcast,
            ..base
        };
        let (batch, stride) = (5usize, 5000usize);
        let shape = decode_shape(&c, batch, stride);
        let (bt_stride, pages) = (shape.bt_stride, shape.cache_pages);
        let info = DeviceInfo::of(&ctx).unwrap();
        let plan = Indexer::new(c).unwrap().plan_decode(shape, &info).unwrap();
        // The same step without the collective: what this rank would select on its own.
        let alone = Indexer::new(base)
            .unwrap()
            .plan_decode(shape, &info)
            .unwrap();
        // Each rank draws its own inputs, so only the broadcast can make the indices agree.
        let mut r = rng(7 + 1000 * rank as u64);
        let (cache0, table0) =
            random_cache_and_table(&mut r, &c, pages, &vec![stride as i32; batch], bt_stride);
        let data0 = TokenData::random(&mut r, &c, vec![0; batch], stride);
        let mut tb = TokenBuffers::new(&s, &data0, &vec![-1; batch]);
        let mut cache = up(&s, &cache0.bytes);
        let mut table = up(&s, &table0);
        let mut lens = up(&s, &vec![1i32; batch]);
        let logits = s.alloc_zeros::<f32>(batch * stride).unwrap();
        let indices = s.alloc_zeros::<i32>(batch * c.k).unwrap();
        let ws = s
            .alloc_zeros::<u8>(plan.workspace_bytes().max(alone.workspace_bytes()))
            .unwrap();
        let args = DecodeArgs {
            tokens: tb.args(&s, dptr(&cache, &s)),
            block_table: dptr(&table, &s),
            context_lens: dptr(&lens, &s),
            logits: dptr(&logits, &s),
            indices: dptr(&indices, &s),
            workspace: dptr(&ws, &s),
            workspace_bytes: plan.workspace_bytes().max(alone.workspace_bytes()),
        };
        plan.prepare(&ctx).unwrap();
        alone.prepare(&ctx).unwrap();
        s.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .unwrap();
        // SAFETY: every buffer has the plan's shape and outlives the graph.
        unsafe { plan.decode(&s, &args, Some(&comm)) }.unwrap();
        let graph = s
            .end_capture(sys::CUgraphInstantiate_flags(0))
            .unwrap()
            .expect("a captured graph");
        let mut rounds = Rounds::new();
        for _ in 0..ROUNDS {
            let lens_h: Vec<i32> = (0..batch)
                .map(|_| r.random_range(2100..=stride as i32))
                .collect();
            let (cache_h, table_h) = random_cache_and_table(&mut r, &c, pages, &lens_h, bt_stride);
            let (positions, locs) = newest_tokens(&c, &lens_h, &table_h, bt_stride);
            let data = TokenData::random(&mut r, &c, positions, stride);
            tb.upload(&s, &data, &locs);
            s.memcpy_htod(&table_h, &mut table).unwrap();
            s.memcpy_htod(&lens_h, &mut lens).unwrap();
            // Every rank runs the same collective calls in the same order: replay, then eager.
            s.memcpy_htod(&cache_h.bytes, &mut cache).unwrap();
            graph.launch().unwrap();
            let replayed = down(&s, &indices);
            s.memcpy_htod(&cache_h.bytes, &mut cache).unwrap();
            // SAFETY: as above.
            unsafe { plan.decode(&s, &args, Some(&comm)) }.unwrap();
            let eager = down(&s, &indices);
            s.memcpy_htod(&cache_h.bytes, &mut cache).unwrap();
            // SAFETY: as above (no collective: this rank alone).
            unsafe { alone.decode(&s, &args, None) }.unwrap();
            rounds.push((replayed, eager, down(&s, &indices)));
        }
        comm.wait(&s).unwrap();
        rounds
    });
    for round in 0..ROUNDS {
        let rank0 = &results[0][round].1;
        assert_eq!(
            &results[0][round].2, rank0,
            "round {round}: rank 0 is the broadcast source"
        );
        assert!(
            rank0.iter().any(|&i| i >= 0),
            "round {round}: something was selected"
        );
        for (rank, rounds) in results.iter().enumerate() {
            let (replayed, eager, own) = &rounds[round];
            assert_eq!(
                replayed, rank0,
                "round {round}: rank {rank} replay vs rank 0"
            );
            assert_eq!(eager, rank0, "round {round}: rank {rank} eager vs rank 0");
            if rank > 0 {
                assert_ne!(
                    own, rank0,
                    "round {round}: rank {rank}'s own inputs select differently"
                );
            }
        }
    }
}
