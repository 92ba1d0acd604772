//! On a GPU: every kernel shape against the float64 reference. Run with
//! `cargo test -p dsa-layernorm --release -- --include-ignored`.
//!
//! Every check uses fresh random data, poisons y (0xFF bytes: NaN in every output type) and
//! checks that row padding stays poisoned. Relative error ‖y − ref‖ / ‖ref‖ < 1e-5 for f32
//! output, < 1e-2 for bf16/f16 (the reference sees the same rounded inputs, gamma and beta).

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr};
use dsa_jit_cache::dptr;
use dsa_jit_cache::testing::{from_bytes, rel_err, to_bytes};
use dsa_layernorm::cpu::{self, RefParams};
use dsa_layernorm::{DType, LayerNorm, LayerNormConfig, Norm};
use half::bf16;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

const DIMS: [usize; 17] = [
    1, 2, 7, 8, 111, 128, 256, 1000, 1024, 1025, 2048, 4096, 4097, 7168, 8192, 16383, 16384,
];

fn stream() -> Arc<CudaStream> {
    CudaContext::new(0).unwrap().default_stream()
}

/// Random values `mean + std * U(-1, 1)`, rounded to `dtype`: device bytes and exact f64s.
fn random(rng: &mut StdRng, len: usize, mean: f32, std: f32, dtype: DType) -> (Vec<u8>, Vec<f64>) {
    let v: Vec<f32> = (0..len)
        .map(|_| mean + std * rng.random_range(-1.0f32..1.0))
        .collect();
    let bytes = to_bytes(&v, dtype);
    let exact = from_bytes(&bytes, dtype)
        .into_iter()
        .map(f64::from)
        .collect();
    (bytes, exact)
}

/// Upload with `offset` leading bytes (to test misaligned pointers); at least 16 bytes.
fn upload(s: &Arc<CudaStream>, bytes: &[u8], offset: usize) -> CudaSlice<u8> {
    let mut v = vec![0u8; offset];
    v.extend_from_slice(bytes);
    v.resize(v.len().max(16), 0);
    s.clone_htod(&v).unwrap()
}

/// One case.
#[derive(Clone, Copy)]
struct Case {
    cfg: LayerNormConfig,
    gamma: bool,
    beta: bool,
    mean: f32,
    /// Byte offset added to x, y, gamma and beta (misaligned pointers use the scalar path).
    offset: usize,
    in_place: bool,
}

impl Case {
    fn new(cfg: LayerNormConfig) -> Case {
        Case {
            cfg,
            gamma: true,
            beta: true,
            mean: 0.0,
            offset: 0,
            in_place: false,
        }
    }
}

