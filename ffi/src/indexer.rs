//! The whole lightning indexer (key path, query path, FP8 scores, top-k, then the consistency
//! policy) as one call: an opaque plan made once per shape, then launched on the caller's stream.
//!
//! Contract (see `dsa_indexer`'s crate docs): per token, `LayerNorm -> RoPE -> Hadamard -> FP8`
//! for the key (stored in the paged index-key cache, and for prefill also in a contiguous key
//! buffer) and per (token, head) for the query; `logit[t,s] = Σ_h w'[t,h] ·
//! relu(dot(q8[t,h], k8[s]) · s_k[s])`; top-k `k` per row, ties to the smaller index, in
//! ascending index, with the fused ragged (prefill) or paged (decode) transform.

use crate::check::{device_ptr, enum_value, host_out, host_ref, size, write_out};
use crate::collective::{DsaComm, comm_opt};
use crate::context::{DsaDeviceInfo, DsaStream, borrow_stream, device_info};
use crate::status::{DsaStatus, FfiError, FfiResult, guard};
use dsa_indexer::collective::{Communicator, ConsistencyPolicy};
use dsa_indexer::{
    DType, DecodeArgs, DecodePlan, DecodeShape, Indexer, IndexerConfig, IndexerError, PrefillArgs,
    PrefillPlan, PrefillShape, RopeStyle, ScaleFormat, TokenArgs,
};
use dsa_jit_cache::DeviceInfo;
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
    fn of(c: &IndexerConfig) -> Self {
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
    fn to_rust(self) -> FfiResult<Indexer> {
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

enum Planned {
    Prefill(PrefillPlan),
    Decode(DecodePlan),
}

/// An opaque indexer plan (prefill or decode): every launch fixed from host-known sizes.
/// Thread-safe to share for calls on different streams, each with its own workspace.
pub struct DsaIndexerPlan {
    plan: Planned,
    config: IndexerConfig,
    /// The device it was planned for, or `None` when planned from a hand-written description.
    device: Option<usize>,
}

impl From<IndexerError> for FfiError {
    fn from(e: IndexerError) -> Self {
        use IndexerError as I;
        match e {
            I::Topk(t) => t.into(),
            I::Collective(c) => c.into(),
            I::Jit(j) => j.into(),
            I::Driver { .. } => FfiError::new(DsaStatus::Cuda, e.to_string()),
            _ => FfiError::invalid(e.to_string()),
        }
    }
}

fn prefill_shape(s: &DsaIndexerPrefillShape) -> FfiResult<PrefillShape> {
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

fn decode_shape(s: &DsaIndexerDecodeShape) -> FfiResult<DecodeShape> {
    Ok(DecodeShape {
        batch: size("shape.batch", s.batch)?,
        stride: size("shape.stride", s.stride)?,
        bt_stride: size("shape.bt_stride", s.bt_stride)?,
        max_positions: size("shape.max_positions", s.max_positions)?,
        cache_pages: size("shape.cache_pages", s.cache_pages)?,
    })
}

/// Validate the host arguments, plan for an H100 description (no device touched), then for the
/// real device, and hand out the plan.
fn create(
    config: *const DsaIndexerConfig,
    plan: impl Fn(&Indexer, &DeviceInfo) -> FfiResult<Planned>,
    device: Option<usize>,
    info: impl FnOnce() -> FfiResult<DeviceInfo>,
    plan_out: *mut *mut DsaIndexerPlan,
) -> FfiResult<()> {
    // SAFETY: a non-null `config` points to a DsaIndexerConfig (documented).
    let indexer = unsafe { host_ref("config", config) }?.to_rust()?;
    plan(&indexer, &DeviceInfo::H100)?;
    let planned = plan(&indexer, &info()?)?;
    let handle = Box::into_raw(Box::new(DsaIndexerPlan {
        plan: planned,
        config: *indexer.config(),
        device,
    }));
    // SAFETY: `plan_out` is non-null and aligned (checked); the caller vouches it is writable.
    unsafe { write_out("plan_out", plan_out, handle) }
}

fn prefill_planner(
    shape: *const DsaIndexerPrefillShape,
) -> FfiResult<impl Fn(&Indexer, &DeviceInfo) -> FfiResult<Planned>> {
    // SAFETY: a non-null `shape` points to a DsaIndexerPrefillShape (documented).
    let shape = prefill_shape(unsafe { host_ref("shape", shape) }?)?;
    Ok(move |ix: &Indexer, d: &DeviceInfo| Ok(Planned::Prefill(ix.plan_prefill(shape, d)?)))
}

fn decode_planner(
    shape: *const DsaIndexerDecodeShape,
) -> FfiResult<impl Fn(&Indexer, &DeviceInfo) -> FfiResult<Planned>> {
    // SAFETY: a non-null `shape` points to a DsaIndexerDecodeShape (documented).
    let shape = decode_shape(unsafe { host_ref("shape", shape) }?)?;
    Ok(move |ix: &Indexer, d: &DeviceInfo| Ok(Planned::Decode(ix.plan_decode(shape, d)?)))
}

/// Fill `config_out` (host pointer to one `DsaIndexerConfig`) with the defaults of
/// DeepSeek-V3.2: 64 heads of dim 128, RoPE on 64 dims (NeoX), pages of 64 tokens, k = 2048,
/// bf16 inputs, eps 1e-6, f32 scales, no consistency policy. Host only.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_config_default(config_out: *mut DsaIndexerConfig) -> DsaStatus {
    guard("dsa_indexer_config_default", || {
        let c = DsaIndexerConfig::of(&IndexerConfig::default());
        // SAFETY: checked non-null and aligned inside; the caller vouches it is writable.
        unsafe { write_out("config_out", config_out, c) }
    })
}

/// Plan a prefill call for CUDA device `device_ordinal`. Reads the device's facts; launches
/// nothing.
///
/// - `config`: host pointer to one `DsaIndexerConfig`; `shape`: host pointer to one
///   `DsaIndexerPrefillShape`.
/// - `plan_out`: host pointer; receives a new plan to free with `dsa_indexer_plan_destroy`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_prefill_plan_create(
    config: *const DsaIndexerConfig,
    shape: *const DsaIndexerPrefillShape,
    device_ordinal: i32,
    plan_out: *mut *mut DsaIndexerPlan,
) -> DsaStatus {
    guard("dsa_indexer_prefill_plan_create", || {
        let ordinal = size("device_ordinal", device_ordinal as i64)?;
        host_out("plan_out", plan_out)?;
        let planner = prefill_planner(shape)?;
        create(
            config,
            planner,
            Some(ordinal),
            || device_info(ordinal),
            plan_out,
        )
    })
}

/// As `dsa_indexer_prefill_plan_create`, for a device described by `device` (e.g. from
/// `dsa_device_info`, or written by hand to plan without a GPU). Host only.
///
/// - `device`: host pointer to one `DsaDeviceInfo`; its `ordinal` (or -1) is the device whose
///   primary context a NULL stream falls back to.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_prefill_plan_create_for(
    config: *const DsaIndexerConfig,
    shape: *const DsaIndexerPrefillShape,
    device: *const DsaDeviceInfo,
    plan_out: *mut *mut DsaIndexerPlan,
) -> DsaStatus {
    guard("dsa_indexer_prefill_plan_create_for", || {
        // SAFETY: a non-null `device` points to a DsaDeviceInfo (documented).
        let d = *unsafe { host_ref("device", device) }?;
        host_out("plan_out", plan_out)?;
        let planner = prefill_planner(shape)?;
        let ordinal = usize::try_from(d.ordinal).ok();
        create(config, planner, ordinal, || d.to_rust(), plan_out)
    })
}

