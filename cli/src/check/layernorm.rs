//! LayerNorm and RMSNorm on the GPU against the float64 reference, with gamma and beta, for
//! every dtype over a warp-team dim, a CTA dim and an odd dim (scalar path).

use super::{Outcome, Report, rel_err, tolerance};
use crate::error::Result;
use dsa_benches::Gpu;
use dsa_benches::gpu::{Elem, random_values, rng};
use dsa_jit_cache::dptr;
use dsa_layernorm::cpu::{RefParams, norm_rows};
use dsa_layernorm::{DType, LayerNorm, LayerNormConfig, Norm};
use rand::rngs::StdRng;

/// (dim, rows): the indexer's key, DeepSeek's hidden size, an odd dim.
const SHAPES: [(usize, usize); 3] = [(128, 989), (7168, 19), (111, 99)];

fn check(gpu: &Gpu, rng: &mut StdRng, cfg: LayerNormConfig) -> Result<(bool, String, String)> {
    let plan = LayerNorm::plan(cfg)?;
    let elem = Elem::from(cfg.input);
    let x: Vec<f32> = random_values(rng, plan.input_len(), 4.0, elem)
        .iter()
        .map(|v| elem.round(v + 3.0))
        .collect();
    let g = random_values(rng, cfg.dim, 2.0, elem);
    let b = random_values(rng, cfg.dim, 2.0, elem);
    let (xd, gd, bd) = (
        gpu.upload(&elem.encode(&x))?,
        gpu.upload(&elem.encode(&g))?,
        gpu.upload(&elem.encode(&b))?,
    );
    let yd = gpu.zeros::<u8>(plan.output_len() * cfg.output.size())?;
    let s = &gpu.stream;
    let ptrs = (dptr(&xd, s), dptr(&yd, s), dptr(&gd, s), dptr(&bd, s));
    let kernel = plan.variant_for(ptrs.0, ptrs.1, ptrs.2, ptrs.3).to_string();
    // SAFETY: x holds input_len elements, y output_len, gamma and beta dim, of the plan's
    // dtypes, live on this context until the download below synchronises.
    unsafe { plan.launch_raw(s, ptrs.0, ptrs.1, ptrs.2, ptrs.3)? };
    let y = gpu.download(&yd)?;
    let got: Vec<f64> = Elem::from(cfg.output)
        .decode(&y[..plan.output_len() * cfg.output.size()])
        .iter()
        .map(|&v| v as f64)
        .collect();
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (g64, b64) = (wide(&g), wide(&b));
    let p = RefParams {
        gamma: Some(&g64),
        beta: Some(&b64),
        norm: cfg.norm,
        eps: cfg.eps as f64,
    };
    let want = norm_rows(&wide(&x), cfg.rows, cfg.dim, cfg.x_stride, p);
    let tol = if cfg.output == DType::F32 { 1e-5 } else { 1e-2 };
    let (pass, figure) = tolerance(rel_err(&got, &want), tol);
    Ok((pass, figure, kernel))
}

/// Both norms × every dtype × every shape.
pub fn gpu(gpu: &Gpu, report: &mut Report) {
    let mut r = rng(0x1e);
    for norm in [Norm::LayerNorm, Norm::RmsNorm] {
        for (dim, rows) in SHAPES {
            for dtype in DType::ALL {
                let cfg = LayerNormConfig::new(dim, rows, dtype, dtype).with_norm(norm);
                let name = if norm == Norm::LayerNorm {
                    "layernorm"
                } else {
                    "rmsnorm"
                };
                let what = format!("{name} {dtype} {rows}x{dim}");
                let outcome = match check(gpu, &mut r, cfg) {
                    Ok((pass, figure, kernel)) => {
                        Outcome::new("layernorm", what, pass, format!("{figure}  {kernel}"))
                    }
                    Err(e) => Outcome::new("layernorm", what, false, format!("error: {e}")),
                };
                report.add(outcome);
            }
        }
    }
}
