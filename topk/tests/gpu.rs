//! GPU top-k against the CPU reference, element for element.

use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use dsa_jit_cache::{DeviceInfo, dptr};
use dsa_topk::cpu::{self, TransformData};
use dsa_topk::{
    OutputOrder, RequestMap, ScoreDtype, TieBreak, TopkArgs, TopkConfig, TopkPlan, Transform,
    TransformArgs, Tuning,
};
use half::{bf16, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

const POISON: i32 = -0x2152_4111; // 0xDEADBEEF: any unwritten output shows up

/// Kinds of score data.
#[derive(Clone, Copy, Debug)]
enum Data {
    /// Uniform in [-4, 4).
    Random,
    /// A handful of values, long runs of equal values across the threshold.
    Ties,
    /// Random with NaN, +-inf, +-0 sprinkled in and a -inf masked tail.
    Special,
    /// Ascending: every element beats the threshold so far (worst case for the buffer).
    Ascending,
    /// Descending: the first chunk holds a segment's largest scores, so a floor guessed from
    /// it is too high and the segment is streamed again.
    Descending,
}

fn scores(rng: &mut StdRng, n: usize, data: Data) -> Vec<f32> {
    match data {
        Data::Random => (0..n).map(|_| rng.random_range(-4.0f32..4.0)).collect(),
        Data::Ties => {
            let vals = [-1.0f32, 0.0, 0.5, 0.5, 1.0, 2.0];
            let mut v = Vec::with_capacity(n);
            while v.len() < n {
                let x = vals[rng.random_range(0..vals.len())];
                let run = rng.random_range(1..64);
                v.extend(std::iter::repeat_n(x, run.min(n - v.len())));
            }
            v
        }
        Data::Special => {
            let mut v: Vec<f32> = (0..n).map(|_| rng.random_range(-4.0f32..4.0)).collect();
            let specials = [
                f32::NAN,
                -f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                0.0,
                -0.0,
            ];
            for _ in 0..n / 50 + 1 {
                let i = rng.random_range(0..n);
                v[i] = specials[rng.random_range(0..specials.len())];
            }
            let tail = rng.random_range(0..=n / 3);
            v[n - tail..].fill(f32::NEG_INFINITY);
            v
        }
        Data::Ascending => (0..n).map(|i| i as f32 * 0.25 - 1000.0).collect(),
        Data::Descending => (0..n).map(|i| 1000.0 - i as f32 * 0.25).collect(),
    }
}

/// Round to the dtype (so the reference sees exactly what the GPU sees) and upload.
fn upload(stream: &Arc<CudaStream>, v: &mut [f32], dtype: ScoreDtype) -> CudaSlice<u8> {
    let bytes: Vec<u8> = match dtype {
        ScoreDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ScoreDtype::Bf16 => v
            .iter_mut()
            .flat_map(|x| {
                let h = bf16::from_f32(*x);
                *x = h.to_f32();
                h.to_le_bytes()
            })
            .collect(),
        ScoreDtype::F16 => v
            .iter_mut()
            .flat_map(|x| {
                let h = f16::from_f32(*x);
                *x = h.to_f32();
                h.to_le_bytes()
            })
            .collect(),
    };
    stream.clone_htod(&bytes).unwrap()
}

/// One top-k problem with its host copies.
struct Case {
    rows: usize,
    stride: usize,
    scores: Vec<f32>,
    lengths: Vec<i32>,
    row_starts: Option<Vec<i32>>,
    config: TopkConfig,
    tuning: Tuning,
}

/// Host data for the transform, uploaded by `run`.
enum Xform {
    None,
    Ragged(Vec<i32>),
    Paged {
        table: Vec<i32>,
        stride: usize,
        cols: usize,
        num_requests: usize,
        map: Vec<i32>,
    },
}

struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    info: DeviceInfo,
}

fn gpu() -> Gpu {
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.default_stream();
    let info = DeviceInfo::of(&ctx).unwrap();
    Gpu { ctx, stream, info }
}