/// Plan a decode step for CUDA device `device_ordinal`. Reads the device's facts; launches
/// nothing.
///
/// - `config`: host pointer to one `DsaIndexerConfig`; `shape`: host pointer to one
///   `DsaIndexerDecodeShape`.
/// - `plan_out`: host pointer; receives a new plan to free with `dsa_indexer_plan_destroy`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_decode_plan_create(
    config: *const DsaIndexerConfig,
    shape: *const DsaIndexerDecodeShape,
    device_ordinal: i32,
    plan_out: *mut *mut DsaIndexerPlan,
) -> DsaStatus {
    guard("dsa_indexer_decode_plan_create", || {
        let ordinal = size("device_ordinal", device_ordinal as i64)?;
        host_out("plan_out", plan_out)?;
        let planner = decode_planner(shape)?;
        create(
            config,
            planner,
            Some(ordinal),
            || device_info(ordinal),
            plan_out,
        )
    })
}

/// As `dsa_indexer_decode_plan_create`, for a device described by `device`. Host only.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_decode_plan_create_for(
    config: *const DsaIndexerConfig,
    shape: *const DsaIndexerDecodeShape,
    device: *const DsaDeviceInfo,
    plan_out: *mut *mut DsaIndexerPlan,
) -> DsaStatus {
    guard("dsa_indexer_decode_plan_create_for", || {
        // SAFETY: a non-null `device` points to a DsaDeviceInfo (documented).
        let d = *unsafe { host_ref("device", device) }?;
        host_out("plan_out", plan_out)?;
        let planner = decode_planner(shape)?;
        let ordinal = usize::try_from(d.ordinal).ok();
        create(config, planner, ordinal, || d.to_rust(), plan_out)
    })
}

