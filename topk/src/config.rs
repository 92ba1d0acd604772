//! What a top-k computes: dtype, k, tie-break, output order and the fused transform.

use std::fmt;

/// The largest `k` supported.
pub const MAX_K: usize = 4096;

/// Element type of the score rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScoreDtype {
    /// 32-bit float.
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
}

impl ScoreDtype {
    /// Every dtype.
    pub const ALL: [ScoreDtype; 3] = [ScoreDtype::F32, ScoreDtype::Bf16, ScoreDtype::F16];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ScoreDtype::F32 => 4,
            ScoreDtype::Bf16 | ScoreDtype::F16 => 2,
        }
    }

    /// Elements per 16-byte load.
    pub fn per_vector(self) -> usize {
        16 / self.size()
    }

    /// The prelude's storage type.
    pub(crate) fn cuda_type(self) -> &'static str {
        match self {
            ScoreDtype::F32 => "float",
            ScoreDtype::Bf16 => "dsa::bf16",
            ScoreDtype::F16 => "dsa::f16",
        }
    }
}

impl fmt::Display for ScoreDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScoreDtype::F32 => "f32",
            ScoreDtype::Bf16 => "bf16",
            ScoreDtype::F16 => "f16",
        })
    }
}

/// Which of two equal scores ranks higher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TieBreak {
    /// The smaller index (the default).
    #[default]
    Small,
    /// The larger index.
    Large,
}

/// Order of each output row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OutputOrder {
    /// Ascending index (the default).
    #[default]
    Index,
    /// By the total order: largest score first, ties by the tie-break.
    Sorted,
}

/// How an output row's requests are found for the paged transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestMap {
    /// `req(i) = request_of_row[i]` (one i32 per row).
    PerRow,
    /// `req(i)` is the `r` with `cu_seqlens_q[r] <= i < cu_seqlens_q[r+1]`.
    CuSeqlens,
}

/// An index transform fused into the output write.
///
/// Ragged costs about nothing over no transform. Paged gathers one page-table entry per kept
/// index after the select, so its cost grows with the page table's share of the bytes. A short
/// segment's page-table span is prefetched into L2 while the scores load.
/// BENCHMARKS.md (session 8) has the measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transform {
    /// `out = idx`.
    #[default]
    None,
    /// `out = idx + offsets[i]`.
    Ragged,
    /// `out = page_table[req(i)][idx / P] * P + idx % P`, `P = page_size` (a power of two).
    Paged {
        /// Tokens per page, a power of two.
        page_size: u32,
        /// How rows map to requests.
        requests: RequestMap,
    },
}

/// Everything that defines a top-k's result (besides the data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopkConfig {
    /// Indices kept per row, `1..=MAX_K`.
    pub k: usize,
    /// Score element type.
    pub dtype: ScoreDtype,
    /// Tie-break between equal scores.
    pub tie_break: TieBreak,
    /// Output order.
    pub order: OutputOrder,
    /// Fused transform of the output indices.
    pub transform: Transform,
}

impl TopkConfig {
    /// `k` over f32 scores with the defaults: tie small, ascending index, no transform.
    pub fn new(k: usize) -> Self {
        TopkConfig {
            k,
            dtype: ScoreDtype::F32,
            tie_break: TieBreak::Small,
            order: OutputOrder::Index,
            transform: Transform::None,
        }
    }

    /// With another score dtype.
    pub fn dtype(mut self, dtype: ScoreDtype) -> Self {
        self.dtype = dtype;
        self
    }

    /// With another tie-break.
    pub fn tie_break(mut self, tie_break: TieBreak) -> Self {
        self.tie_break = tie_break;
        self
    }

    /// With another output order.
    pub fn order(mut self, order: OutputOrder) -> Self {
        self.order = order;
        self
    }

    /// With a fused transform.
    pub fn transform(mut self, transform: Transform) -> Self {
        self.transform = transform;
        self
    }
}
