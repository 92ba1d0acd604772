//! Stage 1, the key path: LayerNorm -> RoPE -> Hadamard -> FP8 -> paged cache store, one
//! fused kernel (one warp per token).

use crate::config::{IndexerConfig, RopeStyle};
use crate::error::{IndexerError, Result, check_opt_ptr, check_ptr};
use crate::launch::{PREP, launch};
use crate::variant::{PREP_WARPS, PrepVariant};
use cudarc::driver::{CudaStream, DeviceRepr, LaunchConfig};
use std::sync::Arc;

/// Device pointers of the key path. Shapes use `T` tokens, `D` the head dim, `R` the rope dim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyPathArgs {
    /// Tokens `T`.
    pub tokens: usize,
    /// `[T, D]` keys, input dtype.
    pub k: u64,
    /// `[D]` LayerNorm weight, input dtype (0: ones).
    pub ln_weight: u64,
    /// `[D]` LayerNorm bias, input dtype (0: zeros).
    pub ln_bias: u64,
    /// `[T]` i64 positions (clamped on device to the table).
    pub positions: u64,
    /// `[max_positions, R]` f32 RoPE table: `R/2` cosines then `R/2` sines per position.
    pub cos_sin: u64,
    /// Rows of the RoPE table.
    pub max_positions: usize,
    /// The paged index-key cache (16-byte aligned), `cache_pages` pages.
    pub cache: u64,
    /// Pages in the cache (slots outside are skipped).
    pub cache_pages: usize,
    /// `[T]` i64 cache slot per token (negative or past the cache: not stored).
    pub out_cache_loc: u64,
    /// `[T, D]` u8 contiguous copy of the FP8 keys, 16-byte aligned (0: none).
    pub keys_fp8: u64,
    /// `[T]` f32 contiguous copy of the scales (with `keys_fp8`).
    pub keys_scale: u64,
}

/// Mirrors `prep::KeyParams` in prep.cu field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct KeyParams {
    k: u64,
    gamma: u64,
    beta: u64,
    positions: u64,
    cos_sin: u64,
    cache: u64,
    cache_loc: u64,
    k8_out: u64,
    ks_out: u64,
    num_slots: i64,
    max_pos: i64,
    tokens: i32,
    rope_dim: i32,
    interleaved: i32,
    page_log2: i32,
    eps: f32,
    pow2: i32,
}

// SAFETY: `KeyParams` is `repr(C)` plain data matching the kernel's by-value parameter.
unsafe impl DeviceRepr for KeyParams {}

fn params(config: &IndexerConfig, a: &KeyPathArgs) -> Result<KeyParams> {
    let elem = config.input.size() as u64;
    check_ptr("k", a.k, elem)?;
    check_opt_ptr("ln_weight", a.ln_weight, elem)?;
    check_opt_ptr("ln_bias", a.ln_bias, elem)?;
    check_ptr("positions", a.positions, 8)?;
    check_ptr("cache", a.cache, 16)?;
    check_ptr("out_cache_loc", a.out_cache_loc, 8)?;
    if config.rope_dim > 0 {
        check_ptr("cos_sin", a.cos_sin, 4)?;
        if a.max_positions == 0 {
            return Err(IndexerError::Shape("the RoPE table has no rows".into()));
        }
    }
    if a.keys_fp8 != 0 || a.keys_scale != 0 {
        check_ptr("keys_fp8", a.keys_fp8, 16)?;
        check_ptr("keys_scale", a.keys_scale, 4)?;
    }
    let slots = a.cache_pages.checked_mul(config.page_size);
    let tokens = i32::try_from(a.tokens).ok();
    let (Some(slots), Some(tokens)) = (slots, tokens) else {
        return Err(IndexerError::Shape(format!(
            "{} tokens, {} cache pages: too large",
            a.tokens, a.cache_pages
        )));
    };
    Ok(KeyParams {
        k: a.k,
        gamma: a.ln_weight,
        beta: a.ln_bias,
        positions: a.positions,
        cos_sin: a.cos_sin,
        cache: a.cache,
        cache_loc: a.out_cache_loc,
        k8_out: a.keys_fp8,
        ks_out: a.keys_scale,
        num_slots: slots as i64,
        max_pos: a.max_positions as i64,
        tokens,
        rope_dim: config.rope_dim as i32,
        interleaved: (config.rope == RopeStyle::Interleaved) as i32,
        page_log2: config.page_size.trailing_zeros() as i32,
        eps: config.eps,
        pow2: config.pow2() as i32,
    })
}

/// Checks `args` as [`launch_key_path`] does, without launching.
pub(crate) fn check_key_path(config: &IndexerConfig, args: &KeyPathArgs) -> Result<()> {
    params(config, args).map(|_| ())
}

/// Checks `args` and launches the fused key path on `stream` (nothing for zero tokens).
///
/// # Safety
/// Every non-zero pointer must be device memory on `stream`'s context of the shape documented
/// on [`KeyPathArgs`], alive until the work completes.
pub unsafe fn launch_key_path(
    config: &IndexerConfig,
    stream: &Arc<CudaStream>,
    args: &KeyPathArgs,
) -> Result<()> {
    let p = params(config, args)?;
    if args.tokens == 0 {
        return Ok(());
    }
    let grid = (args.tokens.div_ceil(PREP_WARPS as usize) as u32, 1, 1);
    // SAFETY: the caller vouches for the pointers; the kernel reads T rows, writes only slots
    // inside the cache and the optional T-row copies.
    unsafe {
        launch(
            &PREP,
            &PrepVariant::of(config),
            "KEY",
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

    fn args() -> KeyPathArgs {
        KeyPathArgs {
            tokens: 3,
            k: 0x1000,
            positions: 0x2000,
            cos_sin: 0x3000,
            max_positions: 10,
            cache: 0x10000,
            cache_pages: 4,
            out_cache_loc: 0x4000,
            ..KeyPathArgs::default()
        }
    }

    #[test]
    fn params_match_the_kernel_layout_and_misuse_is_rejected() {
        assert_eq!(std::mem::size_of::<KeyParams>(), 11 * 8 + 6 * 4);
        let c = IndexerConfig::default();
        let p = params(&c, &args()).unwrap();
        assert_eq!((p.num_slots, p.page_log2, p.rope_dim), (256, 6, 64));
        let bad = [
            KeyPathArgs { k: 0, ..args() },
            KeyPathArgs {
                k: 0x1001,
                ..args()
            },
            KeyPathArgs {
                cache: 0x10008,
                ..args()
            },
            KeyPathArgs {
                max_positions: 0,
                ..args()
            },
            KeyPathArgs {
                keys_fp8: 0x5000,
                ..args()
            },
            KeyPathArgs {
                tokens: 1 << 31,
                ..args()
            },
        ];
        for a in bad {
            assert!(params(&c, &a).is_err(), "{a:?}");
        }
        let no_rope = IndexerConfig { rope_dim: 0, ..c };
        assert!(
            params(
                &no_rope,
                &KeyPathArgs {
                    cos_sin: 0,
                    max_positions: 0,
                    ..args()
                }
            )
            .is_ok()
        );
    }
}
