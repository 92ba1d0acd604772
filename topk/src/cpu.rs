//! The CPU reference: the contract implemented literally (sort each row by the total order).
//! It is the test oracle and a debug backend.

use crate::config::{OutputOrder, RequestMap, TieBreak, TopkConfig, Transform};
use std::cmp::Ordering;

/// The order key of a score: larger score, larger key; `-0.0 == +0.0`; every NaN is one value
/// ranked above `+inf`. The total order of the contract compares these keys, then indices.
pub fn order_key(x: f32) -> u32 {
    let mut b = x.to_bits();
    if (b & 0x7fff_ffff) > 0x7f80_0000 {
        b = 0x7fff_ffff;
    }
    if b == 0x8000_0000 {
        b = 0;
    }
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Host-side data of the fused transform (mirrors [`Transform`]).
#[derive(Clone, Copy, Debug)]
pub enum TransformData<'a> {
    /// No transform.
    None,
    /// Per-row offsets.
    Ragged {
        /// `offsets[row]`.
        offsets: &'a [i32],
    },
    /// Page table lookup.
    Paged {
        /// `[num_requests][stride]`, of which `cols` columns are valid.
        page_table: &'a [i32],
        /// Entries between page-table rows.
        stride: usize,
        /// Valid columns per row.
        cols: usize,
        /// Rows of the page table.
        num_requests: usize,
        /// `request_of_row` (PerRow) or `cu_seqlens_q` (CuSeqlens, `num_requests + 1` entries).
        rows_to_requests: &'a [i32],
    },
}

/// Inputs of [`topk`]: `scores` is `[rows, stride]` (bf16/f16 callers convert to f32, which is
/// exact); `lengths[rows]`; optional `row_starts[rows]`.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// Row-major scores.
    pub scores: &'a [f32],
    /// Elements between rows.
    pub stride: usize,
    /// Candidates per row (clamped to `[0, stride - start]`).
    pub lengths: &'a [i32],
    /// First candidate of each row (clamped to `[0, stride]`); `None` is all zeros.
    pub row_starts: Option<&'a [i32]>,
}

/// `[rows, k]` indices as the contract defines them.
pub fn topk(input: &Inputs, config: &TopkConfig, transform: &TransformData) -> Vec<i32> {
    let rows = input.lengths.len();
    let k = config.k;
    let mut out = Vec::with_capacity(rows * k);
    for row in 0..rows {
        let (start, len) = window(input, row);
        let values = &input.scores[row * input.stride + start..][..len];
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|&a, &b| rank(values, a, b, config.tie_break));
        order.truncate(k);
        if config.order == OutputOrder::Index {
            order.sort_unstable();
        }
        let req = request_of(row, config, transform);
        out.extend(
            order
                .iter()
                .map(|&j| map_index(j as i32, row, req, config, transform)),
        );
        out.extend(std::iter::repeat_n(-1, k - order.len()));
    }
    out
}

/// The row's candidate window after clamping: start in `[0, stride]`, length in
/// `[0, stride - start]`.
pub fn window(input: &Inputs, row: usize) -> (usize, usize) {
    let stride = input.stride as i64;
    let start = input
        .row_starts
        .map_or(0, |s| s[row] as i64)
        .clamp(0, stride);
    let len = (input.lengths[row] as i64).clamp(0, stride - start);
    (start as usize, len as usize)
}

/// The total order: `Less` means `a` ranks before (above) `b`.
fn rank(values: &[f32], a: usize, b: usize, tie: TieBreak) -> Ordering {
    let by_value = order_key(values[b]).cmp(&order_key(values[a]));
    by_value.then(match tie {
        TieBreak::Small => a.cmp(&b),
        TieBreak::Large => b.cmp(&a),
    })
}

fn request_of(row: usize, config: &TopkConfig, t: &TransformData) -> Option<usize> {
    let (
        Transform::Paged { requests, .. },
        TransformData::Paged {
            rows_to_requests,
            num_requests,
            ..
        },
    ) = (config.transform, t)
    else {
        return None;
    };
    let r = match requests {
        RequestMap::PerRow => rows_to_requests[row] as i64,
        RequestMap::CuSeqlens => {
            let cu = &rows_to_requests[..=*num_requests];
            match (0..*num_requests)
                .find(|&r| (cu[r] as i64) <= row as i64 && (row as i64) < cu[r + 1] as i64)
            {
                Some(r) => r as i64,
                None => -1,
            }
        }
    };
    (0..*num_requests as i64).contains(&r).then_some(r as usize)
}

