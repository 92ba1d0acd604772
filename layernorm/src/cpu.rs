//! The float64 reference: the contract of [`crate`] implemented literally (the test oracle).

use crate::Norm;

/// What to apply to each row.
#[derive(Clone, Copy, Debug)]
pub struct RefParams<'a> {
    /// Optional `[dim]` multiplier.
    pub gamma: Option<&'a [f64]>,
    /// Optional `[dim]` offset.
    pub beta: Option<&'a [f64]>,
    /// LayerNorm or RMSNorm.
    pub norm: Norm,
    /// Added to the variance (or mean square).
    pub eps: f64,
}

impl RefParams<'_> {
    /// No gamma/beta.
    pub fn plain(norm: Norm, eps: f64) -> Self {
        RefParams {
            gamma: None,
            beta: None,
            norm,
            eps,
        }
    }
}

/// Normalize one row in f64.
pub fn norm_row(x: &[f64], p: RefParams<'_>) -> Vec<f64> {
    let RefParams {
        gamma,
        beta,
        norm,
        eps,
    } = p;
    let n = x.len() as f64;
    let (mean, denom) = match norm {
        Norm::LayerNorm => {
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            (mean, (var + eps).sqrt())
        }
        Norm::RmsNorm => (0.0, (x.iter().map(|v| v * v).sum::<f64>() / n + eps).sqrt()),
    };
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let g = gamma.map_or(1.0, |g| g[i]);
            let b = beta.map_or(0.0, |b| b[i]);
            (v - mean) / denom * g + b
        })
        .collect()
}

/// Every row of a strided `[rows, stride]` input (row `r` at `r * stride`), out contiguous.
pub fn norm_rows(x: &[f64], rows: usize, dim: usize, stride: usize, p: RefParams<'_>) -> Vec<f64> {
    (0..rows)
        .flat_map(|r| norm_row(&x[r * stride..r * stride + dim], p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn layernorm_by_hand() {
        // [1, 2, 3, 4]: mean 2.5, var 1.25.
        let s = 1.25f64.sqrt();
        let want = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
        assert!(close(
            &norm_row(
                &[1.0, 2.0, 3.0, 4.0],
                RefParams::plain(Norm::LayerNorm, 0.0)
            ),
            &want
        ));
        let g = [2.0, 2.0, 1.0, 0.0];
        let b = [0.0, 1.0, 0.0, 5.0];
        let got = norm_row(
            &[1.0, 2.0, 3.0, 4.0],
            RefParams {
                gamma: Some(&g),
                beta: Some(&b),
                norm: Norm::LayerNorm,
                eps: 0.0,
            },
        );
        assert!(close(&got, &[-3.0 / s, 1.0 - 1.0 / s, 0.5 / s, 5.0]));
        // eps: [0, 2] has var 1, so eps 3 gives std 2.
        assert!(close(
            &norm_row(&[0.0, 2.0], RefParams::plain(Norm::LayerNorm, 3.0)),
            &[-0.5, 0.5]
        ));
        // A single element normalizes to 0 (then beta).
        assert!(close(
            &norm_row(
                &[7.0],
                RefParams {
                    beta: Some(&[0.25]),
                    ..RefParams::plain(Norm::LayerNorm, 1e-5)
                }
            ),
            &[0.25]
        ));
    }

    #[test]
    fn rmsnorm_by_hand() {
        // [3, 4]: mean square 12.5.
        let r = 12.5f64.sqrt();
        assert!(close(
            &norm_row(&[3.0, 4.0], RefParams::plain(Norm::RmsNorm, 0.0)),
            &[3.0 / r, 4.0 / r]
        ));
        let got = norm_row(
            &[3.0, 4.0],
            RefParams {
                gamma: Some(&[2.0, -1.0]),
                ..RefParams::plain(Norm::RmsNorm, 0.0)
            },
        );
        assert!(close(&got, &[6.0 / r, -4.0 / r]));
    }

    #[test]
    fn large_mean_is_stable_in_f64() {
        let x: Vec<f64> = (0..128)
            .map(|i| 1e4 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let y = norm_row(&x, RefParams::plain(Norm::LayerNorm, 0.0));
        assert!(
            y.iter()
                .enumerate()
                .all(|(i, v)| (v - if i % 2 == 0 { 1.0 } else { -1.0 }).abs() < 1e-9)
        );
    }

    #[test]
    fn strided_rows() {
        let x = [1.0, 3.0, 99.0, 5.0, 9.0, 99.0];
        let y = norm_rows(&x, 2, 2, 3, RefParams::plain(Norm::LayerNorm, 0.0));
        assert!(close(&y, &[-1.0, 1.0, -1.0, 1.0]));
    }
}
