//! The indexer's C types: enums, the config, shapes, plan info and device arguments, with
//! their conversions to the Rust API's types.

use crate::check::{enum_value, size};
use crate::status::{FfiError, FfiResult};
use dsa_indexer::collective::ConsistencyPolicy;
use dsa_indexer::{
    DType, DecodeShape, Indexer, IndexerConfig, PrefillShape, RopeStyle, ScaleFormat,
};
use std::ffi::c_void;

/// How RoPE pairs the rotated dims.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaRopeStyle {
    /// NeoX / non-interleaved: pairs `(j, j + rope_dim/2)` (0, the default).
    Neox = 0,
    /// GPT-J / interleaved: pairs `(2j, 2j + 1)`.
    Interleaved = 1,
}

/// How an FP8 scale is rounded.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaScaleFormat {
    /// `max(amax, 1e-4) / 448` in f32 (0, the default).
    F32 = 0,
    /// The same rounded up to a power of two (DeepSeek's `ue8m0`).
    Pow2 = 1,
}

/// What the indexer does after top-k to keep tensor-parallel ranks consistent.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaConsistencyPolicy {
    /// No collective (0, the default); `comm` may be NULL.
    None = 0,
    /// Per-row fingerprints compared across ranks; read the result with `dsa_collective_check`
    /// on the plan's verify region (`DsaIndexerPlanInfo::verify_offset`).
    Verify = 1,
    /// Every rank takes rank 0's indices (in place).
    Broadcast = 2,
    /// Verify, then broadcast.
    VerifyThenBroadcast = 3,
}

/// Which call a plan is for.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsaIndexerPlanKind {
    /// `dsa_indexer_prefill`.
    Prefill = 0,
    /// `dsa_indexer_decode`.
    Decode = 1,
}

/// What the indexer computes besides the data. Zero is not a valid config: start from
/// `dsa_indexer_config_default` (DeepSeek-V3.2's values) and change fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DsaIndexerConfig {
    /// Index heads `H`: a multiple of 16 with `H * D <= 8192` (default 64).
    pub heads: i32,
    /// Head dim `D`: 64 or 128 (default 128).
    pub dim: i32,
    /// Leading dims that get RoPE: `0..=D`, a multiple of `D / 16` (default 64; 0: no RoPE).
    pub rope_dim: i32,
    /// Tokens per page of the index-key cache: a power of two in `4..=2^20` (default 64).
    pub page_size: i32,
    /// Keys kept per query token, `1..=4096` (default 2048).
    pub k: i32,
    /// dtype of `q`, `k` and the LayerNorm weight and bias: `DSA_DTYPE_F32`, `DSA_DTYPE_BF16`
    /// (default) or `DSA_DTYPE_F16`.
    pub input_dtype: i32,
    /// A `DsaRopeStyle`.
    pub rope_style: i32,
    /// A `DsaScaleFormat` (keys and queries).
    pub scale_format: i32,
    /// A `DsaConsistencyPolicy`.
    pub policy: i32,
    /// Epsilon of the key LayerNorm, finite and `>= 0` (default 1e-6).
    pub eps: f32,
}

impl DsaIndexerConfig {
    pub(super) fn of(c: &IndexerConfig) -> Self {
        let i = |v: usize| v as i32;
        DsaIndexerConfig {
            heads: i(c.heads),
            dim: i(c.dim),
            rope_dim: i(c.rope_dim),
            page_size: i(c.page_size),
            k: i(c.k),
            input_dtype: match c.input {
                DType::F32 => crate::DsaDtype::F32,
                DType::Bf16 => crate::DsaDtype::Bf16,
                DType::F16 => crate::DsaDtype::F16,
            } as i32,
            rope_style: match c.rope {
                RopeStyle::Neox => DsaRopeStyle::Neox,
                RopeStyle::Interleaved => DsaRopeStyle::Interleaved,
            } as i32,
            scale_format: match c.scale_format {
                ScaleFormat::F32 => DsaScaleFormat::F32,
                ScaleFormat::Pow2 => DsaScaleFormat::Pow2,
            } as i32,
            policy: ConsistencyPolicy::ALL
                .iter()
                .position(|p| *p == c.policy)
                .unwrap_or(0) as i32,
            eps: c.eps,
        }
    }

