//! Stage 2, the query path: RoPE -> Hadamard -> FP8 per (token, head), and the folded head
//! weights, one fused kernel (one warp per head row).

use crate::config::{IndexerConfig, RopeStyle};
use crate::error::{IndexerError, Result, check_ptr};
use crate::launch::{PREP, launch};
use crate::variant::{PREP_WARPS, PrepVariant};
use cudarc::driver::{CudaStream, DeviceRepr, LaunchConfig};
use std::sync::Arc;

/// Device pointers of the query path (`T` tokens, `H` heads, `D` head dim, `R` rope dim).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryPathArgs {
    /// Tokens `T`.
    pub tokens: usize,
    /// `[T, H, D]` queries, input dtype.
    pub q: u64,
    /// `[T, H]` f32 head weights.
    pub weights: u64,
    /// `[T]` i64 positions (clamped on device to the table).
    pub positions: u64,
    /// `[max_positions, R]` f32 RoPE table.
    pub cos_sin: u64,
    /// Rows of the RoPE table.
    pub max_positions: usize,
    /// `[T, H, D]` u8 output, 16-byte aligned.
    pub q_fp8: u64,
    /// `[T, H]` f32 output: the folded weights `w * q_scale * H^-0.5 * D^-0.5`.
    pub weights_out: u64,
}

/// Mirrors `prep::QueryParams` in prep.cu field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct QueryParams {
    q: u64,
    weights: u64,
    positions: u64,
    cos_sin: u64,
    q8: u64,
    wq: u64,
    max_pos: i64,
    tokens: i32,
    heads: i32,
    rope_dim: i32,
    interleaved: i32,
    weight_scale: f32,
    pow2: i32,
}

// SAFETY: `QueryParams` is `repr(C)` plain data matching the kernel's by-value parameter.
unsafe impl DeviceRepr for QueryParams {}

fn params(config: &IndexerConfig, a: &QueryPathArgs) -> Result<QueryParams> {
    check_ptr("q", a.q, config.input.size() as u64)?;
    check_ptr("weights", a.weights, 4)?;
    check_ptr("positions", a.positions, 8)?;
    check_ptr("q_fp8", a.q_fp8, 16)?;
    check_ptr("weights_out", a.weights_out, 4)?;
    if config.rope_dim > 0 {
        check_ptr("cos_sin", a.cos_sin, 4)?;
        if a.max_positions == 0 {
            return Err(IndexerError::Shape("the RoPE table has no rows".into()));
        }
    }
    let rows = a.tokens.checked_mul(config.heads);
    let Some(tokens) = rows
        .and_then(|r| i32::try_from(r).ok())
        .map(|_| a.tokens as i32)
    else {
        return Err(IndexerError::Shape(format!(
            "{} tokens x {} heads exceed i32",
            a.tokens, config.heads
        )));
    };
    Ok(QueryParams {
        q: a.q,
        weights: a.weights,
        positions: a.positions,
        cos_sin: a.cos_sin,
        q8: a.q_fp8,
        wq: a.weights_out,
        max_pos: a.max_positions as i64,
        tokens,
        heads: config.heads as i32,
        rope_dim: config.rope_dim as i32,
        interleaved: (config.rope == RopeStyle::Interleaved) as i32,
        weight_scale: config.weight_scale(),
        pow2: config.pow2() as i32,
    })
}

/// Checks `args` as [`launch_query_path`] does, without launching.
pub(crate) fn check_query_path(config: &IndexerConfig, args: &QueryPathArgs) -> Result<()> {
    params(config, args).map(|_| ())
}

/// Checks `args` and launches the fused query path on `stream` (nothing for zero tokens).
///
/// # Safety
/// Every non-zero pointer must be device memory on `stream`'s context of the shape documented
/// on [`QueryPathArgs`], alive until the work completes.
pub unsafe fn launch_query_path(
    config: &IndexerConfig,
    stream: &Arc<CudaStream>,
    args: &QueryPathArgs,
) -> Result<()> {
    let p = params(config, args)?;
    let rows = args.tokens * config.heads;
    if rows == 0 {
        return Ok(());
    }
    let grid = (rows.div_ceil(PREP_WARPS as usize) as u32, 1, 1);
    // SAFETY: the caller vouches for the pointers; the kernel touches T*H rows of each.
    unsafe {
        launch(
            &PREP,
            &PrepVariant::of(config),
            "QUERY",
            stream,
            LaunchConfig {
                grid_dim: grid,
                block_dim: (32 * PREP_WARPS, 1, 1),
                shared_mem_bytes: 0,
            },
            &p,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_match_the_kernel_layout_and_misuse_is_rejected() {
        assert_eq!(std::mem::size_of::<QueryParams>(), 7 * 8 + 6 * 4);
        let c = IndexerConfig::default();
        let ok = QueryPathArgs {
            tokens: 5,
            q: 0x1000,
            weights: 0x2000,
            positions: 0x3000,
            cos_sin: 0x4000,
            max_positions: 8,
            q_fp8: 0x5000,
            weights_out: 0x6000,
        };
        let p = params(&c, &ok).unwrap();
        assert_eq!(
            (p.tokens, p.heads, p.weight_scale),
            (5, 64, c.weight_scale())
        );
        for a in [
            QueryPathArgs {
                q_fp8: 0x5004,
                ..ok
            },
            QueryPathArgs { weights: 0, ..ok },
            QueryPathArgs {
                tokens: 1 << 26,
                ..ok
            },
        ] {
            assert!(params(&c, &a).is_err(), "{a:?}");
        }
    }
}
