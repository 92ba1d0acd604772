//! The compiled forms of the indexer's kernels.

use crate::config::{DIMS, DType, IndexerConfig, MAX_QUERY_ELEMS};
use dsa_jit_cache::{KernelSpec, KernelVariant};
use std::fmt;

/// Warps (rows) per block of the key and query path kernels.
pub const PREP_WARPS: u32 = 4;
/// Warps per block of the decode scores kernel.
pub const DECODE_WARPS: u32 = 4;
/// Tokens (warps) per block of the prefill scores kernel, register (`mma.sync`) path.
pub const PREFILL_WARPS: u32 = 8;
/// Keys per shared-memory tile of the prefill scores kernel (both paths).
pub const PREFILL_TILE: u32 = 64;
/// Threads per block of the prefill scores kernel, sm_90a (`wgmma`) path: one warpgroup.
pub const PREFILL_THREADS_WGMMA: u32 = 128;
/// Key stages of the sm_90a prefill pipeline (`PREFILL_STAGES - 1` tiles in flight per block).
pub const PREFILL_STAGES: u32 = 4;
/// Prefill blocks per SM the sm_90a register budget is sized for (two warpgroups per SM, so
/// one block's epilogue overlaps the other's MMA).
pub const PREFILL_BLOCKS_WGMMA: u32 = 2;
/// Columns a decode warp scores per pipeline stage (one 16-key MMA tile); a decode block
/// scores `DECODE_STEP * DECODE_WARPS` columns per stage.
pub const DECODE_STEP: u32 = 16;
/// Shared-memory stages of the decode pipeline (`DECODE_STAGES - 1` tiles in flight per block).
pub const DECODE_STAGES: u32 = 4;
/// Decode blocks per SM the register budget is sized for, register (`mma.sync`) path.
pub const DECODE_BLOCKS_MMA: u32 = 3;
/// Decode blocks per SM the register budget is sized for, sm_90a (`wgmma`) path.
pub const DECODE_BLOCKS_WGMMA: u32 = 4;

/// The key and query path module (entry points `KEY` and `QUERY`): input dtype and head dim.
/// RoPE style and size, page size, eps and scale format are run-time arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrepVariant {
    /// Element type of q, k and the LayerNorm parameters.
    pub input: DType,
    /// Head dim.
    pub dim: usize,
}

/// The scores module (entry points `RAGGED` and `PAGED`): heads and head dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScoresVariant {
    /// Index heads.
    pub heads: usize,
    /// Head dim.
    pub dim: usize,
}

impl PrepVariant {
    /// The variant a config launches.
    pub fn of(config: &IndexerConfig) -> Self {
        PrepVariant {
            input: config.input,
            dim: config.dim,
        }
    }

    /// Every supported variant.
    pub fn all() -> Vec<PrepVariant> {
        DType::ALL
            .iter()
            .flat_map(|&input| DIMS.iter().map(move |&dim| PrepVariant { input, dim }))
            .collect()
    }
}

impl ScoresVariant {
    /// The variant a config launches.
    pub fn of(config: &IndexerConfig) -> Self {
        ScoresVariant {
            heads: config.heads,
            dim: config.dim,
        }
    }

    /// Tokens per block of the sm_90a prefill kernel: the largest of 8, 4, 2 whose query rows
    /// (`tokens * heads`, wgmma's N over the block's two banks) are at most 256.
    pub fn prefill_tokens_wgmma(&self) -> u32 {
        [8u32, 4, 2]
            .into_iter()
            .find(|&t| t as usize * self.heads <= 256)
            .unwrap_or(2)
    }

    /// Dynamic shared memory of the sm_90a prefill kernel, bytes: `PREFILL_STAGES` key tiles
    /// (`64 * D`) and their scales, the block's queries (`tokens * H * D`), plus 1024 bytes to
    /// align it by hand (mirrors `sc::PrefillSmem` in kernels/scores_ragged.cu).
    pub fn prefill_smem_wgmma(&self) -> u32 {
        let tile = PREFILL_TILE as usize;
        let stages = PREFILL_STAGES as usize * tile * (self.dim + 4);
        let queries = self.prefill_tokens_wgmma() as usize * self.heads * self.dim;
        (stages + queries + 1024) as u32
    }

    /// Every supported variant: heads a multiple of 16 with `heads * dim <= 8192`.
    pub fn all() -> Vec<ScoresVariant> {
        DIMS.iter()
            .flat_map(|&dim| {
                (1..=MAX_QUERY_ELEMS / (16 * dim))
                    .map(move |m| ScoresVariant { heads: 16 * m, dim })
            })
            .collect()
    }
}

