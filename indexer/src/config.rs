//! What the indexer computes: sizes, RoPE style, input dtype, scale format, consistency.

use crate::collective::ConsistencyPolicy;
use crate::error::{IndexerError, Result};
use crate::layout::CacheLayout;
pub use dsa_hadamard::DType;
use dsa_topk::{RequestMap, TopkConfig, Transform};
use std::fmt;

/// Largest `k` supported (the top-k crate's limit).
pub const MAX_K: usize = dsa_topk::MAX_K;
/// Head dims the kernels support (one FP8 scale per key covers at most 128 values).
pub const DIMS: [usize; 2] = [64, 128];
/// Largest `heads * dim` (the query tile a warp keeps in registers).
pub const MAX_QUERY_ELEMS: usize = 64 * 128;

/// How RoPE pairs the rotated dims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RopeStyle {
    /// NeoX / non-interleaved: pairs `(j, j + rope_dim/2)`.
    #[default]
    Neox,
    /// GPT-J / interleaved: pairs `(2j, 2j + 1)`.
    Interleaved,
}

/// How an FP8 scale is rounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ScaleFormat {
    /// `max(amax, 1e-4) / 448` as computed in f32.
    #[default]
    F32,
    /// The same, rounded up to a power of two (DeepSeek's `ue8m0` scale format).
    Pow2,
}

impl fmt::Display for ScaleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScaleFormat::F32 => "f32",
            ScaleFormat::Pow2 => "pow2",
        })
    }
}

/// Everything that defines the indexer's result besides the data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndexerConfig {
    /// Index heads `H` (a multiple of 16, `H * D <= 8192`). Default 64.
    pub heads: usize,
    /// Head dim `D` (64 or 128). Default 128.
    pub dim: usize,
    /// Leading dims that get RoPE (`0..=D`, a multiple of `D / 16`). Default 64.
    pub rope_dim: usize,
    /// RoPE pairing. Default NeoX.
    pub rope: RopeStyle,
    /// Tokens per page of the index-key cache (a power of two, at least 4 so every page
    /// starts 16-byte aligned). Default 64.
    pub page_size: usize,
    /// Keys kept per query token (`1..=4096`). Default 2048.
    pub k: usize,
    /// Element type of `q`, `k`, and the LayerNorm weight and bias. Default bf16.
    pub input: DType,
    /// Epsilon of the key LayerNorm. Default 1e-6.
    pub eps: f32,
    /// FP8 scale rounding (keys and queries). Default f32.
    pub scale_format: ScaleFormat,
    /// Cross-rank consistency of the selected indices. Default none.
    pub policy: ConsistencyPolicy,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            heads: 64,
            dim: 128,
            rope_dim: 64,
            rope: RopeStyle::Neox,
            page_size: 64,
            k: 2048,
            input: DType::Bf16,
            eps: 1e-6,
            scale_format: ScaleFormat::F32,
            policy: ConsistencyPolicy::None,
        }
    }
}

impl IndexerConfig {
    /// Checks every field against what the kernels support.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(IndexerError::Config(m));
        if !DIMS.contains(&self.dim) {
            return bad(format!("dim {} is not one of {DIMS:?}", self.dim));
        }
        if self.heads == 0 || self.heads % 16 != 0 || self.heads * self.dim > MAX_QUERY_ELEMS {
            return bad(format!(
                "heads {} must be a positive multiple of 16 with heads * dim <= {MAX_QUERY_ELEMS}",
                self.heads
            ));
        }
        let pair = self.dim / 16;
        if self.rope_dim > self.dim || self.rope_dim % pair != 0 {
            return bad(format!(
                "rope_dim {} must be a multiple of {pair} in 0..={}",
                self.rope_dim, self.dim
            ));
        }
        if !self.page_size.is_power_of_two() || !(4..=1 << 20).contains(&self.page_size) {
            return bad(format!(
                "page size {} is not a power of two in 4..=2^20 (pages must stay 16-byte aligned)",
                self.page_size
            ));
        }
        if self.k == 0 || self.k > MAX_K {
            return bad(format!("k = {} is outside 1..={MAX_K}", self.k));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return bad(format!("eps {} must be finite and non-negative", self.eps));
        }
        Ok(())
    }

    /// The paged index-key cache geometry.
    pub fn cache_layout(&self) -> CacheLayout {
        CacheLayout {
            page_size: self.page_size,
            dim: self.dim,
        }
    }

    /// The top-k every stage and the reference use: `k`, f32 scores, ties to the smaller
    /// index, ascending index order, with `transform` fused.
    pub fn topk_config(&self, transform: Transform) -> TopkConfig {
        TopkConfig::new(self.k).transform(transform)
    }

    /// The decode top-k's transform: paged, one row per request.
    pub fn paged_transform(&self) -> Transform {
        Transform::Paged {
            page_size: self.page_size as u32,
            requests: RequestMap::PerRow,
        }
    }

    /// The folded weight's constant factor, `H^-0.5 * D^-0.5` rounded to f32.
    pub fn weight_scale(&self) -> f32 {
        (1.0 / ((self.heads * self.dim) as f64).sqrt()) as f32
    }

    /// Whether scales are rounded up to powers of two.
    pub fn pow2(&self) -> bool {
        self.scale_format == ScaleFormat::Pow2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_deepseek_v32_and_valid() {
        let c = IndexerConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(
            (c.heads, c.dim, c.rope_dim, c.page_size, c.k),
            (64, 128, 64, 64, 2048)
        );
        assert_eq!(c.cache_layout().page_bytes(), 64 * 132);
        assert_eq!(c.weight_scale(), (1.0f64 / 8192f64.sqrt()) as f32);
    }

    #[test]
    fn unsupported_values_are_config_errors() {
        let base = IndexerConfig::default();
        let cases = [
            IndexerConfig { dim: 96, ..base },
            IndexerConfig { heads: 24, ..base },
            IndexerConfig { heads: 128, ..base },
            IndexerConfig {
                rope_dim: 66,
                ..base
            },
            IndexerConfig {
                rope_dim: 136,
                ..base
            },
            IndexerConfig {
                page_size: 48,
                ..base
            },
            IndexerConfig {
                page_size: 2,
                ..base
            },
            IndexerConfig { k: 0, ..base },
            IndexerConfig { k: 5000, ..base },
            IndexerConfig {
                eps: f32::NAN,
                ..base
            },
        ];
        for c in cases {
            assert!(
                matches!(c.validate(), Err(IndexerError::Config(_))),
                "{c:?}"
            );
        }
        let glm = IndexerConfig { heads: 32, ..base };
        assert!(glm.validate().is_ok());
        let small = IndexerConfig {
            heads: 128,
            dim: 64,
            rope_dim: 0,
            page_size: 4,
            ..base
        };
        assert!(small.validate().is_ok());
    }
}
