//! The key and query paths: LayerNorm, RoPE, Hadamard, FP8.

use super::fp8::{Quantized, quantize_row};
use crate::config::{IndexerConfig, RopeStyle};
use dsa_layernorm::Norm;
use dsa_layernorm::cpu::{RefParams, norm_row};

/// Per-token inputs of one indexer call, already rounded to the input dtype.
#[derive(Clone, Copy, Debug)]
pub struct TokenInputs<'a> {
    /// `[T, H, D]` index queries.
    pub q: &'a [f32],
    /// `[T, H]` head weights.
    pub weights: &'a [f32],
    /// `[T, D]` index keys (before the LayerNorm).
    pub k: &'a [f32],
    /// `[D]` LayerNorm weight (`None`: ones).
    pub ln_weight: Option<&'a [f32]>,
    /// `[D]` LayerNorm bias (`None`: zeros).
    pub ln_bias: Option<&'a [f32]>,
    /// `[T]` positions (clamped to the table's rows).
    pub positions: &'a [i64],
    /// `[max_positions, rope_dim]` f32: per position `rope_dim/2` cosines then `rope_dim/2` sines.
    pub cos_sin: &'a [f32],
}

impl TokenInputs<'_> {
    /// Tokens.
    pub fn tokens(&self) -> usize {
        self.positions.len()
    }

    /// The position's row of the RoPE table (`rope_dim` values), positions clamped.
    fn table_row(&self, t: usize, rope_dim: usize) -> &[f32] {
        let rows = self.cos_sin.len() / rope_dim.max(1);
        let pos = self.positions[t].clamp(0, rows.max(1) as i64 - 1) as usize;
        &self.cos_sin[pos * rope_dim..(pos + 1) * rope_dim]
    }
}

/// LayerNorm of one row (population variance, `eps` inside the root).
pub fn layer_norm(x: &[f64], gamma: Option<&[f32]>, beta: Option<&[f32]>, eps: f64) -> Vec<f64> {
    let g: Option<Vec<f64>> = gamma.map(|g| g.iter().map(|&v| v as f64).collect());
    let b: Option<Vec<f64>> = beta.map(|b| b.iter().map(|&v| v as f64).collect());
    let p = RefParams {
        gamma: g.as_deref(),
        beta: b.as_deref(),
        norm: Norm::LayerNorm,
        eps,
    };
    norm_row(x, p)
}

/// RoPE on `x[..table.len()]` with `table = [cos; r/2] ++ [sin; r/2]`: pairs `(j, j + r/2)`
/// (NeoX) or `(2j, 2j+1)` (interleaved) become `(a cos - b sin, b cos + a sin)`.
pub fn rope(x: &mut [f64], table: &[f32], style: RopeStyle) {
    let half = table.len() / 2;
    for j in 0..half {
        let (c, s) = (table[j] as f64, table[half + j] as f64);
        let (i0, i1) = match style {
            RopeStyle::Neox => (j, j + half),
            RopeStyle::Interleaved => (2 * j, 2 * j + 1),
        };
        let (a, b) = (x[i0], x[i1]);
        x[i0] = a * c - b * s;
        x[i1] = b * c + a * s;
    }
}

/// `x @ H_D / sqrt(D)` (Sylvester order; the 1/sqrt(D) is the f32 constant the kernels use).
pub fn hadamard(x: &[f64]) -> Vec<f64> {
    dsa_hadamard::cpu::hadamard_row(x, dsa_hadamard::cpu::default_scale(x.len()) as f64)
}

/// The key path: `FP8(Hadamard(RoPE(LayerNorm(k[t]))))`, one row and scale per token.
pub fn key_path(config: &IndexerConfig, inputs: &TokenInputs) -> Quantized {
    let d = config.dim;
    let mut out = Quantized::default();
    for t in 0..inputs.tokens() {
        let row: Vec<f64> = inputs.k[t * d..(t + 1) * d]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mut x = layer_norm(&row, inputs.ln_weight, inputs.ln_bias, config.eps as f64);
        rope(&mut x, inputs.table_row(t, config.rope_dim), config.rope);
        let (codes, s) = quantize_row(&hadamard(&x), config.scale_format);
        out.push(&codes, s);
    }
    out
}

