//! The typed kernel variant: everything that changes the compiled binary.

use crate::DType;
use dsa_jit_cache::{KernelSpec, KernelVariant};
use std::fmt;

/// The entry point's role (`DSA_ENTRY_NORM`).
pub const ROLE: &str = "NORM";
/// Register slots per thread for the warp-team kernels.
pub const WARP_CHUNKS: [u32; 3] = [1, 2, 4];
/// Register slots per thread for the CTA-per-row kernels (16 only on the scalar path).
pub const CTA_CHUNKS: [u32; 2] = [4, 16];

/// Who normalizes one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Team {
    /// A power-of-two group of at most 32 lanes of one warp (reductions by shuffles).
    Warp,
    /// A whole CTA (reductions through shared memory).
    Cta,
}

/// One compiled form of the norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerNormVariant {
    /// Input, gamma and beta element type.
    pub input: DType,
    /// Output element type.
    pub output: DType,
    /// 16-byte vector loads (`true`) or one element per access.
    pub vector: bool,
    /// Who handles a row.
    pub team: Team,
    /// Chunks (vectors or elements) each thread holds in registers.
    pub chunks: u32,
}

impl LayerNormVariant {
    /// Elements per chunk.
    pub fn vec_elems(&self) -> usize {
        if self.vector {
            16 / self.input.size()
        } else {
            1
        }
    }

    /// Every variant the planner can pick.
    pub fn all() -> Vec<LayerNormVariant> {
        let mut all = Vec::new();
        for input in DType::ALL {
            for output in DType::ALL {
                for vector in [true, false] {
                    let shapes = WARP_CHUNKS
                        .iter()
                        .map(|&c| (Team::Warp, c))
                        .chain(CTA_CHUNKS.iter().map(|&c| (Team::Cta, c)))
                        .filter(|&(team, c)| !(vector && team == Team::Cta && c == 16));
                    all.extend(shapes.map(|(team, chunks)| LayerNormVariant {
                        input,
                        output,
                        vector,
                        team,
                        chunks,
                    }));
                }
            }
        }
        all
    }
}

impl fmt::Display for LayerNormVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let team = match self.team {
            Team::Warp => "warp",
            Team::Cta => "cta",
        };
        write!(
            f,
            "layernorm.norm[{}->{},vec={},team={team},chunks={}]",
            self.input,
            self.output,
            self.vec_elems(),
            self.chunks
        )
    }
}

impl KernelVariant for LayerNormVariant {
    fn spec(&self) -> KernelSpec {
        let defines = vec![
            ("IN_T".into(), self.input.cuda_type().into()),
            ("OUT_T".into(), self.output.cuda_type().into()),
            ("VEC".into(), self.vec_elems().to_string()),
            ("CHUNKS".into(), self.chunks.to_string()),
            ("CTA".into(), ((self.team == Team::Cta) as u32).to_string()),
        ];
        KernelSpec::new(
            "layernorm",
            self.to_string(),
            include_str!("kernels/layernorm.cu"),
            defines,
            &[ROLE],
        )
    }
}

/// Every supported variant's spec (registered for the workspace compile test).
pub fn all_specs() -> Vec<KernelSpec> {
    LayerNormVariant::all().iter().map(|v| v.spec()).collect()
}

dsa_jit_cache::register_family!("layernorm", all_specs);
