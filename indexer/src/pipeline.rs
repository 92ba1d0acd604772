//! The indexer: config -> plan -> prefill / decode on the caller's stream.

use crate::collective::{self, Communicator, IndexRows, VerifyWorkspace};
use crate::config::IndexerConfig;
use crate::error::{IndexerError, Result, check_opt_ptr, check_ptr};
use crate::key_path::{KeyPathArgs, check_key_path, launch_key_path};
use crate::launch;
use crate::plan::{DecodePlan, DecodeShape, PrefillPlan, PrefillShape, WorkspaceRegions};
use crate::query_path::{QueryPathArgs, check_query_path, launch_query_path};
use crate::scores::{
    PagedScoresArgs, RaggedScoresArgs, check_scores_paged, check_scores_ragged,
    launch_scores_paged, launch_scores_ragged,
};
use crate::variant::{PrepVariant, ScoresVariant};
use cudarc::driver::{CudaContext, CudaStream};
use dsa_jit_cache::DeviceInfo;
use dsa_topk::{TopkArgs, TopkPlan, TransformArgs};
use std::sync::Arc;

/// A validated indexer configuration; makes plans.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Indexer {
    config: IndexerConfig,
}

impl Indexer {
    /// Validates `config` ([`IndexerConfig::validate`]).
    pub fn new(config: IndexerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Indexer { config })
    }

    /// The configuration.
    pub fn config(&self) -> &IndexerConfig {
        &self.config
    }

    /// Plans a prefill call (host only: no launch, no device access).
    pub fn plan_prefill(&self, shape: PrefillShape, device: &DeviceInfo) -> Result<PrefillPlan> {
        PrefillPlan::new(self.config, shape, device)
    }

    /// Plans a decode step (host only: no launch, no device access).
    pub fn plan_decode(&self, shape: DecodeShape, device: &DeviceInfo) -> Result<DecodePlan> {
        DecodePlan::new(self.config, shape, device)
    }

    /// Compiles (or fetches) and loads the indexer's kernels into `ctx`, so that the first call
    /// (e.g. inside a CUDA-graph capture) does no JIT work. Plans' `prepare` also loads top-k.
    pub fn prepare(&self, ctx: &Arc<CudaContext>) -> Result<()> {
        load_indexer_kernels(ctx, &self.config)
    }
}

/// Loads the key path, query path and scores kernels of `config` into `ctx` (a plan adds its
/// top-k).
fn load_indexer_kernels(ctx: &Arc<CudaContext>, config: &IndexerConfig) -> Result<()> {
    launch::prepare(ctx, &PrepVariant::of(config), &ScoresVariant::of(config))
}

/// The per-token inputs every call reads (device pointers; `T` tokens: prefill's new tokens
/// or decode's one token per request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenArgs {
    /// `[T, H, D]` index queries, input dtype.
    pub q: u64,
    /// `[T, H]` f32 head weights.
    pub weights: u64,
    /// `[T, D]` index keys before the LayerNorm, input dtype.
    pub k: u64,
    /// `[D]` LayerNorm weight, input dtype (0: ones).
    pub ln_weight: u64,
    /// `[D]` LayerNorm bias, input dtype (0: zeros).
    pub ln_bias: u64,
    /// `[T]` i64 positions.
    pub positions: u64,
    /// `[max_positions, R]` f32 RoPE table (`R/2` cosines then `R/2` sines per position).
    pub cos_sin: u64,
    /// `[T]` i64 cache slot of each new key (negative: not stored).
    pub out_cache_loc: u64,
    /// The paged index-key cache ([`crate::CacheLayout`]), 16-byte aligned.
    pub cache: u64,
}

