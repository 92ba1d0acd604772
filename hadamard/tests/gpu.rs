//! On a GPU: every kernel against the float64 reference. Run with
//! `cargo test -p dsa-hadamard --release -- --include-ignored`.
//!
//! Every check uses fresh random data, poisons the output (0xFF bytes: NaN in every output
//! type) and checks that row padding stays poisoned. Float outputs: relative error
//! ‖out − ref‖ / ‖ref‖ < 1e-5 (f32) or 1e-2 (bf16/f16). FP8: scales and bytes equal exactly
//! the reference rule applied to the GPU's own f32 transform (the f32-output variant of the
//! same input type and length runs the same f32 operations in the same order), and the
//! dequantized values lie within e4m3 rounding of the float64 reference.

use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use dsa_hadamard::{DType, Hadamard, HadamardConfig, Output, ScaleGroup, cpu};
use dsa_jit_cache::testing::{from_bytes, rel_err, to_bytes};
use dsa_jit_cache::{dptr, strided_len};
use half::bf16;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

const ALL_LOG_N: std::ops::RangeInclusive<u32> = 1..=15;

fn stream() -> Arc<CudaStream> {
    CudaContext::new(0).unwrap().default_stream()
}

fn rows_for(n: usize) -> &'static [usize] {
    if n <= 1024 {
        &[1, 19, 99, 989]
    } else {
        &[1, 19, 99]
    }
}

/// A random `[rows, stride]` input whose rows have magnitudes from 1e-2 to 1e2, rounded to
/// `dtype`; returns the device bytes and the exact values as f64.
fn random_input(
    rng: &mut StdRng,
    rows: usize,
    n: usize,
    stride: usize,
    dtype: DType,
) -> (Vec<u8>, Vec<f64>) {
    let len = strided_len(rows, stride, n);
    let mut v = vec![0f32; len];
    for r in 0..rows {
        let mag = 10f32.powf(rng.random_range(-2.0..2.0));
        for x in &mut v[r * stride..(r * stride + n).min(len)] {
            *x = mag * rng.random_range(-1.0f32..1.0);
        }
    }
    let bytes = to_bytes(&v, dtype);
    let exact = from_bytes(&bytes, dtype)
        .into_iter()
        .map(f64::from)
        .collect();
    (bytes, exact)
}

fn upload(s: &Arc<CudaStream>, bytes: &[u8]) -> CudaSlice<u8> {
    // At least one byte so the allocation (and pointer) exists for empty shapes.
    let mut v = bytes.to_vec();
    v.resize(bytes.len().max(16), 0);
    s.clone_htod(&v).unwrap()
}

fn poisoned(s: &Arc<CudaStream>, len: usize) -> CudaSlice<u8> {
    s.clone_htod(&vec![0xffu8; len.max(16)]).unwrap()
}

/// The first `n` of each row of a strided `[rows, stride]` array of `size`-byte elements,
/// asserting the padding is still 0xFF.
fn gather_rows(b: &[u8], rows: usize, n: usize, stride: usize, size: usize, what: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows * n * size);
    for r in 0..rows {
        let row = &b[r * stride * size..];
        out.extend_from_slice(&row[..n * size]);
        if r + 1 < rows {
            let pad = &row[n * size..stride * size];
            assert!(
                pad.iter().all(|&x| x == 0xff),
                "{what}: row {r} padding written"
            );
        }
    }
    out
}

/// Float output, out of place (or in place when `in_place`); returns the relative error.
fn check_float(s: &Arc<CudaStream>, rng: &mut StdRng, cfg: HadamardConfig, in_place: bool) -> f64 {
    check_plan_float(s, rng, Hadamard::plan(cfg).unwrap(), in_place)
}