fn map_index(
    idx: i32,
    row: usize,
    req: Option<usize>,
    config: &TopkConfig,
    t: &TransformData,
) -> i32 {
    match (config.transform, t) {
        (Transform::Ragged, TransformData::Ragged { offsets }) => idx + offsets[row],
        (
            Transform::Paged { page_size, .. },
            TransformData::Paged {
                page_table,
                stride,
                cols,
                ..
            },
        ) => {
            let page = idx as usize / page_size as usize;
            match req {
                Some(r) if page < *cols => {
                    let entry = page_table[r * stride + page];
                    if entry < 0 {
                        -1
                    } else {
                        entry * page_size as i32 + idx % page_size as i32
                    }
                }
                _ => -1,
            }
        }
        _ => idx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScoreDtype;

    fn run(scores: &[f32], len: i32, k: usize, tie: TieBreak, order: OutputOrder) -> Vec<i32> {
        let input = Inputs {
            scores,
            stride: scores.len(),
            lengths: &[len],
            row_starts: None,
        };
        let cfg = TopkConfig::new(k).tie_break(tie).order(order);
        topk(&input, &cfg, &TransformData::None)
    }

    #[test]
    fn order_key_is_monotone_and_canonical() {
        let xs = [
            f32::NEG_INFINITY,
            -1e30,
            -1.0,
            -1e-40,
            0.0,
            1e-40,
            1.0,
            1e30,
            f32::INFINITY,
            f32::NAN,
        ];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
        assert_eq!(order_key(-f32::NAN), order_key(f32::NAN));
        assert_eq!(order_key(f32::from_bits(0x7f80_0001)), order_key(f32::NAN));
    }

    #[test]
    fn ties_by_index_and_both_orders() {
        let s = [1.0, 3.0, 3.0, 2.0, 3.0, f32::NAN, -0.0, 0.0];
        assert_eq!(
            run(&s, 8, 3, TieBreak::Small, OutputOrder::Sorted),
            vec![5, 1, 2]
        );
        assert_eq!(
            run(&s, 8, 3, TieBreak::Large, OutputOrder::Sorted),
            vec![5, 4, 2]
        );
        assert_eq!(
            run(&s, 8, 3, TieBreak::Large, OutputOrder::Index),
            vec![2, 4, 5]
        );
        // -0.0 and +0.0 are equal: the tie-break alone orders them.
        let z = [-0.0, 0.0];
        assert_eq!(run(&z, 2, 1, TieBreak::Small, OutputOrder::Index), vec![0]);
        assert_eq!(run(&z, 2, 1, TieBreak::Large, OutputOrder::Index), vec![1]);
    }

    #[test]
    fn short_rows_pad_with_minus_one_and_lengths_clamp() {
        let s = [5.0, 4.0, 3.0];
        assert_eq!(
            run(&s, 2, 4, TieBreak::Small, OutputOrder::Index),
            vec![0, 1, -1, -1]
        );
        assert_eq!(
            run(&s, 99, 4, TieBreak::Small, OutputOrder::Sorted),
            vec![0, 1, 2, -1]
        );
        assert_eq!(
            run(&s, -5, 2, TieBreak::Small, OutputOrder::Index),
            vec![-1, -1]
        );
    }

    #[test]
    fn row_starts_and_transforms() {
        // Two rows of stride 4; row 1 starts at 1 with 3 candidates.
        let s = [0.0, 9.0, 1.0, 8.0, /**/ 7.0, 1.0, 5.0, 6.0];
        let input = Inputs {
            scores: &s,
            stride: 4,
            lengths: &[4, 9],
            row_starts: Some(&[0, 1]),
        };
        let plain = topk(&input, &TopkConfig::new(2), &TransformData::None);
        assert_eq!(plain, vec![1, 3, 1, 2]);
        let ragged = topk(
            &input,
            &TopkConfig::new(2).transform(Transform::Ragged),
            &TransformData::Ragged {
                offsets: &[100, 200],
            },
        );
        assert_eq!(ragged, vec![101, 103, 201, 202]);
        // Page size 2; request 0 owns pages [10, 11], request 1 pages [20, -1].
        let table = [10, 11, 20, -1];
        for (requests, map) in [
            (RequestMap::PerRow, vec![0, 1]),
            (RequestMap::CuSeqlens, vec![0, 1, 2]),
        ] {
            let cfg = TopkConfig::new(2)
                .dtype(ScoreDtype::F32)
                .transform(Transform::Paged {
                    page_size: 2,
                    requests,
                });
            let data = TransformData::Paged {
                page_table: &table,
                stride: 2,
                cols: 2,
                num_requests: 2,
                rows_to_requests: &map,
            };
            // Row 0: idx 1 -> page 0 (10) -> 21; idx 3 -> page 1 (11) -> 23.
            // Row 1: idx 1 -> page 0 (20) -> 41; idx 2 -> page 1 (-1) -> -1.
            assert_eq!(
                topk(&input, &cfg, &data),
                vec![21, 23, 41, -1],
                "{requests:?}"
            );
        }
    }
}