/// Device buffers of a prefill call (`T` tokens, `S` keys, shapes from the plan).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefillArgs {
    /// Per-token inputs and the cache.
    pub tokens: TokenArgs,
    /// `[S, D]` u8 contiguous key buffer (16-byte aligned). The call writes the new keys at rows
    /// `new_keys_offset..new_keys_offset + T`; the caller fills the others (e.g. a prefix).
    pub keys_fp8: u64,
    /// `[S]` f32 scales of the key buffer.
    pub keys_scale: u64,
    /// First row of the new keys in the key buffer (`+ T <= S`).
    pub new_keys_offset: usize,
    /// `[T]` i32 first key of each token's range.
    pub ks: u64,
    /// `[T]` i32 end key of each token's range (exclusive).
    pub ke: u64,
    /// `[T]` i32 offsets added to each selected position (0: the clamped `ks`, so indices
    /// are rows of the key buffer).
    pub topk_offsets: u64,
    /// `[T, stride]` f32 logits out.
    pub logits: u64,
    /// `[T, k]` i32 indices out.
    pub indices: u64,
    /// Workspace of [`PrefillPlan::workspace_bytes`], 16-byte aligned.
    pub workspace: u64,
    /// Its size.
    pub workspace_bytes: usize,
}

/// Device buffers of a decode step (`B` requests, shapes from the plan).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeArgs {
    /// Per-token inputs (one token per request) and the cache.
    pub tokens: TokenArgs,
    /// `[B, bt_stride]` i32 page ids.
    pub block_table: u64,
    /// `[B]` i32 context lengths, the new token included.
    pub context_lens: u64,
    /// `[B, stride]` f32 logits out.
    pub logits: u64,
    /// `[B, k]` i32 indices out: cache slots `page * P + offset`, -1 pads.
    pub indices: u64,
    /// Workspace of [`DecodePlan::workspace_bytes`], 16-byte aligned.
    pub workspace: u64,
    /// Its size.
    pub workspace_bytes: usize,
}

fn check_workspace(ptr: u64, given: usize, needed: usize) -> Result<()> {
    if needed > 0 {
        check_ptr("workspace", ptr, 16)?;
    }
    if given < needed {
        return Err(IndexerError::Workspace { given, needed });
    }
    Ok(())
}

fn key_args(t: &TokenArgs, tokens: usize, max_positions: usize, cache_pages: usize) -> KeyPathArgs {
    KeyPathArgs {
        tokens,
        k: t.k,
        ln_weight: t.ln_weight,
        ln_bias: t.ln_bias,
        positions: t.positions,
        cos_sin: t.cos_sin,
        max_positions,
        cache: t.cache,
        cache_pages,
        out_cache_loc: t.out_cache_loc,
        keys_fp8: 0,
        keys_scale: 0,
    }
}

/// Checks that a policy that needs a communicator has one (before anything is launched).
fn check_policy(config: &IndexerConfig, comm: Option<&Communicator>) -> Result<()> {
    if config.policy.needs_communicator() && comm.is_none() {
        return Err(IndexerError::NoCommunicator(config.policy));
    }
    Ok(())
}

/// The consistency stage: the config's policy over the `[rows, k]` indices.
fn enforce(
    config: &IndexerConfig,
    comm: Option<&Communicator>,
    stream: &Arc<CudaStream>,
    rows: usize,
    indices: u64,
    ws: u64,
    r: &WorkspaceRegions,
) -> Result<()> {
    let (Some(comm), true) = (comm, config.policy.needs_communicator() && rows > 0) else {
        return Ok(());
    };
    // SAFETY: `indices` holds [rows, k] i32 (checked by the caller's plan launch) and the
    // verify region was sized by the plan for `rows`.
    let idx = unsafe { IndexRows::from_raw(indices, rows, config.k)? };
    let layout = collective::WorkspaceLayout::verify(rows);
    let vws = if config.policy.verifies() {
        // SAFETY: the plan reserved `layout.total_bytes` at this offset of the workspace.
        Some(unsafe {
            VerifyWorkspace::from_raw(ws + r.verify as u64, layout.total_bytes, layout)?
        })
    } else {
        None
    };
    comm.enforce(config.policy, &idx, vws.as_ref(), stream)?;
    Ok(())
}

/// A planned call as the stage driver sees it. The required methods hold what differs between a
/// prefill and a decode call (their own checks, the key path's arguments, the scores kernel, the
/// top-k transform); the provided ones hold what the two share, so that it is written once: the
/// checks of every stage before the first launch, the stage order and the consistency stage.
trait PlannedCall {
    /// The call's device buffers ([`PrefillArgs`] or [`DecodeArgs`]).
    type Args: CallArgs;

