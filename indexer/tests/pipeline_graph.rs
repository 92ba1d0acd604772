//! The decode step captured in a CUDA graph and replayed with new data equals the eager step,
//! bit for bit (logits, indices and the cache), round after round.

mod pipeline_common;

use cudarc::driver::sys;
use dsa_indexer::{DecodeArgs, Indexer, IndexerConfig};
use dsa_jit_cache::dptr;
use pipeline_common::*;
use rand::Rng;

#[test]
#[ignore = "needs a CUDA GPU"]
fn decode_graph_replay_with_new_data_equals_eager_bit_for_bit() {
    let g = gpu();
    // SAFETY: graph capture needs stream-ordered work only; the test synchronises explicitly.
    unsafe { g.ctx.disable_event_tracking() };
    let s = &g.stream;
    let c = IndexerConfig::default();
    let (batch, stride) = (7usize, 6000usize);
    let shape = decode_shape(&c, batch, stride);
    let (bt_stride, pages) = (shape.bt_stride, shape.cache_pages);
    let plan = Indexer::new(c)
        .unwrap()
        .plan_decode(shape, &g.info)
        .unwrap();
    let mut r = rng(99);
    // Buffers the graph is bound to; each round overwrites their contents.
    let lens0 = vec![1i32; batch];
    let (cache0, table0) =
        random_cache_and_table(&mut r, &c, pages, &vec![stride as i32; batch], bt_stride);
    let data0 = TokenData::random(&mut r, &c, vec![0; batch], stride);
    let mut tb = TokenBuffers::new(s, &data0, &vec![-1; batch]);
    let mut cache = up(s, &cache0.bytes);
    let mut table = up(s, &table0);
    let mut lens = up(s, &lens0);
    let logits = s.alloc_zeros::<f32>(batch * stride).unwrap();
    let indices = s.alloc_zeros::<i32>(batch * c.k).unwrap();
    let ws = s.alloc_zeros::<u8>(plan.workspace_bytes()).unwrap();
    let args = DecodeArgs {
        tokens: tb.args(s, dptr(&cache, s)),
        block_table: dptr(&table, s),
        context_lens: dptr(&lens, s),
        logits: dptr(&logits, s),
        indices: dptr(&indices, s),
        workspace: dptr(&ws, s),
        workspace_bytes: plan.workspace_bytes(),
    };
    plan.prepare(&g.ctx).unwrap();
    s.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .unwrap();
    // SAFETY: every buffer has the plan's shape and outlives the graph.
    unsafe { plan.decode(s, &args, None) }.unwrap();
    let graph = s
        .end_capture(sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH)
        .unwrap()
        .expect("a captured graph");
    for round in 0..4 {
        let lens_h: Vec<i32> = (0..batch)
            .map(|_| r.random_range(0..=stride as i32))
            .collect();
        let (cache_h, table_h) = random_cache_and_table(&mut r, &c, pages, &lens_h, bt_stride);
        let (positions, locs) = newest_tokens(&c, &lens_h, &table_h, bt_stride);
        let data = TokenData::random(&mut r, &c, positions, stride);
        tb.upload(s, &data, &locs);
        s.memcpy_htod(&table_h, &mut table).unwrap();
        s.memcpy_htod(&lens_h, &mut lens).unwrap();
        let run = |replay: bool, cache: &mut cudarc::driver::CudaSlice<u8>| {
            s.memcpy_htod(&cache_h.bytes, cache).unwrap();
            if replay {
                graph.launch().unwrap();
            } else {
                // SAFETY: as above.
                unsafe { plan.decode(s, &args, None) }.unwrap();
            }
            (down(s, &logits), down(s, &indices), down(s, cache))
        };
        let replayed = run(true, &mut cache);
        let eager = run(false, &mut cache);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&replayed.0), bits(&eager.0), "round {round}: logits");
        assert_eq!(replayed.1, eager.1, "round {round}: indices");
        assert!(replayed.2 == eager.2, "round {round}: cache");
        assert!(
            replayed.1.iter().any(|&i| i >= 0),
            "round {round}: something was selected"
        );
    }
}
