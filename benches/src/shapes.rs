//! The shapes of the op issues: defaults of `dsa bench` and of the criterion benches.

use std::fmt;

/// A top-k shape: `rows` rows of `stride` scores, `k` kept; causal prefill rows have
/// `i + 1` candidates (row `i`), others all `stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopkShape {
    /// Rows.
    pub rows: usize,
    /// Elements per row.
    pub stride: usize,
    /// Indices kept per row.
    pub k: usize,
    /// Causal prefill (row `i` has `i + 1` candidates).
    pub causal: bool,
}

impl TopkShape {
    /// Candidates of row `i`.
    pub fn length(&self, i: usize) -> usize {
        if self.causal {
            (i + 1).min(self.stride)
        } else {
            self.stride
        }
    }
}

impl fmt::Display for TopkShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.causal {
            write!(f, "prefill{}", self.rows)
        } else {
            write!(f, "{}x{}", self.rows, self.stride)
        }
    }
}

/// The issue's default k.
pub const TOPK_K: usize = 2048;
/// Decode rows.
pub const TOPK_ROWS: [usize; 4] = [1, 8, 64, 256];
/// Decode row lengths (8K..256K).
pub const TOPK_LENGTHS: [usize; 4] = [8192, 32768, 131072, 262144];
/// Causal prefill token counts.
pub const TOPK_PREFILL: [usize; 2] = [4096, 16384];

/// Decode rows × lengths, plus `extra` (`rows x stride`) and causal prefills of `prefill` tokens.
pub fn topk_shapes(
    rows: &[usize],
    lengths: &[usize],
    extra: &[(usize, usize)],
    prefill: &[usize],
    k: usize,
) -> Vec<TopkShape> {
    let decode = rows.iter().flat_map(|&r| {
        lengths.iter().map(move |&l| TopkShape {
            rows: r,
            stride: l,
            k,
            causal: false,
        })
    });
    let extra = extra.iter().map(|&(rows, stride)| TopkShape {
        rows,
        stride,
        k,
        causal: false,
    });
    let prefill = prefill.iter().map(|&t| TopkShape {
        rows: t,
        stride: t,
        k,
        causal: true,
    });
    decode.chain(extra).chain(prefill).collect()
}

/// The issue's top-k shapes: decode {1,8,64,256} × {8K,32K,128K,256K}, 1024×8192, prefill
/// 4096 and 16384, k = 2048.
pub fn topk_default() -> Vec<TopkShape> {
    topk_shapes(
        &TOPK_ROWS,
        &TOPK_LENGTHS,
        &[(1024, 8192)],
        &TOPK_PREFILL,
        TOPK_K,
    )
}

/// A row-wise op's shape: `rows` rows of `dim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowShape {
    /// Rows.
    pub rows: usize,
    /// Row length.
    pub dim: usize,
}

impl fmt::Display for RowShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.dim)
    }
}

/// Elements per Hadamard shape: 2^27 (256 MiB of bf16 in, as much out).
const HADAMARD_ELEMS: usize = 1 << 27;

/// Hadamard: dim 128 over 1M rows (the indexer's), and dims 1024..32768 over as many elements.
pub fn hadamard_default() -> Vec<RowShape> {
    hadamard_shapes(&[128, 1024, 4096, 16384, 32768], None)
}

/// Hadamard shapes for `dims`; `rows` fixed, or 2^27 elements per shape.
pub fn hadamard_shapes(dims: &[usize], rows: Option<usize>) -> Vec<RowShape> {
    dims.iter()
        .map(|&dim| RowShape {
            rows: rows.unwrap_or((HADAMARD_ELEMS / dim.max(1)).max(1)),
            dim,
        })
        .collect()
}

/// LayerNorm: dim 128 over 1M rows and dim 7168 over 64K rows (bf16).
pub fn layernorm_default() -> Vec<RowShape> {
    vec![
        RowShape {
            rows: 1 << 20,
            dim: 128,
        },
        RowShape {
            rows: 1 << 16,
            dim: 7168,
        },
    ]
}

/// Collective verify: rows of k = 2048 indices.
pub use dsa_indexer::collective::bench::{BENCH_K as COLLECTIVE_K, BENCH_ROWS as COLLECTIVE_ROWS};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shapes_are_the_issues() {
        let t = topk_default();
        assert_eq!(t.len(), 16 + 1 + 2);
        assert_eq!(t[0].to_string(), "1x8192");
        assert_eq!(t[16].to_string(), "1024x8192");
        assert_eq!(t[18].to_string(), "prefill16384");
        assert_eq!(t[18].length(99), 100);
        assert_eq!(
            hadamard_default()[0],
            RowShape {
                rows: 1 << 20,
                dim: 128
            }
        );
        assert_eq!(layernorm_default()[1].to_string(), "65536x7168");
    }
}