impl Gpu {
    /// Run on the GPU and on the CPU; returns (gpu, reference).
    fn run(&self, case: &mut Case, xform: &Xform) -> (Vec<i32>, Vec<i32>) {
        let s = &self.stream;
        let plan =
            TopkPlan::new(case.config, case.rows, case.stride, &self.info, case.tuning).unwrap();
        let scores = upload(s, &mut case.scores, case.config.dtype);
        let lengths = s.clone_htod(&case.lengths).unwrap();
        let starts = case.row_starts.as_ref().map(|r| s.clone_htod(r).unwrap());
        let out = s
            .clone_htod(&vec![POISON; case.rows * case.config.k])
            .unwrap();
        let ws = s.alloc_zeros::<u8>(plan.workspace_bytes().max(16)).unwrap();
        let (extra_a, extra_b, transform, data) = match xform {
            Xform::None => (None, None, TransformArgs::None, TransformData::None),
            Xform::Ragged(off) => {
                let d = s.clone_htod(off).unwrap();
                let t = TransformArgs::Ragged {
                    offsets: dptr(&d, s),
                };
                (Some(d), None, t, TransformData::Ragged { offsets: off })
            }
            Xform::Paged {
                table,
                stride,
                cols,
                num_requests,
                map,
            } => {
                let dt = s.clone_htod(table).unwrap();
                let dm = s.clone_htod(map).unwrap();
                let t = TransformArgs::Paged {
                    page_table: dptr(&dt, s),
                    stride: *stride,
                    cols: *cols,
                    num_requests: *num_requests,
                    rows_to_requests: dptr(&dm, s),
                };
                let d = TransformData::Paged {
                    page_table: table,
                    stride: *stride,
                    cols: *cols,
                    num_requests: *num_requests,
                    rows_to_requests: map,
                };
                (Some(dt), Some(dm), t, d)
            }
        };
        let args = TopkArgs {
            scores: dptr(&scores, s),
            lengths: dptr(&lengths, s),
            row_starts: starts.as_ref().map_or(0, |d| dptr(d, s)),
            out: dptr(&out, s),
            workspace: dptr(&ws, s),
            workspace_bytes: plan.workspace_bytes(),
            transform,
        };
        // SAFETY: every pointer is a live allocation of the documented shape.
        unsafe { plan.launch(s, &args) }.unwrap();
        let got = s.clone_dtoh(&out).unwrap();
        drop((extra_a, extra_b));
        let input = cpu::Inputs {
            scores: &case.scores,
            stride: case.stride,
            lengths: &case.lengths,
            row_starts: case.row_starts.as_deref(),
        };
        (got, cpu::topk(&input, &case.config, &data))
    }

    fn check(&self, what: &str, case: &mut Case, xform: &Xform) {
        let (got, want) = self.run(case, xform);
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            let (row, k) = (i / case.config.k, case.config.k);
            panic!(
                "{what}: row {row} col {} differs: gpu {} vs ref {}\n gpu row head {:?}\n ref row head {:?}",
                i % k,
                got[i],
                want[i],
                &got[row * k..(row * k + 16).min(row * k + k)],
                &want[row * k..(row * k + 16).min(row * k + k)]
            );
        }
    }
}