    fn config(&self) -> &IndexerConfig;

    fn topk_plan(&self) -> &TopkPlan;

    fn workspace_regions(&self) -> &WorkspaceRegions;

    /// Rows of the logits and indices: prefill's new tokens, decode's requests.
    fn rows(&self) -> usize;

    /// Rows of the RoPE table.
    fn max_positions(&self) -> usize;

    /// The plan's own checks of `a`, after the workspace and indices checks every call makes;
    /// each stage's own are `check_all`'s.
    fn check(&self, _a: &Self::Args) -> Result<()> {
        Ok(())
    }

    fn key_args(&self, a: &Self::Args) -> KeyPathArgs;

    fn check_scores(&self, a: &Self::Args) -> Result<()>;

    /// The scores stage.
    ///
    /// # Safety
    /// As [`PlannedCall::launch_stage`].
    unsafe fn launch_scores(&self, stream: &Arc<CudaStream>, a: &Self::Args) -> Result<()>;

    /// Top-k over the logits with the call's fused transform, its scratch in the plan's top-k
    /// region of the workspace (and for decode, the request map the scores stage wrote).
    fn topk_args(&self, a: &Self::Args) -> TopkArgs;

    /// Loads every kernel the call uses into `ctx` (see [`Indexer::prepare`]).
    fn load_kernels(&self, ctx: &Arc<CudaContext>) -> Result<()> {
        load_indexer_kernels(ctx, self.config())?;
        Ok(self.topk_plan().prepare(ctx)?)
    }

    fn query_args(&self, a: &Self::Args) -> QueryPathArgs {
        let (t, ws, r) = (a.tokens(), a.workspace(), self.workspace_regions());
        QueryPathArgs {
            tokens: self.rows(),
            q: t.q,
            weights: t.weights,
            positions: t.positions,
            cos_sin: t.cos_sin,
            max_positions: self.max_positions(),
            q_fp8: ws + r.q_fp8 as u64,
            weights_out: ws + r.weights as u64,
        }
    }

    /// Every host-visible check of every stage, before the first launch.
    fn check_all(&self, a: &Self::Args, comm: Option<&Communicator>) -> Result<()> {
        check_policy(self.config(), comm)?;
        let needed = self.workspace_regions().total;
        check_workspace(a.workspace(), a.workspace_bytes(), needed)?;
        check_ptr("indices", a.indices(), 4)?;
        self.check(a)?;
        check_key_path(self.config(), &self.key_args(a))?;
        check_query_path(self.config(), &self.query_args(a))?;
        self.check_scores(a)
    }

    /// One stage on its own: the plan-level checks, then its launch.
    ///
    /// # Safety
    /// As [`PlannedCall::run`].
    unsafe fn checked_stage(
        &self,
        stage: Stage,
        stream: &Arc<CudaStream>,
        a: &Self::Args,
    ) -> Result<()> {
        self.check(a)?;
        // SAFETY: forwarded from the caller.
        unsafe { self.launch_stage(stage, stream, a) }
    }

    /// Launch one stage; the plan-level checks (`check`) are the caller's.
    ///
    /// # Safety
    /// As [`PlannedCall::run`].
    unsafe fn launch_stage(
        &self,
        stage: Stage,
        stream: &Arc<CudaStream>,
        a: &Self::Args,
    ) -> Result<()> {
        match stage {
            // SAFETY: forwarded from the caller.
            Stage::KeyPath => unsafe { launch_key_path(self.config(), stream, &self.key_args(a)) },
            // SAFETY: forwarded from the caller; the query region was sized by the plan.
            Stage::QueryPath => unsafe {
                launch_query_path(self.config(), stream, &self.query_args(a))
            },
            // SAFETY: forwarded from the caller; the workspace regions were sized by the plan.
            Stage::Scores => unsafe { self.launch_scores(stream, a) },
            // SAFETY: forwarded from the caller; the top-k region was sized by the plan (and a
            // decode's request map was written by the scores stage).
            Stage::Topk => unsafe { run_topk(self.topk_plan(), stream, &self.topk_args(a)) },
        }
    }