impl fmt::Display for PrepVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "indexer.prep[{},d={},warps={PREP_WARPS}]",
            self.input, self.dim
        )
    }
}

impl fmt::Display for ScoresVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "indexer.scores[e4m3,h={},d={},decode_warps={DECODE_WARPS},decode_stages={DECODE_STAGES},decode_blocks={DECODE_BLOCKS_MMA}/{DECODE_BLOCKS_WGMMA},prefill_warps={PREFILL_WARPS},tile={PREFILL_TILE},prefill_wgmma={}x{PREFILL_STAGES}x{PREFILL_BLOCKS_WGMMA}]",
            self.heads,
            self.dim,
            self.prefill_tokens_wgmma()
        )
    }
}

impl KernelVariant for PrepVariant {
    fn spec(&self) -> KernelSpec {
        let rot_scale = dsa_hadamard::cpu::default_scale(self.dim);
        KernelSpec::new(
            "indexer",
            self.to_string(),
            include_str!("kernels/prep.cu"),
            vec![
                ("IN_T".into(), self.input.cuda_type().into()),
                ("D".into(), self.dim.to_string()),
                ("WARPS".into(), PREP_WARPS.to_string()),
                // Shortest round-trip decimal of the f32: NVRTC parses it back to the same bits.
                ("ROT_SCALE".into(), format!("{rot_scale:e}f")),
            ],
            &["KEY", "QUERY"],
        )
    }
}

impl KernelVariant for ScoresVariant {
    fn spec(&self) -> KernelSpec {
        KernelSpec::new(
            "indexer",
            self.to_string(),
            concat!(
                include_str!("kernels/scores.cu"),
                include_str!("kernels/scores_ragged.cu")
            ),
            vec![
                ("H".into(), self.heads.to_string()),
                ("D".into(), self.dim.to_string()),
                ("DWARPS".into(), DECODE_WARPS.to_string()),
                ("DSTAGES".into(), DECODE_STAGES.to_string()),
                ("DMINB".into(), DECODE_BLOCKS_MMA.to_string()),
                ("DMINB_WG".into(), DECODE_BLOCKS_WGMMA.to_string()),
                ("PWARPS".into(), PREFILL_WARPS.to_string()),
                ("BN".into(), PREFILL_TILE.to_string()),
                ("PTOK".into(), self.prefill_tokens_wgmma().to_string()),
                ("PSTAGES".into(), PREFILL_STAGES.to_string()),
                ("PMINB".into(), PREFILL_BLOCKS_WGMMA.to_string()),
            ],
            &["RAGGED", "PAGED"],
        )
    }
}

/// Every supported variant's spec (registered for the workspace compile test).
pub fn all_specs() -> Vec<KernelSpec> {
    let prep = PrepVariant::all().into_iter().map(|v| v.spec());
    prep.chain(ScoresVariant::all().into_iter().map(|v| v.spec()))
        .collect()
}

dsa_jit_cache::register_family!("indexer", all_specs);

#[cfg(test)]
mod tests {
    use super::*;
    use dsa_jit_cache::{Arch, CacheConfig, JitCache};

    #[test]
    fn every_config_maps_to_a_listed_variant_with_a_unique_id() {
        let specs = all_specs();
        let mut ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), specs.len());
        assert!(ScoresVariant::all().contains(&ScoresVariant {
            heads: 64,
            dim: 128
        }));
        assert!(ScoresVariant::all().contains(&ScoresVariant {
            heads: 128,
            dim: 64
        }));
        assert_eq!(ScoresVariant::all().len(), 4 + 8);
        assert_eq!(PrepVariant::all().len(), 6);
        let c = IndexerConfig::default();
        assert!(PrepVariant::all().contains(&PrepVariant::of(&c)));
    }

    /// NVRTC is real on CI (only the GPU is missing): every variant must compile warning-free
    /// for every CI target and export its entry points.
    #[test]
    fn every_variant_compiles_cleanly_for_every_ci_target() {
        let jit = JitCache::new(CacheConfig { dir: None });
        for spec in all_specs() {
            for arch in [Arch::SM80, Arch::SM90A, Arch::SM100] {
                let image = jit
                    .image(&spec, arch)
                    .unwrap_or_else(|e| panic!("{} for {arch}: {e}", spec.id));
                assert!(
                    image.log.trim().is_empty(),
                    "{} for {arch} logged:\n{}",
                    spec.id,
                    image.log
                );
                for (_, symbol) in &spec.entries {
                    let found = image
                        .bytes
                        .windows(symbol.len())
                        .any(|w| w == symbol.as_bytes());
                    assert!(found, "{} for {arch} lacks {symbol}", spec.id);
                }
            }
        }
    }
}
