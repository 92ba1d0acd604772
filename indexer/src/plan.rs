//! Planning: launch shapes and the workspace from host-known sizes only.

use crate::collective::ConsistencyPolicy;
use crate::config::IndexerConfig;
use crate::error::{IndexerError, Result};
use crate::scores::ColumnSplit;
use dsa_jit_cache::DeviceInfo;
use dsa_topk::{TopkPlan, Transform, Tuning};

/// Sizes of a prefill call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefillShape {
    /// New tokens `T` (queries, and keys written to the cache).
    pub tokens: usize,
    /// Rows `S` of the contiguous key buffer the scores read.
    pub num_keys: usize,
    /// Logit row stride (`>= max(S, 1)`).
    pub stride: usize,
    /// Rows of the RoPE table.
    pub max_positions: usize,
    /// Pages of the index-key cache.
    pub cache_pages: usize,
}

/// Sizes of a decode step (one query token per request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeShape {
    /// Requests `B`.
    pub batch: usize,
    /// Logit row stride: the largest context length the step serves (`>= 1`).
    pub stride: usize,
    /// Entries between block-table rows; the first `min(bt_stride, ceil(stride / P))` columns
    /// are used.
    pub bt_stride: usize,
    /// Rows of the RoPE table.
    pub max_positions: usize,
    /// Pages of the index-key cache.
    pub cache_pages: usize,
}

/// Byte offsets of the regions of an indexer workspace (all 16-byte aligned).
///
/// | region | contents |
/// | --- | --- |
/// | `q_fp8` | `[rows, H, D]` u8 quantized queries |
/// | `weights` | `[rows, H]` f32 folded weights |
/// | `row_info` | `[rows]` i32: prefill the clamped `ks`; decode the identity request map |
/// | `lengths` | `[rows]` i32 prefill range lengths (empty for decode) |
/// | `topk` | the top-k plan's workspace |
/// | `verify` | the collective verify workspace (empty unless the policy verifies) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkspaceRegions {
    /// Quantized queries.
    pub q_fp8: usize,
    /// Folded weights.
    pub weights: usize,
    /// Per-row i32 (starts or request map).
    pub row_info: usize,
    /// Per-row i32 lengths (prefill).
    pub lengths: usize,
    /// Top-k workspace.
    pub topk: usize,
    /// Verify workspace.
    pub verify: usize,
    /// Total bytes.
    pub total: usize,
}

impl WorkspaceRegions {
    fn new(
        config: &IndexerConfig,
        rows: usize,
        with_lengths: bool,
        topk: usize,
        policy: ConsistencyPolicy,
    ) -> Self {
        let a16 = |n: usize| n.div_ceil(16) * 16;
        let q_fp8 = 0;
        let weights = a16(rows * config.heads * config.dim);
        let row_info = weights + a16(rows * config.heads * 4);
        let lengths = row_info + a16(rows * 4);
        let topk_at = lengths + if with_lengths { a16(rows * 4) } else { 0 };
        let verify = topk_at + a16(topk);
        let verify_bytes = if rows > 0 {
            policy.workspace_bytes(rows)
        } else {
            0
        };
        WorkspaceRegions {
            q_fp8,
            weights,
            row_info,
            lengths,
            topk: topk_at,
            verify,
            total: verify + a16(verify_bytes),
        }
    }
}

/// A planned prefill call; see [`crate::PrefillArgs`] for the launch.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefillPlan {
    pub(crate) config: IndexerConfig,
    pub(crate) shape: PrefillShape,
    pub(crate) split: ColumnSplit,
    pub(crate) topk: TopkPlan,
    pub(crate) regions: WorkspaceRegions,
}

/// A planned decode step; see [`crate::DecodeArgs`] for the launch.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodePlan {
    pub(crate) config: IndexerConfig,
    pub(crate) shape: DecodeShape,
    pub(crate) bt_cols: usize,
    pub(crate) split: ColumnSplit,
    pub(crate) topk: TopkPlan,
    pub(crate) regions: WorkspaceRegions,
}

fn check_positions(config: &IndexerConfig, max_positions: usize) -> Result<()> {
    if config.rope_dim > 0 && max_positions == 0 {
        return Err(IndexerError::Shape("the RoPE table has no rows".into()));
    }
    Ok(())
}

impl PrefillPlan {
    pub(crate) fn new(
        config: IndexerConfig,
        shape: PrefillShape,
        device: &DeviceInfo,
    ) -> Result<Self> {
        check_positions(&config, shape.max_positions)?;
        if shape.stride < shape.num_keys.max(1) {
            return Err(IndexerError::Shape(format!(
                "logit stride {} is smaller than the {} keys",
                shape.stride, shape.num_keys
            )));
        }
        let topk = TopkPlan::new(
            config.topk_config(Transform::Ragged),
            shape.tokens,
            shape.stride,
            device,
            Tuning::default(),
        )?;
        let regions = WorkspaceRegions::new(
            &config,
            shape.tokens,
            true,
            topk.workspace_bytes(),
            config.policy,
        );
        Ok(PrefillPlan {
            config,
            shape,
            split: ColumnSplit::prefill(&config, shape.tokens, shape.stride, device),
            topk,
            regions,
        })
    }