    /// The whole call: key path, query path, scores, top-k, then the config's consistency
    /// policy over `comm`.
    ///
    /// # Safety
    /// As [`PrefillPlan::prefill`] / [`DecodePlan::decode`].
    unsafe fn run(
        &self,
        stream: &Arc<CudaStream>,
        a: &Self::Args,
        comm: Option<&Communicator>,
    ) -> Result<()> {
        self.check_all(a, comm)?;
        for stage in Stage::ALL {
            // SAFETY: forwarded from the caller; every stage's arguments were checked above.
            unsafe { self.launch_stage(stage, stream, a) }?;
        }
        enforce(
            self.config(),
            comm,
            stream,
            self.rows(),
            a.indices(),
            a.workspace(),
            self.workspace_regions(),
        )
    }
}

/// The buffers of a call that the stage driver reads whatever the call's kind.
trait CallArgs {
    fn tokens(&self) -> &TokenArgs;

    /// `[rows, k]` i32 indices out.
    fn indices(&self) -> u64;

    fn workspace(&self) -> u64;

    fn workspace_bytes(&self) -> usize;
}

impl CallArgs for PrefillArgs {
    fn tokens(&self) -> &TokenArgs {
        &self.tokens
    }

    fn indices(&self) -> u64 {
        self.indices
    }

    fn workspace(&self) -> u64 {
        self.workspace
    }

    fn workspace_bytes(&self) -> usize {
        self.workspace_bytes
    }
}

impl CallArgs for DecodeArgs {
    fn tokens(&self) -> &TokenArgs {
        &self.tokens
    }

    fn indices(&self) -> u64 {
        self.indices
    }

    fn workspace(&self) -> u64 {
        self.workspace
    }

    fn workspace_bytes(&self) -> usize {
        self.workspace_bytes
    }
}

impl PlannedCall for PrefillPlan {
    type Args = PrefillArgs;

    fn config(&self) -> &IndexerConfig {
        &self.config
    }

    fn topk_plan(&self) -> &TopkPlan {
        &self.topk
    }

    fn workspace_regions(&self) -> &WorkspaceRegions {
        &self.regions
    }

    fn rows(&self) -> usize {
        self.shape.tokens
    }

    fn max_positions(&self) -> usize {
        self.shape.max_positions
    }

    fn check(&self, a: &PrefillArgs) -> Result<()> {
        check_opt_ptr("topk_offsets", a.topk_offsets, 4)?;
        if a.new_keys_offset + self.shape.tokens > self.shape.num_keys {
            return Err(IndexerError::Shape(format!(
                "new keys at rows {}..{} of a {}-row key buffer",
                a.new_keys_offset,
                a.new_keys_offset + self.shape.tokens,
                self.shape.num_keys
            )));
        }
        Ok(())
    }

    fn key_args(&self, a: &PrefillArgs) -> KeyPathArgs {
        let s = &self.shape;
        let d = self.config.dim as u64;
        let mut args = key_args(&a.tokens, s.tokens, s.max_positions, s.cache_pages);
        args.keys_fp8 = a.keys_fp8 + a.new_keys_offset as u64 * d;
        args.keys_scale = a.keys_scale + a.new_keys_offset as u64 * 4;
        if a.keys_fp8 == 0 || a.keys_scale == 0 {
            (args.keys_fp8, args.keys_scale) = (a.keys_fp8, a.keys_scale);
        }
        args
    }

    fn check_scores(&self, a: &PrefillArgs) -> Result<()> {
        check_scores_ragged(&self.scores_args(a), self.split)
    }

    unsafe fn launch_scores(&self, stream: &Arc<CudaStream>, a: &PrefillArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { launch_scores_ragged(&self.config, stream, &self.scores_args(a), self.split) }
    }

    fn topk_args(&self, a: &PrefillArgs) -> TopkArgs {
        let (ws, r) = (a.workspace, &self.regions);
        let starts = ws + r.row_info as u64;
        let offsets = if a.topk_offsets != 0 {
            a.topk_offsets
        } else {
            starts
        };
        TopkArgs {
            scores: a.logits,
            lengths: ws + r.lengths as u64,
            row_starts: starts,
            out: a.indices,
            workspace: ws + r.topk as u64,
            workspace_bytes: self.topk.workspace_bytes(),
            transform: TransformArgs::Ragged { offsets },
        }
    }
}