fn case(
    rng: &mut StdRng,
    rows: usize,
    stride: usize,
    lengths: Vec<i32>,
    data: Data,
    config: TopkConfig,
) -> Case {
    let scores = (0..rows).flat_map(|_| scores(rng, stride, data)).collect();
    Case {
        rows,
        stride,
        scores,
        lengths,
        row_starts: None,
        config,
        tuning: Tuning::default(),
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn random_and_tie_heavy_rows_match_the_reference_for_every_option() {
    let g = gpu();
    let mut rng = StdRng::seed_from_u64(1);
    for dtype in ScoreDtype::ALL {
        for data in [
            Data::Random,
            Data::Ties,
            Data::Special,
            Data::Ascending,
            Data::Descending,
        ] {
            for tie in [TieBreak::Small, TieBreak::Large] {
                for order in [OutputOrder::Index, OutputOrder::Sorted] {
                    let (rows, stride) = (19, 20000);
                    let lengths = (0..rows)
                        .map(|_| rng.random_range(0..=stride as i32))
                        .collect();
                    let cfg = TopkConfig::new(2048)
                        .dtype(dtype)
                        .tie_break(tie)
                        .order(order);
                    let mut c = case(&mut rng, rows, stride, lengths, data, cfg);
                    g.check(
                        &format!("{dtype} {data:?} {tie:?} {order:?}"),
                        &mut c,
                        &Xform::None,
                    );
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn edge_lengths_and_k_values() {
    let g = gpu();
    let mut rng = StdRng::seed_from_u64(2);
    for k in [1usize, 7, 100, 511, 512, 513, 2047, 2048, 4096] {
        let stride = 3 * k + 5;
        let lens = [
            0,
            1,
            k as i32 - 1,
            k as i32,
            k as i32 + 1,
            stride as i32,
            -3,
            i32::MAX,
        ];
        for data in [Data::Random, Data::Ties] {
            let cfg = TopkConfig::new(k).order(if k % 2 == 0 {
                OutputOrder::Sorted
            } else {
                OutputOrder::Index
            });
            let mut c = case(&mut rng, lens.len(), stride, lens.to_vec(), data, cfg);
            g.check(&format!("k={k} {data:?}"), &mut c, &Xform::None);
        }
    }
}

/// Three rows of `stride` (full, 12345 short, 70001 long; clamped on device) of each kind of
/// data under every dtype x `(threads, cluster, resident scores a thread)` x k in {300, 2048,
/// 4096}, tie-breaks and orders alternating: every launch must equal the reference.
fn every_launch_shape(g: &Gpu, seed: u64, stride: usize, shapes: &[(u32, u32, u32)]) {
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = 3;
    let data = [Data::Ties, Data::Ascending, Data::Random, Data::Descending];
    let base: Vec<Vec<f32>> = data
        .iter()
        .map(|&d| {
            (0..rows)
                .flat_map(|_| scores(&mut rng, stride, d))
                .collect()
        })
        .collect();
    let mut n = 0usize;
    for dtype in ScoreDtype::ALL {
        for &(threads, cluster, keys) in shapes {
            for k in [300, 2048, 4096] {
                n += 1;
                let tie = if n % 2 == 0 {
                    TieBreak::Small
                } else {
                    TieBreak::Large
                };
                let order = if n % 3 == 0 {
                    OutputOrder::Index
                } else {
                    OutputOrder::Sorted
                };
                let d = n % data.len();
                let cfg = TopkConfig::new(k).dtype(dtype).tie_break(tie).order(order);
                let mut c = Case {
                    rows,
                    stride,
                    scores: base[d].clone(),
                    lengths: vec![stride as i32, stride as i32 - 12345, 70001],
                    row_starts: None,
                    config: cfg,
                    tuning: Tuning {
                        threads: Some(threads),
                        cluster: Some(cluster),
                        keys: Some(keys),
                    },
                };
                g.check(
                    &format!(
                        "{dtype} stride={stride} threads={threads} cluster={cluster} keys={keys} k={k} {:?} {tie:?} {order:?}",
                        data[d]
                    ),
                    &mut c,
                    &Xform::None,
                );
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn every_variant_and_launch_shape_gives_the_same_bits() {
    let g = gpu();
    // Long enough that every CTA of the largest cluster streams several chunks and shrinks its
    // buffer; tie-heavy data puts long runs of equal keys across every cut, ascending data makes
    // every score beat the floor so far, descending data makes the guessed floor too high.
    let clusters: &[u32] = if g.info.compute_capability.0 >= 9 {
        &[1, 2, 4, 8, 16]
    } else {
        &[1]
    };
    let shapes: Vec<(u32, u32, u32)> = [256, 512, 1024]
        .into_iter()
        .flat_map(|t| clusters.iter().map(move |&c| (t, c, 16)))
        .collect();
    every_launch_shape(&g, 3, 300_000, &shapes);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn clusters_of_register_resident_segments_give_the_same_bits() {
    let g = gpu();
    if g.info.compute_capability.0 < 9 {
        return; // no clusters: the other tests cover resident rows on one CTA
    }
    // 131072 split 8 or 16 ways fits every CTA's registers (the resident form with a cluster):
    // the first digit is summed across the cluster, the rest run on the gathered bin.
    every_launch_shape(
        &g,
        4,
        131_072,
        &[
            (1024, 8, 16),
            (512, 16, 16),
            (1024, 16, 16),
            (512, 8, 16),
            (512, 8, 32),
            (512, 16, 32),
            (256, 16, 32),
        ],
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn wide_resident_rows_give_the_same_bits() {
    let g = gpu();
    // 32 scores a thread: rows of 8192 on one CTA of 256 or 512 threads (the second with half
    // its slots past the row), and on clusters where the hardware has them.
    let mut shapes = vec![(256, 1, 32), (512, 1, 32)];
    if g.info.compute_capability.0 >= 9 {
        shapes.extend([(256, 2, 32), (256, 4, 32)]);
    }
    every_launch_shape(&g, 6, 8192, &shapes);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn long_rows_up_to_two_to_the_twenty() {
    let g = gpu();
    let mut rng = StdRng::seed_from_u64(4);
    for (rows, stride) in [(1usize, 1usize << 20), (4, 1 << 18), (64, 131072)] {
        for data in [Data::Random, Data::Special] {
            let lengths = (0..rows)
                .map(|i| {
                    if i == 0 {
                        stride as i32
                    } else {
                        rng.random_range(0..=stride as i32)
                    }
                })
                .collect();
            let mut c = case(&mut rng, rows, stride, lengths, data, TopkConfig::new(2048));
            g.check(&format!("{rows}x{stride} {data:?}"), &mut c, &Xform::None);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn row_starts_ragged_and_paged_transforms() {
    let g = gpu();
    let mut rng = StdRng::seed_from_u64(5);
    let (rows, stride, k) = (37, 9000, 512);
    let lengths: Vec<i32> = (0..rows).map(|_| rng.random_range(0..6000)).collect();
    let starts: Vec<i32> = (0..rows).map(|_| rng.random_range(-10..5000)).collect();
    for dtype in ScoreDtype::ALL {
        // row_starts alone (odd starts: unaligned vector loads are handled).
        let mut c = case(
            &mut rng,
            rows,
            stride,
            lengths.clone(),
            Data::Random,
            TopkConfig::new(k).dtype(dtype),
        );
        c.row_starts = Some(starts.clone());
        g.check(&format!("{dtype} row_starts"), &mut c, &Xform::None);
        // Ragged.
        let offsets: Vec<i32> = (0..rows).map(|_| rng.random_range(0..1_000_000)).collect();
        let mut c = case(
            &mut rng,
            rows,
            stride,
            lengths.clone(),
            Data::Ties,
            TopkConfig::new(k).dtype(dtype).transform(Transform::Ragged),
        );
        c.row_starts = Some(starts.clone());
        g.check(&format!("{dtype} ragged"), &mut c, &Xform::Ragged(offsets));
        // Paged, both request maps, several page sizes.
        for page_size in [1u32, 16, 64, 128] {
            let num_requests = 5;
            let cols = (stride as u32).div_ceil(page_size) as usize;
            let pt_stride = cols + 3;
            let mut table: Vec<i32> = (0..num_requests * pt_stride)
                .map(|_| rng.random_range(0..100_000))
                .collect();
            table[7] = -1; // a hole in the table maps to -1
            for requests in [RequestMap::PerRow, RequestMap::CuSeqlens] {
                let map: Vec<i32> = match requests {
                    RequestMap::PerRow => {
                        (0..rows).map(|i| (i % (num_requests + 1)) as i32).collect()
                    } // includes an invalid request
                    RequestMap::CuSeqlens => vec![0, 5, 5, 20, 30, 36],
                };
                let cfg = TopkConfig::new(k).dtype(dtype).transform(Transform::Paged {
                    page_size,
                    requests,
                });
                let mut c = case(&mut rng, rows, stride, lengths.clone(), Data::Random, cfg);
                let x = Xform::Paged {
                    table: table.clone(),
                    stride: pt_stride,
                    cols,
                    num_requests,
                    map,
                };
                g.check(
                    &format!("{dtype} paged P={page_size} {requests:?}"),
                    &mut c,
                    &x,
                );
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_row_gives_the_same_indices_in_any_batch() {
    let g = gpu();
    let mut rng = StdRng::seed_from_u64(6);
    let stride = 50000;
    let target = scores(&mut rng, stride, Data::Ties);
    let mut reference: Option<Vec<i32>> = None;
    for (rows, at) in [(1usize, 0usize), (7, 3), (300, 299), (2, 1)] {
        let mut all: Vec<f32> = (0..rows)
            .flat_map(|_| scores(&mut rng, stride, Data::Random))
            .collect();
        all[at * stride..(at + 1) * stride].copy_from_slice(&target);
        let mut c = Case {
            rows,
            stride,
            scores: all,
            lengths: vec![stride as i32; rows],
            row_starts: None,
            config: TopkConfig::new(2048),
            tuning: Tuning::default(),
        };
        let (got, want) = g.run(&mut c, &Xform::None);
        assert_eq!(got, want, "batch of {rows}");
        let row = got[at * 2048..(at + 1) * 2048].to_vec();
        match &reference {
            None => reference = Some(row),
            Some(r) => assert_eq!(&row, r, "batch of {rows}, row at {at}"),
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_graph_replay_with_new_data_equals_eager() {
    let g = gpu();
    // SAFETY: graph capture needs stream-ordered work only; we synchronise explicitly.
    unsafe { g.ctx.disable_event_tracking() };
    let s = g.ctx.new_stream().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let (rows, stride, k) = (4, 1 << 17, 2048);
    let plan = TopkPlan::new(TopkConfig::new(k), rows, stride, &g.info, Tuning::default()).unwrap();
    assert!(plan.cluster() > 1, "exercise a cluster per row");
    let mut scores_d = s.alloc_zeros::<f32>(rows * stride).unwrap();
    let mut lengths_d = s.alloc_zeros::<i32>(rows).unwrap();
    let out = s.alloc_zeros::<i32>(rows * k).unwrap();
    let ws = s.alloc_zeros::<u8>(plan.workspace_bytes()).unwrap();
    let args = TopkArgs {
        scores: dptr(&scores_d, &s),
        lengths: dptr(&lengths_d, &s),
        out: dptr(&out, &s),
        workspace: dptr(&ws, &s),
        workspace_bytes: plan.workspace_bytes(),
        ..TopkArgs::default()
    };
    plan.prepare(&g.ctx).unwrap();
    s.begin_capture(cudarc::driver::sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .unwrap();
    // SAFETY: all pointers are live allocations of the documented shapes.
    unsafe { plan.launch(&s, &args) }.unwrap();
    let graph = s
        .end_capture(cudarc::driver::sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH)
        .unwrap()
        .expect("a captured graph");
    for round in 0..3 {
        let host: Vec<f32> = (0..rows)
            .flat_map(|_| scores(&mut rng, stride, Data::Ties))
            .collect();
        let lens: Vec<i32> = (0..rows)
            .map(|_| rng.random_range(0..=stride as i32))
            .collect();
        s.memcpy_htod(&host, &mut scores_d).unwrap();
        s.memcpy_htod(&lens, &mut lengths_d).unwrap();
        graph.launch().unwrap();
        let replayed = s.clone_dtoh(&out).unwrap();
        // SAFETY: as above.
        unsafe { plan.launch(&s, &args) }.unwrap();
        let eager = s.clone_dtoh(&out).unwrap();
        assert_eq!(replayed, eager, "round {round}");
        let input = cpu::Inputs {
            scores: &host,
            stride,
            lengths: &lens,
            row_starts: None,
        };
        assert_eq!(
            eager,
            cpu::topk(&input, plan.config(), &TransformData::None),
            "round {round}"
        );
    }
}
