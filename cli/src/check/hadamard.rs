//! Hadamard on the GPU against the float64 reference: every input dtype (float output of the
//! same type) over small, shared-memory and largest dims, and the fused FP8 outputs.

use super::{Outcome, Report, rel_err, tolerance};
use crate::error::Result;
use dsa_benches::Gpu;
use dsa_benches::gpu::{Elem, random_values, rng};
use dsa_hadamard::{DType, Hadamard, HadamardConfig, Output, ScaleGroup, cpu};
use dsa_jit_cache::dptr;
use rand::rngs::StdRng;

/// (dim, rows): registers+shuffles, shared memory, the largest dim.
const SHAPES: [(usize, usize); 3] = [(128, 989), (4096, 19), (32768, 3)];
/// Dequantized FP8 against the reference: e4m3 keeps 3 mantissa bits (≤ 6.25% per element).
const FP8_TOL: f64 = 0.06;

/// Transform random rows; returns (input values, output bytes, scales).
fn run(gpu: &Gpu, rng: &mut StdRng, cfg: HadamardConfig) -> Result<(Vec<f32>, Vec<u8>, Vec<f32>)> {
    let plan = Hadamard::plan(cfg)?;
    let elem = Elem::from(cfg.input);
    let x = random_values(rng, plan.input_len(), 4.0, elem);
    let xd = gpu.upload(&elem.encode(&x))?;
    let yd = gpu.zeros::<u8>(plan.output_len() * cfg.output.size())?;
    let sd = gpu.zeros::<f32>(plan.scales_len())?;
    let s = &gpu.stream;
    let scales = if plan.scales_len() > 0 {
        dptr(&sd, s)
    } else {
        0
    };
    // SAFETY: x holds input_len elements, y output_len of the output type and the scales
    // scales_len f32, all live on this context until the downloads below synchronise.
    unsafe { plan.launch_raw(s, dptr(&xd, s), dptr(&yd, s), scales)? };
    let mut scales = gpu.download(&sd)?;
    scales.truncate(plan.scales_len());
    let mut y = gpu.download(&yd)?;
    y.truncate(plan.output_len() * cfg.output.size());
    Ok((x, y, scales))
}

fn reference(x: &[f32], cfg: &HadamardConfig) -> Vec<f64> {
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    cpu::hadamard_rows(&x64, cfg.rows, cfg.n, cfg.n, cfg.scale as f64)
}

fn float(gpu: &Gpu, rng: &mut StdRng, cfg: HadamardConfig, out: DType) -> Result<(bool, String)> {
    let (x, y, _) = run(gpu, rng, cfg)?;
    let got: Vec<f64> = Elem::from(out)
        .decode(&y)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let tol = if out == DType::F32 { 1e-5 } else { 1e-2 };
    Ok(tolerance(rel_err(&got, &reference(&x, &cfg)), tol))
}

fn fp8(gpu: &Gpu, rng: &mut StdRng, cfg: HadamardConfig, group: usize) -> Result<(bool, String)> {
    let (x, y, scales) = run(gpu, rng, cfg)?;
    let got: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, &b)| (cpu::fp8e4m3_decode(b) * scales[i / group]) as f64)
        .collect();
    Ok(tolerance(rel_err(&got, &reference(&x, &cfg)), FP8_TOL))
}

/// The float outputs, then FP8 with block-128 and per-row scales.
pub fn gpu(gpu: &Gpu, report: &mut Report) {
    let mut r = rng(0x4a);
    for (n, rows) in SHAPES {
        for dtype in DType::ALL {
            let cfg = HadamardConfig::new(n, rows, dtype, Output::Float(dtype));
            let what = format!("{dtype}->{dtype} {rows}x{n}");
            report.add(Outcome::from_result(
                "hadamard",
                what,
                float(gpu, &mut r, cfg, dtype),
            ));
        }
    }
    for (n, rows, group) in [
        (128, 989, ScaleGroup::Block128),
        (4096, 19, ScaleGroup::Row),
    ] {
        let cfg = HadamardConfig::new(n, rows, DType::Bf16, Output::Fp8 { group });
        let size = if group == ScaleGroup::Row { n } else { 128 };
        let what = format!("bf16->fp8 ({group} scales) {rows}x{n}");
        report.add(Outcome::from_result(
            "hadamard",
            what,
            fp8(gpu, &mut r, cfg, size),
        ));
    }
}