/// Free a plan. NULL is allowed (does nothing). The plan must not be in use by another thread.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_plan_destroy(plan: *mut DsaIndexerPlan) -> DsaStatus {
    guard("dsa_indexer_plan_destroy", || {
        if !plan.is_null() {
            // SAFETY: a non-null `plan` came from `Box::into_raw` in `create` and is destroyed
            // once (documented).
            drop(unsafe { Box::from_raw(plan) });
        }
        Ok(())
    })
}

/// Borrow a plan handle.
///
/// # Safety
/// A non-null `plan` must come from a `dsa_indexer_*_plan_create*` and not be destroyed yet.
unsafe fn plan_ref<'a>(plan: *const DsaIndexerPlan) -> FfiResult<&'a DsaIndexerPlan> {
    // SAFETY: forwarded to the caller.
    unsafe { host_ref("plan", plan) }
}

impl DsaIndexerPlan {
    fn info(&self) -> DsaIndexerPlanInfo {
        let i = |v: usize| v as i64;
        let (kind, logits, indices, bt_cols, regions, bytes) = match &self.plan {
            Planned::Prefill(p) => (
                DsaIndexerPlanKind::Prefill,
                p.logits_shape(),
                p.indices_shape(),
                0,
                *p.regions(),
                p.workspace_bytes(),
            ),
            Planned::Decode(p) => (
                DsaIndexerPlanKind::Decode,
                p.logits_shape(),
                p.indices_shape(),
                p.bt_cols(),
                *p.regions(),
                p.workspace_bytes(),
            ),
        };
        let verify_bytes = match logits[0] {
            0 => 0,
            rows => self.config.policy.workspace_bytes(rows),
        };
        DsaIndexerPlanInfo {
            workspace_bytes: bytes,
            logits_shape: [i(logits[0]), i(logits[1])],
            indices_shape: [i(indices[0]), i(indices[1])],
            bt_cols: i(bt_cols),
            q_fp8_offset: regions.q_fp8,
            weights_offset: regions.weights,
            verify_offset: regions.verify,
            verify_bytes,
            kind: kind as i32,
        }
    }

    fn workspace_bytes(&self) -> usize {
        match &self.plan {
            Planned::Prefill(p) => p.workspace_bytes(),
            Planned::Decode(p) => p.workspace_bytes(),
        }
    }

    /// The Rust communicator for `comm`, checked against the plan's policy.
    ///
    /// # Safety
    /// A non-null `comm` must be a live handle from `dsa_comm_borrow`.
    unsafe fn communicator<'a>(&self, comm: *const DsaComm) -> FfiResult<Option<&'a Communicator>> {
        // SAFETY: forwarded to the caller.
        let c = unsafe { comm_opt(comm) };
        let policy = self.config.policy;
        if policy.needs_communicator() && c.is_none() {
            return Err(FfiError::invalid(format!(
                "consistency policy `{policy}` needs a communicator, but comm is a null pointer"
            )));
        }
        Ok(c)
    }
}

/// Bytes of device workspace a call needs (host only).
///
/// - `plan`: from a `dsa_indexer_*_plan_create*`; `bytes_out`: host pointer to one `size_t`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_plan_workspace_bytes(
    plan: *const DsaIndexerPlan,
    bytes_out: *mut usize,
) -> DsaStatus {
    guard("dsa_indexer_plan_workspace_bytes", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { plan_ref(plan) }?;
        // SAFETY: checked non-null and aligned inside; the caller vouches it is writable.
        unsafe { write_out("bytes_out", bytes_out, p.workspace_bytes()) }
    })
}