/// As [`check_float`], for a given plan (e.g. one without the input stage).
fn check_plan_float(s: &Arc<CudaStream>, rng: &mut StdRng, plan: Hadamard, in_place: bool) -> f64 {
    let cfg = *plan.config();
    let Output::Float(out_t) = cfg.output else {
        unreachable!()
    };
    let (bytes, exact) = random_input(rng, cfg.rows, cfg.n, cfg.in_stride, cfg.input);
    let reference = cpu::hadamard_rows(&exact, cfg.rows, cfg.n, cfg.in_stride, cfg.scale as f64);
    let out_len = plan.output_len() * out_t.size();
    let (x, y) = if in_place {
        // Padding of an in-place buffer holds input; poison only the padding can't be checked.
        (upload(s, &bytes), None)
    } else {
        (upload(s, &bytes), Some(poisoned(s, out_len)))
    };
    let yp = y.as_ref().map_or(dptr(&x, s), |y| dptr(y, s));
    // SAFETY: x and y were sized from the plan's input_len/output_len on this stream.
    unsafe { plan.launch_raw(s, dptr(&x, s), yp, 0) }.unwrap();
    let host = s.clone_dtoh(y.as_ref().unwrap_or(&x)).unwrap();
    let what = plan.variant().to_string();
    let got = if in_place {
        let mut g = Vec::new();
        for r in 0..cfg.rows {
            let start = r * cfg.out_stride * out_t.size();
            g.extend_from_slice(&host[start..start + cfg.n * out_t.size()]);
        }
        g
    } else {
        gather_rows(&host, cfg.rows, cfg.n, cfg.out_stride, out_t.size(), &what)
    };
    let got = from_bytes(&got, out_t);
    assert!(
        got.iter().all(|v| v.is_finite()),
        "{what}: unwritten (NaN) outputs"
    );
    let err = rel_err(&got, &reference);
    let tol = if out_t == DType::F32 { 1e-5 } else { 1e-2 };
    assert!(
        err < tol,
        "{what} rows={} strides={}/{}: rel err {err:e}",
        cfg.rows,
        cfg.in_stride,
        cfg.out_stride
    );
    err
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn float_outputs_match_the_reference() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(1);
    let mut case = 0usize;
    for log_n in ALL_LOG_N {
        let n = 1usize << log_n;
        for input in DType::ALL {
            for out in DType::ALL {
                for &rows in rows_for(n) {
                    case += 1;
                    // Alternate contiguous and padded rows (pads are multiples of every vector).
                    let (si, so) = match case % 3 {
                        0 => (n, n),
                        1 => (n + 16, n),
                        _ => (n + 24, n + 32),
                    };
                    let cfg = HadamardConfig::new(n, rows, input, Output::Float(out))
                        .with_strides(si, so);
                    check_float(&s, &mut rng, cfg, false);
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn f32_accuracy_is_tight_and_custom_scales_apply() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(2);
    for log_n in ALL_LOG_N {
        let n = 1usize << log_n;
        let f32o = Output::Float(DType::F32);
        let err = check_float(
            &s,
            &mut rng,
            HadamardConfig::new(n, 19, DType::F32, f32o),
            false,
        );
        assert!(err < 1e-6, "n={n}: {err:e}");
        check_float(
            &s,
            &mut rng,
            HadamardConfig::new(n, 7, DType::F32, f32o).with_scale(1.0),
            false,
        );
        check_float(
            &s,
            &mut rng,
            HadamardConfig::new(n, 7, DType::Bf16, f32o).with_scale(-0.375),
            false,
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn in_place_for_every_dtype_and_dim() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(3);
    for log_n in ALL_LOG_N {
        let n = 1usize << log_n;
        for (input, out) in [
            (DType::Bf16, DType::Bf16),
            (DType::F16, DType::F16),
            (DType::F32, DType::F32),
            (DType::Bf16, DType::F16),
        ] {
            for (rows, pad) in [(19, 0), (99, 16)] {
                let cfg = HadamardConfig::new(n, rows, input, Output::Float(out))
                    .with_strides(n + pad, n + pad);
                check_float(&s, &mut rng, cfg, true);
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn applying_twice_is_the_identity() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(4);
    for log_n in ALL_LOG_N {
        let n = 1usize << log_n;
        let cfg = HadamardConfig::new(n, 19, DType::F32, Output::Float(DType::F32));
        let plan = Hadamard::plan(cfg).unwrap();
        let (bytes, exact) = random_input(&mut rng, 19, n, n, DType::F32);
        let x = upload(&s, &bytes);
        for _ in 0..2 {
            // SAFETY: x holds the plan's 19 x n floats; in place with equal strides.
            unsafe { plan.launch_raw(&s, dptr(&x, &s), dptr(&x, &s), 0) }.unwrap();
        }
        let back: Vec<f32> = from_bytes(&s.clone_dtoh(&x).unwrap(), DType::F32);
        let err = rel_err(&back[..19 * n], &exact);
        assert!(err < 1e-5, "n={n}: {err:e}");
    }
}

fn check_fp8(s: &Arc<CudaStream>, rng: &mut StdRng, cfg: HadamardConfig) {
    check_plan_fp8(s, rng, Hadamard::plan(cfg).unwrap())
}

/// As [`check_fp8`], for a given plan; the f32 transform it compares with uses the same stage.
fn check_plan_fp8(s: &Arc<CudaStream>, rng: &mut StdRng, plan: Hadamard) {
    let cfg = *plan.config();
    let what = format!(
        "{} pow2={} rows={}",
        plan.variant(),
        cfg.pow2_scales,
        cfg.rows
    );
    let group = plan.variant().fp8_group().unwrap();
    let (n, rows) = (cfg.n, cfg.rows);
    let (bytes, exact) = random_input(rng, rows, n, cfg.in_stride, cfg.input);
    let x = upload(s, &bytes);
    // The GPU's own f32 transform (contiguous f32 output).
    let f32_plan = Hadamard::plan(HadamardConfig {
        output: Output::Float(DType::F32),
        out_stride: n,
        ..cfg
    })
    .unwrap()
    .with_stage(plan.variant().stage);
    let v_dev = poisoned(s, rows * n * 4);
    // SAFETY: buffers sized from the plans' lengths, on this stream.
    unsafe { f32_plan.launch_raw(s, dptr(&x, s), dptr(&v_dev, s), 0) }.unwrap();
    let q_dev = poisoned(s, plan.output_len());
    let sc_dev = poisoned(s, plan.scales_len() * 4);
    // SAFETY: as above; scales holds scales_len floats.
    unsafe { plan.launch_raw(s, dptr(&x, s), dptr(&q_dev, s), dptr(&sc_dev, s)) }.unwrap();

    let v = from_bytes(&s.clone_dtoh(&v_dev).unwrap()[..rows * n * 4], DType::F32);
    let q = gather_rows(
        &s.clone_dtoh(&q_dev).unwrap(),
        rows,
        n,
        cfg.out_stride,
        1,
        &what,
    );
    let scales = from_bytes(
        &s.clone_dtoh(&sc_dev).unwrap()[..plan.scales_len() * 4],
        DType::F32,
    );
    // Exact: the rule applied to the GPU's pre-quantization values.
    let (want_q, want_s) = cpu::quantize_fp8(&v, n, group, cfg.pow2_scales);
    assert_eq!(scales.len(), want_s.len());
    for (i, (a, b)) in scales.iter().zip(&want_s).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{what}: scale {i}: {a:e} vs {b:e}"
        );
    }
    if let Some(i) = (0..q.len()).find(|&i| q[i] != want_q[i]) {
        panic!(
            "{what}: byte {i}: {:#04x} vs {:#04x} (value {:e})",
            q[i], want_q[i], v[i]
        );
    }
    // Within e4m3 rounding of the float64 reference.
    let reference = cpu::hadamard_rows(&exact, rows, n, cfg.in_stride, cfg.scale as f64);
    for (i, &r) in reference.iter().enumerate() {
        let sc = scales[i / group] as f64;
        let deq = cpu::fp8e4m3_decode(q[i]) as f64 * sc;
        let tol = r.abs() * 2f64.powi(-4) * 1.001 + sc * 2f64.powi(-10) + 448.0 * sc * 1e-6;
        assert!(
            (deq - r).abs() <= tol,
            "{what}: element {i}: {deq:e} vs {r:e}"
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn fp8_outputs_follow_the_rule_exactly() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(5);
    for log_n in ALL_LOG_N {
        let n = 1usize << log_n;
        for input in DType::ALL {
            for group in [ScaleGroup::Row, ScaleGroup::Block128] {
                if group == ScaleGroup::Block128 && n < 128 {
                    continue;
                }
                for (k, &rows) in rows_for(n).iter().enumerate() {
                    let pad = if k % 2 == 1 { 16 } else { 0 };
                    let cfg = HadamardConfig::new(n, rows, input, Output::Fp8 { group })
                        .with_strides(n + pad, n + 2 * pad)
                        .with_pow2_scales(k % 2 == 0);
                    check_fp8(&s, &mut rng, cfg);
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn typed_api_and_empty_launches() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(6);
    let (n, rows) = (128, 99);
    let x: Vec<bf16> = (0..rows * n)
        .map(|_| bf16::from_f32(rng.random_range(-1.0..1.0)))
        .collect();
    let exact: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let reference = cpu::hadamard_rows(&exact, rows, n, n, cpu::default_scale(n) as f64);
    let xd = s.clone_htod(&x).unwrap();

    let plan = Hadamard::plan(HadamardConfig::new(
        n,
        rows,
        DType::Bf16,
        Output::Float(DType::F32),
    ))
    .unwrap();
    let mut yd = s.clone_htod(&vec![f32::NAN; rows * n]).unwrap();
    plan.run(&s, &xd, &mut yd).unwrap();
    assert!(rel_err(&s.clone_dtoh(&yd).unwrap(), &reference) < 1e-5);

    let in_place = Hadamard::plan(HadamardConfig::new(
        n,
        rows,
        DType::Bf16,
        Output::Float(DType::Bf16),
    ))
    .unwrap();
    let mut xd2 = s.clone_htod(&x).unwrap();
    in_place.run_in_place(&s, &mut xd2).unwrap();
    let got: Vec<f32> = s
        .clone_dtoh(&xd2)
        .unwrap()
        .iter()
        .map(|v| v.to_f32())
        .collect();
    assert!(rel_err(&got, &reference) < 1e-2);

    let fp8 = Hadamard::plan(HadamardConfig::new(
        n,
        rows,
        DType::Bf16,
        Output::Fp8 {
            group: ScaleGroup::Row,
        },
    ))
    .unwrap();
    let mut q = s.alloc_zeros::<u8>(rows * n).unwrap();
    let mut sc = s.alloc_zeros::<f32>(rows).unwrap();
    fp8.run_fp8(&s, &xd, &mut q, &mut sc).unwrap();
    let (q, sc) = (s.clone_dtoh(&q).unwrap(), s.clone_dtoh(&sc).unwrap());
    let deq: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &b)| cpu::fp8e4m3_decode(b) * sc[i / n])
        .collect();
    assert!(rel_err(&deq, &reference) < 0.05);

    // Wrong dtype and short buffers are typed errors; zero rows launch nothing.
    assert!(
        plan.run(
            &s,
            &yd.clone(),
            &mut s.alloc_zeros::<f32>(rows * n).unwrap()
        )
        .is_err()
    );
    assert!(
        plan.run(&s, &xd, &mut s.alloc_zeros::<f32>(rows * n - 1).unwrap())
            .is_err()
    );
    let empty = Hadamard::plan(HadamardConfig::new(
        n,
        0,
        DType::Bf16,
        Output::Float(DType::F32),
    ))
    .unwrap();
    empty.run(&s, &xd, &mut yd).unwrap();
    s.synchronize().unwrap();
}

/// Rows longer than 1024 run on persistent blocks; this covers blocks that loop over several
/// rows (the stage then prefetches each next row), with and without the stage, out of place,
/// in place, padded strides and FP8.
#[test]
#[ignore = "needs a CUDA GPU"]
fn persistent_blocks_loop_over_many_rows() {
    let s = stream();
    let ctx = s.context().clone();
    let mut rng = StdRng::seed_from_u64(7);
    for log_n in 11..=15u32 {
        let n = 1usize << log_n;
        for stage in [true, false] {
            for (input, out) in [(DType::Bf16, DType::Bf16), (DType::F32, DType::F32)] {
                let base = Hadamard::plan(HadamardConfig::new(n, 1, input, Output::Float(out)))
                    .unwrap()
                    .with_stage(stage);
                let r = base
                    .residency(&ctx)
                    .unwrap()
                    .expect("long rows have a residency");
                assert!(r.blocks_per_sm >= 1 && r.sm_count >= 1);
                // bf16 rows fit the stage on every GPU that runs them (sm_90: 227 KB).
                if stage && input == DType::Bf16 && ctx.attribute(
                    cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                ).unwrap() >= 227 * 1024 {
                    assert!(r.variant.stage, "{}", r.variant);
                }
                let rows = 2 * (r.sm_count * r.blocks_per_sm) as usize + 3;
                for (in_place, pad) in [(false, 0), (true, 16), (false, 24)] {
                    let cfg = HadamardConfig::new(n, rows, input, Output::Float(out))
                        .with_strides(n + pad, n + pad);
                    let plan = Hadamard::plan(cfg).unwrap().with_stage(stage);
                    check_plan_float(&s, &mut rng, plan, in_place);
                }
            }
            for group in [ScaleGroup::Row, ScaleGroup::Block128] {
                let cfg = HadamardConfig::new(n, 1, DType::Bf16, Output::Fp8 { group });
                let r = Hadamard::plan(cfg)
                    .unwrap()
                    .with_stage(stage)
                    .residency(&ctx)
                    .unwrap();
                let rows = 2 * r.map_or(1, |r| (r.sm_count * r.blocks_per_sm) as usize) + 5;
                let cfg = HadamardConfig { rows, ..cfg }
                    .with_strides(n + 8, n + 16)
                    .with_pow2_scales(group == ScaleGroup::Row);
                check_plan_fp8(&s, &mut rng, Hadamard::plan(cfg).unwrap().with_stage(stage));
            }
        }
    }
}

/// Without the stage, every long-row dim and dtype pair still matches the reference.
#[test]
#[ignore = "needs a CUDA GPU"]
fn unstaged_long_rows_match_the_reference() {
    let s = stream();
    let mut rng = StdRng::seed_from_u64(8);
    for log_n in 11..=15u32 {
        let n = 1usize << log_n;
        for input in DType::ALL {
            for out in DType::ALL {
                let cfg = HadamardConfig::new(n, 19, input, Output::Float(out))
                    .with_strides(n + 16, n + 32);
                let plan = Hadamard::plan(cfg).unwrap().with_stage(false);
                assert!(!plan.variant().stage);
                check_plan_float(&s, &mut rng, plan, false);
            }
        }
    }
}