    /// The shape planned for.
    pub fn shape(&self) -> &PrefillShape {
        &self.shape
    }
    /// Workspace bytes a call needs (16-byte aligned base).
    pub fn workspace_bytes(&self) -> usize {
        self.regions.total
    }
    /// Where each intermediate lives in the workspace.
    pub fn regions(&self) -> &WorkspaceRegions {
        &self.regions
    }
    /// `[T, stride]` f32 logits.
    pub fn logits_shape(&self) -> [usize; 2] {
        [self.shape.tokens, self.shape.stride]
    }
    /// `[T, k]` i32 indices.
    pub fn indices_shape(&self) -> [usize; 2] {
        self.topk.output_shape()
    }
    /// The scores kernel's column split.
    pub fn split(&self) -> ColumnSplit {
        self.split
    }
}

impl DecodePlan {
    pub(crate) fn new(
        config: IndexerConfig,
        shape: DecodeShape,
        device: &DeviceInfo,
    ) -> Result<Self> {
        check_positions(&config, shape.max_positions)?;
        let bt_cols = shape.bt_stride.min(shape.stride.div_ceil(config.page_size));
        if shape.stride == 0 || bt_cols == 0 {
            return Err(IndexerError::Shape(format!(
                "decode stride {} and block-table stride {} must be positive",
                shape.stride, shape.bt_stride
            )));
        }
        let topk = TopkPlan::new(
            config.topk_config(config.paged_transform()),
            shape.batch,
            shape.stride,
            device,
            Tuning::default(),
        )?;
        let regions = WorkspaceRegions::new(
            &config,
            shape.batch,
            false,
            topk.workspace_bytes(),
            config.policy,
        );
        Ok(DecodePlan {
            config,
            shape,
            bt_cols,
            split: ColumnSplit::decode(shape.batch, shape.stride, device),
            topk,
            regions,
        })
    }

    /// The shape planned for.
    pub fn shape(&self) -> &DecodeShape {
        &self.shape
    }
    /// Block-table columns used per request.
    pub fn bt_cols(&self) -> usize {
        self.bt_cols
    }
    /// Workspace bytes a step needs (16-byte aligned base).
    pub fn workspace_bytes(&self) -> usize {
        self.regions.total
    }
    /// Where each intermediate lives in the workspace.
    pub fn regions(&self) -> &WorkspaceRegions {
        &self.regions
    }
    /// `[B, stride]` f32 logits.
    pub fn logits_shape(&self) -> [usize; 2] {
        [self.shape.batch, self.shape.stride]
    }
    /// `[B, k]` i32 indices (cache slots, -1 pads).
    pub fn indices_shape(&self) -> [usize; 2] {
        self.topk.output_shape()
    }
    /// The scores kernel's column split.
    pub fn split(&self) -> ColumnSplit {
        self.split
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_aligned_disjoint_and_sized() {
        let c = IndexerConfig {
            policy: ConsistencyPolicy::Verify,
            ..IndexerConfig::default()
        };
        let r = WorkspaceRegions::new(&c, 3, true, 100, c.policy);
        assert_eq!(r.weights, 3 * 64 * 128);
        assert_eq!(r.row_info, r.weights + 3 * 64 * 4);
        assert_eq!(r.lengths, r.row_info + 16);
        assert_eq!(r.topk, r.lengths + 16);
        assert_eq!(r.verify, r.topk + 112);
        assert!(r.total >= r.verify + c.policy.workspace_bytes(3));
        for off in [r.weights, r.row_info, r.lengths, r.topk, r.verify, r.total] {
            assert_eq!(off % 16, 0);
        }
        let none = WorkspaceRegions::new(&c, 0, false, 0, ConsistencyPolicy::None);
        assert_eq!(none.total, 0);
    }

    #[test]
    fn plans_know_their_shapes_without_a_gpu() {
        let dev = DeviceInfo::H100;
        let c = IndexerConfig::default();
        let d = DecodePlan::new(
            c,
            DecodeShape {
                batch: 64,
                stride: 65536,
                bt_stride: 1100,
                max_positions: 1 << 17,
                cache_pages: 70000,
            },
            &dev,
        )
        .unwrap();
        assert_eq!(d.bt_cols(), 1024);
        assert_eq!(d.logits_shape(), [64, 65536]);
        assert_eq!(d.indices_shape(), [64, 2048]);
        assert!(d.workspace_bytes() >= 64 * 64 * 132);
        let p = PrefillPlan::new(
            c,
            PrefillShape {
                tokens: 19,
                num_keys: 300,
                stride: 301,
                max_positions: 4096,
                cache_pages: 8,
            },
            &dev,
        )
        .unwrap();
        assert_eq!(p.indices_shape(), [19, 2048]);
        let bad = PrefillShape {
            tokens: 1,
            num_keys: 10,
            stride: 9,
            max_positions: 1,
            cache_pages: 1,
        };
        assert!(PrefillPlan::new(c, bad, &dev).is_err());
        let no_table = DecodeShape {
            batch: 1,
            stride: 8,
            bt_stride: 1,
            max_positions: 0,
            cache_pages: 1,
        };
        assert!(DecodePlan::new(c, no_table, &dev).is_err());
    }
}