    /// The validated indexer.
    pub(super) fn to_rust(self) -> FfiResult<Indexer> {
        let config = IndexerConfig {
            heads: size("config.heads", self.heads as i64)?,
            dim: size("config.dim", self.dim as i64)?,
            rope_dim: size("config.rope_dim", self.rope_dim as i64)?,
            page_size: size("config.page_size", self.page_size as i64)?,
            k: size("config.k", self.k as i64)?,
            input: crate::float_dtype(
                "config.input_dtype",
                self.input_dtype,
                [DType::F32, DType::Bf16, DType::F16],
            )?,
            rope: enum_value("config.rope_style", self.rope_style, |v| match v {
                0 => Some(RopeStyle::Neox),
                1 => Some(RopeStyle::Interleaved),
                _ => None,
            })?,
            scale_format: enum_value("config.scale_format", self.scale_format, |v| match v {
                0 => Some(ScaleFormat::F32),
                1 => Some(ScaleFormat::Pow2),
                _ => None,
            })?,
            policy: enum_value("config.policy", self.policy, |v| {
                usize::try_from(v)
                    .ok()
                    .and_then(|i| ConsistencyPolicy::ALL.get(i).copied())
            })?,
            eps: self.eps,
        };
        Ok(Indexer::new(config)?)
    }
}

/// Sizes of a prefill call (host-known; the data never is read on the host).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaIndexerPrefillShape {
    /// New tokens `T` (queries, and keys written to the cache); 0 allowed.
    pub tokens: i64,
    /// Rows `S` of the contiguous key buffer the scores read (`>= T`).
    pub num_keys: i64,
    /// Elements between logit rows (`>= max(S, 1)`), or 0 for `max(S, 1)`.
    pub stride: i64,
    /// Rows of the RoPE table (`>= 1` unless `rope_dim` is 0).
    pub max_positions: i64,
    /// Pages of the index-key cache.
    pub cache_pages: i64,
}

/// Sizes of a decode step (one query token per request).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaIndexerDecodeShape {
    /// Requests `B`; 0 allowed.
    pub batch: i64,
    /// Elements between logit rows: the largest context length the step serves (`>= 1`).
    pub stride: i64,
    /// `int32` entries between block-table rows (`>= 1`); the first
    /// `min(bt_stride, ceil(stride / page_size))` columns are read.
    pub bt_stride: i64,
    /// Rows of the RoPE table (`>= 1` unless `rope_dim` is 0).
    pub max_positions: i64,
    /// Pages of the index-key cache (a block-table entry outside `[0, cache_pages)` scores -inf).
    pub cache_pages: i64,
}

/// What a plan needs and produces, all known on the host (see `dsa_indexer_plan_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsaIndexerPlanInfo {
    /// Device workspace bytes a call needs (16-byte aligned base).
    pub workspace_bytes: usize,
    /// The logits' shape `[rows, stride]` (f32, rows `stride` apart).
    pub logits_shape: [i64; 2],
    /// The indices' shape `[rows, k]` (int32, contiguous).
    pub indices_shape: [i64; 2],
    /// Decode: block-table columns read per request; prefill: 0.
    pub bt_cols: i64,
    /// Byte offset in the workspace of the `[rows, H, D]` FP8 queries.
    pub q_fp8_offset: usize,
    /// Byte offset in the workspace of the `[rows, H]` f32 folded weights.
    pub weights_offset: usize,
    /// Byte offset in the workspace of the verify region (pass `workspace + verify_offset`,
    /// `verify_bytes` and `rows` to `dsa_collective_check` after a verifying policy).
    pub verify_offset: usize,
    /// Bytes of the verify region (0 unless the policy verifies and rows > 0).
    pub verify_bytes: usize,
    /// A `DsaIndexerPlanKind`.
    pub kind: i32,
}

/// Per-token device inputs of a call (`T` tokens: prefill's new tokens, or decode's one token
/// per request) and the cache. Every pointer is a device address on the stream's device.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DsaIndexerTokens {
    /// Device, `[T, H, D]` index queries of the input dtype, aligned to its element.
    pub q: *const c_void,
    /// Device, `[T, H]` f32 head weights.
    pub weights: *const c_void,
    /// Device, `[T, D]` index keys (before the LayerNorm) of the input dtype.
    pub k: *const c_void,
    /// Device, `[D]` LayerNorm weight of the input dtype, or NULL for ones.
    pub ln_weight: *const c_void,
    /// Device, `[D]` LayerNorm bias of the input dtype, or NULL for zeros.
    pub ln_bias: *const c_void,
    /// Device, `[T]` int64 positions (clamped on the device to the RoPE table).
    pub positions: *const c_void,
    /// Device, `[max_positions, rope_dim]` f32 RoPE table (`rope_dim/2` cosines then
    /// `rope_dim/2` sines per position, sglang's `cos_sin_cache`); may be NULL when `rope_dim`
    /// is 0.
    pub cos_sin: *const c_void,
    /// Device, `[T]` int64 cache slot of each new key (negative or past the cache: not stored).
    pub out_cache_loc: *const c_void,
    /// Device, the paged index-key cache, 16-byte aligned: `cache_pages` pages of
    /// `page_size * (D + 4)` bytes, each `page_size` keys of `D` e4m3 bytes then `page_size`
    /// f32 scales (sglang's `index_k_with_scale_buffer`). Written at the new keys' slots.
    pub cache: *mut c_void,
}