impl PrefillPlan {
    /// Loads every kernel the call uses into `ctx` (see [`Indexer::prepare`]).
    pub fn prepare(&self, ctx: &Arc<CudaContext>) -> Result<()> {
        self.load_kernels(ctx)
    }

    fn scores_args(&self, a: &PrefillArgs) -> RaggedScoresArgs {
        let (ws, r) = (a.workspace, &self.regions);
        RaggedScoresArgs {
            tokens: self.shape.tokens,
            q_fp8: ws + r.q_fp8 as u64,
            weights: ws + r.weights as u64,
            keys_fp8: a.keys_fp8,
            keys_scale: a.keys_scale,
            num_keys: self.shape.num_keys,
            ks: a.ks,
            ke: a.ke,
            logits: a.logits,
            stride: self.shape.stride,
            starts_out: ws + r.row_info as u64,
            lengths_out: ws + r.lengths as u64,
        }
    }

    /// Stage 1: the key path into the cache and the key buffer.
    ///
    /// # Safety
    /// As [`PrefillPlan::prefill`].
    pub unsafe fn key_path(&self, stream: &Arc<CudaStream>, a: &PrefillArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::KeyPath, stream, a) }
    }

    /// Stage 2: the query path into the workspace.
    ///
    /// # Safety
    /// As [`PrefillPlan::prefill`].
    pub unsafe fn query_path(&self, stream: &Arc<CudaStream>, a: &PrefillArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::QueryPath, stream, a) }
    }

    /// Stage 3: the scores from the workspace's queries and the key buffer.
    ///
    /// # Safety
    /// As [`PrefillPlan::prefill`].
    pub unsafe fn scores(&self, stream: &Arc<CudaStream>, a: &PrefillArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::Scores, stream, a) }
    }

    /// Stage 4: top-k over the logits with the fused ragged transform (reads the clamped
    /// starts and lengths the scores stage wrote to the workspace).
    ///
    /// # Safety
    /// As [`PrefillPlan::prefill`].
    pub unsafe fn topk(&self, stream: &Arc<CudaStream>, a: &PrefillArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::Topk, stream, a) }
    }

    /// The whole prefill: key path, query path, scores, top-k, then the config's consistency
    /// policy over `comm`. No allocation, no host synchronisation.
    ///
    /// # Safety
    /// Every non-zero pointer in `a` must be device memory on `stream`'s context of the shape
    /// documented on [`PrefillArgs`] / [`TokenArgs`] for this plan's shape, alive until the work
    /// completes. Nulls, misalignment, a short workspace and a missing communicator are errors
    /// reported before any launch.
    pub unsafe fn prefill(
        &self,
        stream: &Arc<CudaStream>,
        a: &PrefillArgs,
        comm: Option<&Communicator>,
    ) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.run(stream, a, comm) }
    }
}

impl PlannedCall for DecodePlan {
    type Args = DecodeArgs;

    fn config(&self) -> &IndexerConfig {
        &self.config
    }

    fn topk_plan(&self) -> &TopkPlan {
        &self.topk
    }

    fn workspace_regions(&self) -> &WorkspaceRegions {
        &self.regions
    }

    fn rows(&self) -> usize {
        self.shape.batch
    }

    fn max_positions(&self) -> usize {
        self.shape.max_positions
    }

    fn key_args(&self, a: &DecodeArgs) -> KeyPathArgs {
        let s = &self.shape;
        key_args(&a.tokens, s.batch, s.max_positions, s.cache_pages)
    }

    fn check_scores(&self, a: &DecodeArgs) -> Result<()> {
        check_scores_paged(&self.config, &self.scores_args(a), self.split)
    }

    unsafe fn launch_scores(&self, stream: &Arc<CudaStream>, a: &DecodeArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { launch_scores_paged(&self.config, stream, &self.scores_args(a), self.split) }
    }