/// Run one case against the reference; returns the relative error.
fn check(s: &Arc<CudaStream>, rng: &mut StdRng, case: Case) -> f64 {
    let c = case.cfg;
    let plan = LayerNorm::plan(c).unwrap();
    let mean = case.mean + rng.random_range(-3.0f32..3.0);
    let std = rng.random_range(0.1f32..10.0);
    let (xb, x) = random(rng, plan.input_len(), mean, std, c.input);
    let (gb, g) = random(rng, c.dim, 1.0, 0.5, c.input);
    let (bb, b) = random(rng, c.dim, 0.0, 1.0, c.input);
    let p = RefParams {
        gamma: case.gamma.then_some(&g[..]),
        beta: case.beta.then_some(&b[..]),
        norm: c.norm,
        eps: c.eps as f64,
    };
    let reference = cpu::norm_rows(&x, c.rows, c.dim, c.x_stride, p);

    let o = case.offset as u64;
    let xd = upload(s, &xb, case.offset);
    let gd = upload(s, &gb, case.offset);
    let bd = upload(s, &bb, case.offset);
    let yd = upload(
        s,
        &vec![0xffu8; plan.output_len() * c.output.size()],
        case.offset,
    );
    let ptr = |d: &CudaSlice<u8>| dptr(d, s) + o;
    let (xp, yp) = (ptr(&xd), if case.in_place { ptr(&xd) } else { ptr(&yd) });
    let gp = if case.gamma { ptr(&gd) } else { 0 };
    let bp = if case.beta { ptr(&bd) } else { 0 };
    let variant = plan.variant_for(xp, yp, gp, bp);
    // SAFETY: every buffer was sized from the plan (plus the offset) on this stream.
    unsafe { plan.launch_raw(s, xp, yp, gp, bp) }.unwrap();
    let host = s.clone_dtoh(if case.in_place { &xd } else { &yd }).unwrap();
    let host = &host[case.offset..];
    let what = format!(
        "{variant} dim={} rows={} strides={}/{} {:?} gamma={} beta={} offset={}",
        c.dim, c.rows, c.x_stride, c.y_stride, c.norm, case.gamma, case.beta, case.offset
    );
    let size = c.output.size();
    let mut got = Vec::with_capacity(c.rows * c.dim * size);
    for r in 0..c.rows {
        let row = &host[r * c.y_stride * size..];
        got.extend_from_slice(&row[..c.dim * size]);
        if !case.in_place && r + 1 < c.rows {
            let pad = &row[c.dim * size..c.y_stride * size];
            assert!(
                pad.iter().all(|&b| b == 0xff),
                "{what}: row {r} padding written"
            );
        }
    }
    let got = from_bytes(&got, c.output);
    assert!(
        got.iter().all(|v| v.is_finite()),
        "{what}: unwritten (NaN) outputs"
    );
    let err = rel_err(&got, &reference);
    let tol = if c.output == DType::F32 { 1e-5 } else { 1e-2 };
    assert!(err < tol, "{what}: rel err {err:e}");
    err
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn every_dim_dtype_pair_and_option() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(11);
    let mut k = 0usize;
    for dim in DIMS {
        for input in DType::ALL {
            for output in DType::ALL {
                k += 1;
                let rows = if dim <= 1024 {
                    [1, 19, 99, 989][k % 4]
                } else {
                    [1, 19, 99][k % 3]
                };
                // Padded strides stay multiples of 8 for dims that allow the vector path.
                let (xs, ys) = match k % 3 {
                    0 => (dim, dim),
                    1 => (dim + 8, dim),
                    _ => (dim + 24, dim + 40),
                };
                let norm = if k % 2 == 0 {
                    Norm::LayerNorm
                } else {
                    Norm::RmsNorm
                };
                let cfg = LayerNormConfig::new(dim, rows, input, output)
                    .with_norm(norm)
                    .with_strides(xs, ys);
                let case = Case {
                    gamma: k % 4 != 1,
                    beta: k % 5 != 2,
                    ..Case::new(cfg)
                };
                check(&s, &mut rng, case);
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn indexer_and_hidden_shapes_for_every_row_count() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(12);
    for dim in [128, 7168] {
        for rows in [1, 19, 99, 989] {
            for norm in [Norm::LayerNorm, Norm::RmsNorm] {
                let cfg = LayerNormConfig::new(dim, rows, DType::Bf16, DType::Bf16).with_norm(norm);
                check(&s, &mut rng, Case::new(cfg));
                let cfg = LayerNormConfig::new(dim, rows, DType::F32, DType::F32).with_norm(norm);
                check(
                    &s,
                    &mut rng,
                    Case {
                        gamma: false,
                        beta: false,
                        ..Case::new(cfg)
                    },
                );
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn large_mean_small_std_stays_accurate() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(13);
    for dim in [2, 111, 128, 1000, 7168, 16384] {
        for rows in [1, 19, 99] {
            let cfg = LayerNormConfig::new(dim, rows, DType::F32, DType::F32);
            // Rows with mean 1e4 and std about 1 (check() varies the std from 0.1 to 10).
            check(
                &s,
                &mut rng,
                Case {
                    mean: 1e4,
                    gamma: false,
                    beta: false,
                    ..Case::new(cfg)
                },
            );
            let bf = LayerNormConfig::new(dim, rows, DType::F32, DType::Bf16);
            check(
                &s,
                &mut rng,
                Case {
                    mean: 1e4,
                    ..Case::new(bf)
                },
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn in_place_and_misaligned_pointers() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(14);
    for dim in [1, 111, 128, 1024, 7168, 16384] {
        for (input, output) in [
            (DType::Bf16, DType::Bf16),
            (DType::F32, DType::F32),
            (DType::F16, DType::Bf16),
        ] {
            let cfg = LayerNormConfig::new(dim, 99, input, output).with_strides(dim + 8, dim + 8);
            check(
                &s,
                &mut rng,
                Case {
                    in_place: true,
                    ..Case::new(cfg)
                },
            );
            // One element off 16-byte alignment: the scalar kernel runs and must agree.
            let case = Case {
                offset: input.size(),
                ..Case::new(cfg)
            };
            check(&s, &mut rng, case);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn typed_api() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(15);
    let (dim, rows) = (128, 19);
    let x: Vec<bf16> = (0..dim * rows)
        .map(|_| bf16::from_f32(rng.random_range(-2.0..2.0)))
        .collect();
    let g: Vec<bf16> = (0..dim)
        .map(|_| bf16::from_f32(rng.random_range(0.5..1.5)))
        .collect();
    let xe: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let ge: Vec<f64> = g.iter().map(|v| v.to_f64()).collect();
    let p = RefParams {
        gamma: Some(&ge),
        ..RefParams::plain(Norm::RmsNorm, 1e-6)
    };
    let reference = cpu::norm_rows(&xe, rows, dim, dim, p);
    let plan = LayerNorm::plan(
        LayerNormConfig::new(dim, rows, DType::Bf16, DType::F32)
            .with_norm(Norm::RmsNorm)
            .with_eps(1e-6),
    )
    .unwrap();
    let (xd, gd) = (s.clone_htod(&x).unwrap(), s.clone_htod(&g).unwrap());
    let mut yd = s.clone_htod(&vec![f32::NAN; dim * rows]).unwrap();
    plan.run(&s, &xd, &mut yd, Some(&gd as &dyn DevicePtr<bf16>), None)
        .unwrap();
    assert!(rel_err(&s.clone_dtoh(&yd).unwrap(), &reference) < 1e-5);

    let in_place = LayerNorm::plan(
        LayerNormConfig::new(dim, rows, DType::Bf16, DType::Bf16)
            .with_norm(Norm::RmsNorm)
            .with_eps(1e-6),
    )
    .unwrap();
    let mut xd2 = s.clone_htod(&x).unwrap();
    in_place
        .run_in_place(&s, &mut xd2, Some(&gd as &dyn DevicePtr<bf16>), None)
        .unwrap();
    let got: Vec<f32> = s
        .clone_dtoh(&xd2)
        .unwrap()
        .iter()
        .map(|v| v.to_f32())
        .collect();
    assert!(rel_err(&got, &reference) < 1e-2);

    // Wrong output type and short buffers are typed errors.
    let mut wrong = s.alloc_zeros::<bf16>(dim * rows).unwrap();
    assert!(plan.run(&s, &xd, &mut wrong, None, None).is_err());
    let mut short = s.alloc_zeros::<f32>(dim * rows - 1).unwrap();
    assert!(plan.run(&s, &xd, &mut short, None, None).is_err());
    let short_g = s.alloc_zeros::<bf16>(dim - 1).unwrap();
    assert!(
        plan.run(
            &s,
            &xd,
            &mut yd,
            Some(&short_g as &dyn DevicePtr<bf16>),
            None
        )
        .is_err()
    );
    s.synchronize().unwrap();
}