/// The query path: `q8[t,h] = FP8(Hadamard(RoPE(q[t,h])))` with scale `s[t,h]`, and the folded
/// weights `w'[t,h] = w[t,h] * s[t,h] * H^-0.5 * D^-0.5` (f64, rounded to f32).
pub fn query_path(config: &IndexerConfig, inputs: &TokenInputs) -> (Quantized, Vec<f32>) {
    let (h, d) = (config.heads, config.dim);
    let mut q8 = Quantized::default();
    let mut wq = Vec::with_capacity(inputs.tokens() * h);
    let fold = 1.0 / ((h * d) as f64).sqrt();
    for r in 0..inputs.tokens() * h {
        let mut x: Vec<f64> = inputs.q[r * d..(r + 1) * d]
            .iter()
            .map(|&v| v as f64)
            .collect();
        rope(
            &mut x,
            inputs.table_row(r / h, config.rope_dim),
            config.rope,
        );
        let (codes, s) = quantize_row(&hadamard(&x), config.scale_format);
        q8.push(&codes, s);
        wq.push((inputs.weights[r] as f64 * s as f64 * fold) as f32);
    }
    (q8, wq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::fp8_decode;

    #[test]
    fn rope_by_hand_both_styles() {
        // cos = 0, sin = 1 for j = 0 (a quarter turn); cos = 1, sin = 0 for j = 1.
        let table = [0.0f32, 1.0, 1.0, 0.0];
        let mut x = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        rope(&mut x, &table, RopeStyle::Neox);
        // NeoX pairs (0, 2) turned a quarter: (1, 3) -> (-3, 1); (1, 3) = (2, 4) unchanged.
        assert_eq!(x, vec![-3.0, 2.0, 1.0, 4.0, 5.0]);
        let mut y = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        rope(&mut y, &table, RopeStyle::Interleaved);
        assert_eq!(y, vec![-2.0, 1.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn rope_and_hadamard_preserve_the_norm() {
        let theta = 0.7f64;
        let table = [theta.cos() as f32, 1.0, theta.sin() as f32, 0.0];
        let x: Vec<f64> = (0..8).map(|i| (i as f64 * 0.37).sin()).collect();
        let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>();
        for style in [RopeStyle::Neox, RopeStyle::Interleaved] {
            let mut y = x.clone();
            rope(&mut y, &table, style);
            assert!((norm(&y) - norm(&x)).abs() < 1e-6);
            assert!((norm(&hadamard(&y)) - norm(&y)).abs() < 1e-6);
        }
    }

    #[test]
    fn layer_norm_then_key_path_on_a_constant_plus_ramp() {
        // k = 5 + ramp: the LayerNorm removes the offset, so the Hadamard's DC term is zero,
        // and the orthonormal Hadamard keeps the unit variance (up to FP8 rounding).
        let config = IndexerConfig {
            dim: 64,
            heads: 16,
            rope_dim: 0,
            ..IndexerConfig::default()
        };
        let k: Vec<f32> = (0..64).map(|i| 5.0 + i as f32 * 0.01).collect();
        let inputs = TokenInputs {
            q: &[],
            weights: &[],
            k: &k,
            ln_weight: None,
            ln_bias: None,
            positions: &[0],
            cos_sin: &[],
        };
        let keys = key_path(&config, &inputs);
        assert_eq!(keys.codes.len(), 64);
        assert_eq!(
            keys.codes[0] & 0x7f,
            0,
            "DC term of a zero-mean row is zero"
        );
        let energy: f64 = keys
            .codes
            .iter()
            .map(|&c| (fp8_decode(c) * keys.scales[0] as f64).powi(2))
            .sum();
        assert!(
            (energy / 64.0 - 1.0).abs() < 0.05,
            "unit variance survives: {energy}"
        );
    }

    #[test]
    fn folded_weight_formula() {
        let config = IndexerConfig {
            heads: 16,
            dim: 64,
            rope_dim: 0,
            ..IndexerConfig::default()
        };
        let q: Vec<f32> = (0..16 * 64).map(|i| ((i % 7) as f32 - 3.0) * 0.5).collect();
        let w: Vec<f32> = (0..16).map(|h| h as f32 - 8.0).collect();
        let inputs = TokenInputs {
            q: &q,
            weights: &w,
            k: &[],
            ln_weight: None,
            ln_bias: None,
            positions: &[3],
            cos_sin: &[],
        };
        let (q8, wq) = query_path(&config, &inputs);
        for h in 0..16 {
            let want = w[h] as f64 * q8.scales[h] as f64 / 32.0; // 1/sqrt(16*64)
            assert_eq!(wq[h], want as f32);
        }
    }
}