    fn topk_args(&self, a: &DecodeArgs) -> TopkArgs {
        let (ws, r) = (a.workspace, &self.regions);
        TopkArgs {
            scores: a.logits,
            lengths: a.context_lens,
            row_starts: 0,
            out: a.indices,
            workspace: ws + r.topk as u64,
            workspace_bytes: self.topk.workspace_bytes(),
            transform: TransformArgs::Paged {
                page_table: a.block_table,
                stride: self.shape.bt_stride,
                cols: self.bt_cols,
                num_requests: self.shape.batch,
                rows_to_requests: ws + r.row_info as u64,
            },
        }
    }
}

impl DecodePlan {
    /// Loads every kernel the step uses into `ctx` (call before capturing a graph).
    pub fn prepare(&self, ctx: &Arc<CudaContext>) -> Result<()> {
        self.load_kernels(ctx)
    }

    fn scores_args(&self, a: &DecodeArgs) -> PagedScoresArgs {
        let (ws, r) = (a.workspace, &self.regions);
        PagedScoresArgs {
            batch: self.shape.batch,
            q_fp8: ws + r.q_fp8 as u64,
            weights: ws + r.weights as u64,
            cache: a.tokens.cache,
            cache_pages: self.shape.cache_pages,
            block_table: a.block_table,
            bt_stride: self.shape.bt_stride,
            bt_cols: self.bt_cols,
            context_lens: a.context_lens,
            logits: a.logits,
            stride: self.shape.stride,
            row_map_out: ws + r.row_info as u64,
        }
    }

    /// Stage 1: the key path into the cache.
    ///
    /// # Safety
    /// As [`DecodePlan::decode`].
    pub unsafe fn key_path(&self, stream: &Arc<CudaStream>, a: &DecodeArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::KeyPath, stream, a) }
    }

    /// Stage 2: the query path into the workspace.
    ///
    /// # Safety
    /// As [`DecodePlan::decode`].
    pub unsafe fn query_path(&self, stream: &Arc<CudaStream>, a: &DecodeArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::QueryPath, stream, a) }
    }

    /// Stage 3: the scores through the block tables (also writes top-k's request map).
    ///
    /// # Safety
    /// As [`DecodePlan::decode`].
    pub unsafe fn scores(&self, stream: &Arc<CudaStream>, a: &DecodeArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::Scores, stream, a) }
    }

    /// Stage 4: top-k over the logits with the fused paged transform.
    ///
    /// # Safety
    /// As [`DecodePlan::decode`].
    pub unsafe fn topk(&self, stream: &Arc<CudaStream>, a: &DecodeArgs) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.checked_stage(Stage::Topk, stream, a) }
    }

    /// The whole decode step: key path, query path, scores, top-k, then the config's
    /// consistency policy over `comm`. No allocation, no host synchronisation, no host reads of
    /// device data: capturable in a CUDA graph (after [`DecodePlan::prepare`]) and replayable
    /// with new data in the same buffers.
    ///
    /// # Safety
    /// Every non-zero pointer in `a` must be device memory on `stream`'s context of the shape
    /// documented on [`DecodeArgs`] / [`TokenArgs`] for this plan's shape, alive until the work
    /// completes (or as long as a graph that captured it may replay). Nulls, misalignment, a
    /// short workspace and a missing communicator are errors reported before any launch.
    pub unsafe fn decode(
        &self,
        stream: &Arc<CudaStream>,
        a: &DecodeArgs,
        comm: Option<&Communicator>,
    ) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { self.run(stream, a, comm) }
    }
}

/// The four stages of a prefill or decode call, in launch order.
#[derive(Clone, Copy)]
enum Stage {
    KeyPath,
    QueryPath,
    Scores,
    Topk,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::KeyPath, Stage::QueryPath, Stage::Scores, Stage::Topk];
}

/// Top-k launch with the indexer's error type.
///
/// # Safety
/// As [`TopkPlan::launch`].
unsafe fn run_topk(plan: &TopkPlan, stream: &Arc<CudaStream>, args: &TopkArgs) -> Result<()> {
    // SAFETY: forwarded from the caller.
    Ok(unsafe { plan.launch(stream, args) }?)
}