/// Device buffers of one prefill call (`T` tokens, `S` keys; shapes from the plan).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DsaIndexerPrefillArgs {
    /// Per-token inputs and the cache.
    pub tokens: DsaIndexerTokens,
    /// Device, `[S, D]` e4m3 contiguous key buffer, 16-byte aligned. The call writes the new
    /// keys at rows `new_keys_offset .. new_keys_offset + T`; the caller fills the others.
    pub keys_fp8: *mut c_void,
    /// Device, `[S]` f32 scales of the key buffer (rows as `keys_fp8`).
    pub keys_scale: *mut c_void,
    /// First row of the new keys in the key buffer (`>= 0`, `+ T <= S`).
    pub new_keys_offset: i64,
    /// Device, `[T]` int32 first key of each token's range (clamped to `[0, S]`).
    pub ks: *const c_void,
    /// Device, `[T]` int32 end of each token's range, exclusive (clamped to `[ks, S]`).
    pub ke: *const c_void,
    /// Device, `[T]` int32 offsets added to each selected position `j` (counted from the
    /// clamped `ks`: key row `ks + j`), or NULL for the clamped `ks` itself (indices are then
    /// rows of the key buffer).
    pub topk_offsets: *const c_void,
    /// Device, `[T, stride]` f32 logits out (`-inf` outside each token's range).
    pub logits: *mut c_void,
    /// Device, `[T, k]` int32 indices out: `j + offset` in ascending `j`, -1 pads.
    pub indices: *mut c_void,
    /// Device workspace of `dsa_indexer_plan_workspace_bytes` bytes, 16-byte aligned; needs no
    /// initialisation; not shared by calls that may run concurrently.
    pub workspace: *mut c_void,
    /// Size of `workspace` in bytes.
    pub workspace_bytes: usize,
}

/// Device buffers of one decode step (`B` requests; shapes from the plan).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DsaIndexerDecodeArgs {
    /// Per-token inputs (one token per request) and the cache.
    pub tokens: DsaIndexerTokens,
    /// Device, `[B, bt_stride]` int32 page ids of each request.
    pub block_table: *const c_void,
    /// Device, `[B]` int32 context lengths, the new token included (clamped to
    /// `[0, min(stride, bt_cols * page_size)]`).
    pub context_lens: *const c_void,
    /// Device, `[B, stride]` f32 logits out (`-inf` past each context).
    pub logits: *mut c_void,
    /// Device, `[B, k]` int32 indices out: cache slots `page * page_size + offset`, ascending
    /// position, -1 pads.
    pub indices: *mut c_void,
    /// Device workspace of `dsa_indexer_plan_workspace_bytes` bytes, 16-byte aligned.
    pub workspace: *mut c_void,
    /// Size of `workspace` in bytes.
    pub workspace_bytes: usize,
}

pub(super) fn prefill_shape(s: &DsaIndexerPrefillShape) -> FfiResult<PrefillShape> {
    let num_keys = size("shape.num_keys", s.num_keys)?;
    let tokens = size("shape.tokens", s.tokens)?;
    if tokens > num_keys {
        return Err(FfiError::invalid(format!(
            "shape.tokens = {tokens} new keys do not fit in shape.num_keys = {num_keys}"
        )));
    }
    Ok(PrefillShape {
        tokens,
        num_keys,
        stride: match size("shape.stride", s.stride)? {
            0 => num_keys.max(1),
            v => v,
        },
        max_positions: size("shape.max_positions", s.max_positions)?,
        cache_pages: size("shape.cache_pages", s.cache_pages)?,
    })
}

pub(super) fn decode_shape(s: &DsaIndexerDecodeShape) -> FfiResult<DecodeShape> {
    Ok(DecodeShape {
        batch: size("shape.batch", s.batch)?,
        stride: size("shape.stride", s.stride)?,
        bt_stride: size("shape.bt_stride", s.bt_stride)?,
        max_positions: size("shape.max_positions", s.max_positions)?,
        cache_pages: size("shape.cache_pages", s.cache_pages)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_round_trips_and_enums_match_rust_order() {
        let c = DsaIndexerConfig::of(&IndexerConfig::default());
        assert_eq!(
            c.to_rust().unwrap().config(),
            &IndexerConfig::default(),
            "{c:?}"
        );
        for (i, p) in ConsistencyPolicy::ALL.iter().enumerate() {
            let cfg = IndexerConfig {
                policy: *p,
                ..IndexerConfig::default()
            };
            let d = DsaIndexerConfig::of(&cfg);
            assert_eq!(d.policy, i as i32);
            assert_eq!(d.to_rust().unwrap().config().policy, *p);
        }
        assert_eq!(DsaConsistencyPolicy::VerifyThenBroadcast as usize, 3);
    }
}