/// The plan's kind, output shapes, workspace size and workspace regions (host only).
///
/// - `info_out`: host pointer to one `DsaIndexerPlanInfo`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_plan_info(
    plan: *const DsaIndexerPlan,
    info_out: *mut DsaIndexerPlanInfo,
) -> DsaStatus {
    guard("dsa_indexer_plan_info", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { plan_ref(plan) }?;
        // SAFETY: checked non-null and aligned inside; the caller vouches it is writable.
        unsafe { write_out("info_out", info_out, p.info()) }
    })
}

/// Compile (or fetch from the cache) and load every kernel of the plan (prologue, scores,
/// top-k) into `stream`'s context, so that a later call (e.g. under CUDA-graph capture) does no
/// JIT work. Enqueues nothing.
///
/// - `stream`: the `CUstream` the calls will use (or another of its context); NULL: the
///   current context, else the plan's device.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_plan_prepare(
    plan: *const DsaIndexerPlan,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_indexer_plan_prepare", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { plan_ref(plan) }?;
        let s = borrow_stream(stream, p.device)?;
        let ctx = s.stream.context();
        match &p.plan {
            Planned::Prefill(pl) => pl.prepare(ctx)?,
            Planned::Decode(pl) => pl.prepare(ctx)?,
        }
        Ok(())
    })
}

/// The Rust per-token arguments, every pointer checked (null where required, alignment).
fn token_args(c: &IndexerConfig, t: &DsaIndexerTokens) -> FfiResult<TokenArgs> {
    let elem = c.input.size();
    Ok(TokenArgs {
        q: device_ptr("args.tokens.q", t.q, elem, true)?,
        weights: device_ptr("args.tokens.weights", t.weights, 4, true)?,
        k: device_ptr("args.tokens.k", t.k, elem, true)?,
        ln_weight: device_ptr("args.tokens.ln_weight", t.ln_weight, elem, false)?,
        ln_bias: device_ptr("args.tokens.ln_bias", t.ln_bias, elem, false)?,
        positions: device_ptr("args.tokens.positions", t.positions, 8, true)?,
        cos_sin: device_ptr("args.tokens.cos_sin", t.cos_sin, 4, c.rope_dim > 0)?,
        out_cache_loc: device_ptr("args.tokens.out_cache_loc", t.out_cache_loc, 8, true)?,
        cache: device_ptr("args.tokens.cache", t.cache.cast_const(), 16, true)?,
    })
}

fn workspace(ptr: *mut c_void, given: usize, need: usize) -> FfiResult<u64> {
    let ws = device_ptr("args.workspace", ptr.cast_const(), 16, need > 0)?;
    if given < need {
        return Err(FfiError::invalid(format!(
            "workspace of {given} bytes is smaller than the {need} bytes the plan needs"
        )));
    }
    Ok(ws)
}

fn prefill_args(
    c: &IndexerConfig,
    p: &PrefillPlan,
    a: &DsaIndexerPrefillArgs,
) -> FfiResult<PrefillArgs> {
    let s = p.shape();
    let offset = size("args.new_keys_offset", a.new_keys_offset)?;
    if offset + s.tokens > s.num_keys {
        return Err(FfiError::invalid(format!(
            "args.new_keys_offset = {offset}: the {} new keys end past the {}-row key buffer",
            s.tokens, s.num_keys
        )));
    }
    Ok(PrefillArgs {
        tokens: token_args(c, &a.tokens)?,
        keys_fp8: device_ptr("args.keys_fp8", a.keys_fp8.cast_const(), 16, true)?,
        keys_scale: device_ptr("args.keys_scale", a.keys_scale.cast_const(), 4, true)?,
        new_keys_offset: offset,
        ks: device_ptr("args.ks", a.ks, 4, true)?,
        ke: device_ptr("args.ke", a.ke, 4, true)?,
        topk_offsets: device_ptr("args.topk_offsets", a.topk_offsets, 4, false)?,
        logits: device_ptr("args.logits", a.logits.cast_const(), 4, true)?,
        indices: device_ptr("args.indices", a.indices.cast_const(), 4, true)?,
        workspace: workspace(a.workspace, a.workspace_bytes, p.workspace_bytes())?,
        workspace_bytes: a.workspace_bytes,
    })
}

