//! The whole lightning indexer (key path, query path, FP8 scores, top-k, then the consistency
//! policy) as one call: an opaque plan made once per shape, then launched on the caller's stream.
//!
//! Contract (see `dsa_indexer`'s crate docs): per token, `LayerNorm -> RoPE -> Hadamard -> FP8`
//! for the key (stored in the paged index-key cache, and for prefill also in a contiguous key
//! buffer) and per (token, head) for the query; `logit[t,s] = Σ_h w'[t,h] ·
//! relu(dot(q8[t,h], k8[s]) · s_k[s])`; top-k `k` per row, ties to the smaller index, in
//! ascending index, with the fused ragged (prefill) or paged (decode) transform.

use crate::check::{device_ptr, host_out, host_ref, size, write_out};
use crate::collective::{DsaComm, comm_opt};
use crate::context::{DsaDeviceInfo, DsaStream, borrow_stream, device_info};
use crate::status::{DsaStatus, FfiError, FfiResult, guard};
use dsa_indexer::collective::Communicator;
use dsa_indexer::{
    DecodeArgs, DecodePlan, Indexer, IndexerConfig, IndexerError, PrefillArgs, PrefillPlan,
    TokenArgs,
};
use dsa_jit_cache::DeviceInfo;
use std::ffi::c_void;

mod types;

pub use types::*;

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

/// Validate the host arguments (`shape` through `planner`), plan for an H100 description (no
/// device touched), then for the real device, and hand out the plan. The caller has checked its
/// device argument.
fn create<S, P>(
    config: *const DsaIndexerConfig,
    shape: *const S,
    planner: impl FnOnce(*const S) -> FfiResult<P>,
    device: Option<usize>,
    info: impl FnOnce() -> FfiResult<DeviceInfo>,
    plan_out: *mut *mut DsaIndexerPlan,
) -> FfiResult<()>
where
    P: Fn(&Indexer, &DeviceInfo) -> FfiResult<Planned>,
{
    host_out("plan_out", plan_out)?;
    let plan = planner(shape)?;
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
        create(
            config,
            shape,
            prefill_planner,
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
        let ordinal = usize::try_from(d.ordinal).ok();
        create(
            config,
            shape,
            prefill_planner,
            ordinal,
            || d.to_rust(),
            plan_out,
        )
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
        create(
            config,
            shape,
            decode_planner,
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
        let ordinal = usize::try_from(d.ordinal).ok();
        create(
            config,
            shape,
            decode_planner,
            ordinal,
            || d.to_rust(),
            plan_out,
        )
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
