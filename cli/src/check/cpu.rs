//! Without a GPU: each crate's CPU reference against an independent computation on random
//! data, so the oracle the GPU is judged by is itself checked.

use super::topk::{Case, compare_rows};
use super::{Outcome, Report, tolerance};
use dsa_benches::gpu::{Elem, random_values, rng};
use dsa_indexer::collective::fingerprint::reference_mismatches;
use dsa_layernorm::Norm;
use dsa_layernorm::cpu::{RefParams, norm_row};
use dsa_topk::cpu::{Inputs, TransformData, order_key, window};
use dsa_topk::{OutputOrder, TieBreak, TopkConfig};
use rand::Rng;
use std::cmp::Reverse;

/// The checks of `family`.
pub fn check(family: &str, report: &mut Report) {
    match family {
        "topk" => topk(report),
        "hadamard" => hadamard(report),
        "layernorm" => layernorm(report),
        "collective" => collective(report),
        other => report.add(Outcome::skip("cpu", other, "no CPU check for this family")),
    }
}

/// The reference against a plain sort of (score key, index) pairs per row.
fn topk(report: &mut Report) {
    let mut r = rng(0x7c);
    let case = Case::new(&mut r, 19, 3000, true, Elem::F32);
    let input = Inputs {
        scores: &case.scores,
        stride: case.stride,
        lengths: &case.lengths,
        row_starts: None,
    };
    let k = 2048;
    for tie in [TieBreak::Small, TieBreak::Large] {
        for order in [OutputOrder::Index, OutputOrder::Sorted] {
            let config = TopkConfig::new(k).tie_break(tie).order(order);
            let got = dsa_topk::cpu::topk(&input, &config, &TransformData::None);
            let mut want = Vec::new();
            for row in 0..case.rows {
                let (start, len) = window(&input, row);
                let values = &case.scores[row * case.stride + start..][..len];
                let mut pairs: Vec<(Reverse<u32>, i64)> = values
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        let j = j as i64;
                        (
                            Reverse(order_key(v)),
                            if tie == TieBreak::Small { j } else { -j },
                        )
                    })
                    .collect();
                pairs.sort_unstable();
                let mut idx: Vec<i32> = pairs
                    .iter()
                    .take(k)
                    .map(|p| p.1.unsigned_abs() as i32)
                    .collect();
                if order == OutputOrder::Index {
                    idx.sort_unstable();
                }
                idx.resize(k, -1);
                want.extend(idx);
            }
            let (pass, figure) = compare_rows(&got, &want, k);
            let what = format!("reference = sort, tie={tie:?} order={order:?}").to_lowercase();
            report.add(Outcome::new("topk", what, pass, figure));
        }
    }
}

fn hadamard(report: &mut Report) {
    use dsa_hadamard::cpu::{fp8e4m3_decode, fp8e4m3_encode, hadamard_row, hadamard_row_naive};
    let mut r = rng(0x4a);
    let x: Vec<f64> = (0..256).map(|_| r.random_range(-4.0..4.0)).collect();
    let err = max_abs(&hadamard_row(&x, 1.0), &hadamard_row_naive(&x, 1.0));
    let (pass, figure) = tolerance(err, 1e-9);
    report.add(Outcome::new(
        "hadamard",
        "butterfly = matrix product, n=256",
        pass,
        figure.replace("rel", "max abs"),
    ));
    let n = 4096;
    let x: Vec<f64> = (0..n).map(|_| r.random_range(-4.0..4.0)).collect();
    let s = 1.0 / (n as f64).sqrt();
    let (pass, figure) = tolerance(max_abs(&hadamard_row(&hadamard_row(&x, s), s), &x), 1e-9);
    report.add(Outcome::new(
        "hadamard",
        "orthonormal transform twice = identity, n=4096",
        pass,
        figure.replace("rel", "max abs"),
    ));
    let bad = (0u8..=0xff)
        .filter(|&b| b & 0x7f != 0x7f)
        .filter(|&b| fp8e4m3_encode(fp8e4m3_decode(b)) != b)
        .count();
    report.add(Outcome::new(
        "hadamard",
        "fp8 e4m3 encode(decode(b)) = b, 254 codes",
        bad == 0,
        format!("{bad} codes differ"),
    ));
}

fn layernorm(report: &mut Report) {
    let mut r = rng(0x1e);
    let dim = 7168;
    let x: Vec<f64> = random_values(&mut r, dim, 4.0, Elem::F32)
        .iter()
        .map(|&v| v as f64 + 3.0)
        .collect();
    let y = norm_row(&x, RefParams::plain(Norm::LayerNorm, 0.0));
    let mean = y.iter().sum::<f64>() / dim as f64;
    let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / dim as f64;
    let err = mean.abs().max((var - 1.0).abs());
    let (pass, _) = tolerance(err, 1e-9);
    report.add(Outcome::new(
        "layernorm",
        "layernorm output has mean 0, variance 1",
        pass,
        format!("mean {mean:.1e}, variance - 1 = {:.1e}", var - 1.0),
    ));
    let y = norm_row(&x, RefParams::plain(Norm::RmsNorm, 0.0));
    let rms = (y.iter().map(|v| v * v).sum::<f64>() / dim as f64).sqrt();
    let (pass, _) = tolerance((rms - 1.0).abs(), 1e-9);
    report.add(Outcome::new(
        "layernorm",
        "rmsnorm output has root mean square 1",
        pass,
        format!("rms - 1 = {:.1e}", rms - 1.0),
    ));
}

fn collective(report: &mut Report) {
    let (rows, k) = (33, 64);
    let mut r = rng(0xc0);
    let a: Vec<i32> = (0..rows * k).map(|_| r.random_range(-1..1 << 20)).collect();
    let mut b = a.clone();
    b[5 * k + 9] ^= 1;
    let mut c = a.clone();
    c.swap(20 * k + 1, 20 * k + 2);
    let found = reference_mismatches(&[&a, &b, &c], k);
    report.add(Outcome::new(
        "collective",
        "fingerprints flag exactly the changed rows",
        found == [5, 20],
        format!("flagged {found:?}, planted [5, 20]"),
    ));
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