fn decode_args(
    c: &IndexerConfig,
    p: &DecodePlan,
    a: &DsaIndexerDecodeArgs,
) -> FfiResult<DecodeArgs> {
    Ok(DecodeArgs {
        tokens: token_args(c, &a.tokens)?,
        block_table: device_ptr("args.block_table", a.block_table, 4, true)?,
        context_lens: device_ptr("args.context_lens", a.context_lens, 4, true)?,
        logits: device_ptr("args.logits", a.logits.cast_const(), 4, true)?,
        indices: device_ptr("args.indices", a.indices.cast_const(), 4, true)?,
        workspace: workspace(a.workspace, a.workspace_bytes, p.workspace_bytes())?,
        workspace_bytes: a.workspace_bytes,
    })
}

fn wrong_kind(want: &str, got: &str) -> FfiError {
    FfiError::invalid(format!("plan is a {got} plan, not a {want} plan"))
}

/// Enqueue a whole prefill on `stream`: the key path (into the cache and the key buffer), the
/// query path, the ragged FP8 scores, top-k with the fused ragged transform, then the config's
/// consistency policy over `comm`. No allocation, no host synchronisation.
///
/// - `plan`: a prefill plan; `args`: host pointer to one `DsaIndexerPrefillArgs` (its device
///   pointers as documented there).
/// - `comm`: a handle from `dsa_comm_borrow` when the policy is not `DSA_CONSISTENCY_POLICY_NONE`
///   (its device must be the stream's), else NULL (ignored).
/// - `stream`: the caller's `CUstream` (NULL: legacy default stream of the current context,
///   else of the plan's device).
///
/// Null, misaligned or missing pointers, a short workspace, an out-of-range
/// `new_keys_offset`, a decode plan or a missing communicator give
/// `DSA_STATUS_INVALID_ARGUMENT` before anything is enqueued.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_prefill(
    plan: *const DsaIndexerPlan,
    args: *const DsaIndexerPrefillArgs,
    comm: *const DsaComm,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_indexer_prefill", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { plan_ref(plan) }?;
        let Planned::Prefill(pl) = &p.plan else {
            return Err(wrong_kind("prefill", "decode"));
        };
        // SAFETY: a non-null `args` points to a DsaIndexerPrefillArgs (documented).
        let a = prefill_args(&p.config, pl, unsafe { host_ref("args", args) }?)?;
        // SAFETY: a non-null `comm` is a live handle (documented).
        let c = unsafe { p.communicator(comm) }?;
        let s = borrow_stream(stream, p.device)?;
        // SAFETY: the caller's pointers are device addresses of the documented shapes on the
        // stream's device (the C contract); nulls, alignment and workspace size were checked.
        unsafe { pl.prefill(&s.stream, &a, c) }?;
        Ok(())
    })
}

/// Enqueue a whole decode step on `stream`: the key path (into the cache), the query path, the
/// paged FP8 scores through the block tables, top-k with the fused paged transform, then the
/// config's consistency policy over `comm`. No allocation, no host synchronisation, no host
/// reads of device data: capturable in a CUDA graph after `dsa_indexer_plan_prepare`, and a
/// replay with new data in the same buffers equals an eager call bit for bit.
///
/// - `plan`: a decode plan; `args`: host pointer to one `DsaIndexerDecodeArgs`.
/// - `comm`, `stream`: as for `dsa_indexer_prefill`.
#[unsafe(no_mangle)]
pub extern "C" fn dsa_indexer_decode(
    plan: *const DsaIndexerPlan,
    args: *const DsaIndexerDecodeArgs,
    comm: *const DsaComm,
    stream: DsaStream,
) -> DsaStatus {
    guard("dsa_indexer_decode", || {
        // SAFETY: a non-null `plan` is a live plan (documented).
        let p = unsafe { plan_ref(plan) }?;
        let Planned::Decode(pl) = &p.plan else {
            return Err(wrong_kind("decode", "prefill"));
        };
        // SAFETY: a non-null `args` points to a DsaIndexerDecodeArgs (documented).
        let a = decode_args(&p.config, pl, unsafe { host_ref("args", args) }?)?;
        // SAFETY: a non-null `comm` is a live handle (documented).
        let c = unsafe { p.communicator(comm) }?;
        let s = borrow_stream(stream, p.device)?;
        // SAFETY: as in `dsa_indexer_prefill`.
        unsafe { pl.decode(&s.stream, &a, c) }?;
        Ok(())
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
