//! The whole pipeline: key path into the cache, query path, scores, top-k.

use super::cache::PagedCache;
use super::fp8::Quantized;
use super::paths::{TokenInputs, key_path, query_path};
use super::scores::{KeyRows, PagedKeys, scores_paged, scores_ragged};
use crate::config::IndexerConfig;
use dsa_topk::Transform;
use dsa_topk::cpu::{Inputs, TransformData, topk};

/// What a pipeline call writes (the device call's outputs and workspace contents).
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// The new tokens' quantized keys (also stored in the cache).
    pub keys: Quantized,
    /// `[T*H, D]` quantized queries.
    pub q8: Quantized,
    /// `[T, H]` folded weights.
    pub wq: Vec<f32>,
    /// `[rows, stride]` logits.
    pub logits: Vec<f32>,
    /// `[rows, k]` top-k indices (transformed; -1 pads).
    pub indices: Vec<i32>,
}

/// Prefill's extra inputs: the contiguous key buffer and the per-token key ranges.
#[derive(Clone, Copy, Debug)]
pub struct PrefillInputs<'a> {
    /// `[T]` cache slots of the new keys.
    pub out_cache_loc: &'a [i64],
    /// The contiguous key buffer before the call; the new keys overwrite rows
    /// `new_keys_offset..new_keys_offset + T`.
    pub keys: &'a KeyRows,
    /// First row of the new keys in `keys`.
    pub new_keys_offset: usize,
    /// `[T]` first key of each token.
    pub ks: &'a [i32],
    /// `[T]` end key of each token.
    pub ke: &'a [i32],
    /// `[T]` offsets added to the top-k positions (`None`: the clamped `ks`, giving rows of
    /// the key buffer).
    pub topk_offsets: Option<&'a [i32]>,
    /// Logit row stride (`>=` the key count).
    pub stride: usize,
}

/// Decode's extra inputs: one token per request.
#[derive(Clone, Copy, Debug)]
pub struct DecodeInputs<'a> {
    /// `[B]` cache slots of the new keys.
    pub out_cache_loc: &'a [i64],
    /// `[B, bt_stride]` page ids.
    pub block_table: &'a [i32],
    /// Entries between block-table rows.
    pub bt_stride: usize,
    /// Valid block-table columns.
    pub bt_cols: usize,
    /// `[B]` context lengths (the new token included).
    pub context_lens: &'a [i32],
    /// Logit row stride (the largest context).
    pub stride: usize,
}

/// The prefill reference; updates `cache`.
pub fn prefill(
    config: &IndexerConfig,
    tokens: &TokenInputs,
    extra: &PrefillInputs,
    cache: &mut PagedCache,
) -> Outputs {
    let keys = key_path(config, tokens);
    let mut buffer = extra.keys.clone();
    let d = config.dim;
    for t in 0..tokens.tokens() {
        cache.store(extra.out_cache_loc[t], &keys, t);
        let row = extra.new_keys_offset + t;
        buffer.codes[row * d..(row + 1) * d].copy_from_slice(keys.row(t));
        buffer.scales[row] = keys.scales[t];
    }
    let (q8, wq) = query_path(config, tokens);
    let logits = scores_ragged(
        config.heads,
        &q8,
        &wq,
        &buffer,
        extra.ks,
        extra.ke,
        extra.stride,
    );
    let n = buffer.scales.len() as i32;
    let starts: Vec<i32> = extra.ks.iter().map(|&s| s.clamp(0, n)).collect();
    let lengths: Vec<i32> = (0..starts.len())
        .map(|t| extra.ke[t].clamp(starts[t], n) - starts[t])
        .collect();
    let input = Inputs {
        scores: &logits,
        stride: extra.stride,
        lengths: &lengths,
        row_starts: Some(&starts),
    };
    let offsets = extra.topk_offsets.unwrap_or(&starts);
    let indices = topk(
        &input,
        &config.topk_config(Transform::Ragged),
        &TransformData::Ragged { offsets },
    );
    Outputs {
        keys,
        q8,
        wq,
        logits,
        indices,
    }
}

/// The decode reference; updates `cache`.
pub fn decode(
    config: &IndexerConfig,
    tokens: &TokenInputs,
    extra: &DecodeInputs,
    cache: &mut PagedCache,
) -> Outputs {
    let keys = key_path(config, tokens);
    for (t, &loc) in extra.out_cache_loc.iter().enumerate() {
        cache.store(loc, &keys, t);
    }
    let (q8, wq) = query_path(config, tokens);
    let paged = PagedKeys {
        cache,
        block_table: extra.block_table,
        bt_stride: extra.bt_stride,
        bt_cols: extra.bt_cols,
        context_lens: extra.context_lens,
    };
    let logits = scores_paged(config.heads, &q8, &wq, &paged, extra.stride);
    let batch = extra.context_lens.len();
    let identity: Vec<i32> = (0..batch as i32).collect();
    let input = Inputs {
        scores: &logits,
        stride: extra.stride,
        lengths: extra.context_lens,
        row_starts: None,
    };
    let indices = topk(
        &input,
        &config.topk_config(config.paged_transform()),
        &TransformData::Paged {
            page_table: extra.block_table,
            stride: extra.bt_stride,
            cols: extra.bt_cols,
            num_requests: batch,
            rows_to_requests: &identity,
        },
    );
    Outputs {
        keys,
        q8,
        wq,
        logits,
        indices,
    }
}
