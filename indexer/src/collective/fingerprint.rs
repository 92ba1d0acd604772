//! The row fingerprint: the contract and its CPU reference (bit-exact with `verify.cu`).
//!
//! A row of `k` indices `v[0..k]` (i32) has the 64-bit fingerprint
//!
//! ```text
//! term(j, v) = mix64((j as u64) << 32 | (v as u32 as u64))
//! fp(row)    = mix64(wrapping_sum_j term(j, v[j]) ^ k)
//! ```
//!
//! where `mix64` is the SplitMix64 finaliser applied to `x + 0x9E3779B97F4A7C15`, a bijection
//! of `u64`. Properties the tests pin down:
//! 1. **Order-sensitive:** each term hashes the position with the value, so the same indices in
//!    another order give another fingerprint (with probability 1 - 2^-64 per swap).
//! 2. **A single changed index always changes the fingerprint:** for a fixed position the term
//!    is a bijection of the value, and the sum and the final `mix64` are bijections of one term.
//! 3. **Deterministic and parallel:** the wrapping sum is associative and commutative, so a GPU
//!    block may add terms in any order and still be bit-exact with this reference.
//!
//! Cross-rank comparison: every rank writes `fp` and `!fp` per row into one packed buffer and a
//! single NCCL `MIN` all-reduce gives `min(fp)` and `!max(fp)`; a row differs on some rank iff
//! `min != max`.

/// SplitMix64's finaliser on `x + golden ratio`: a bijection with full avalanche.
pub const fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The term of index `value` at position `pos` in its row.
pub const fn term(pos: u32, value: i32) -> u64 {
    mix64(((pos as u64) << 32) | (value as u32 as u64))
}

/// The fingerprint of one row of indices.
pub fn fingerprint_row(row: &[i32]) -> u64 {
    let sum = row
        .iter()
        .enumerate()
        .fold(0u64, |acc, (j, &v)| acc.wrapping_add(term(j as u32, v)));
    mix64(sum ^ row.len() as u64)
}

/// Fingerprints of every row of a row-major `[rows, k]` index matrix. `k == 0` gives no rows.
pub fn fingerprint_rows(indices: &[i32], k: usize) -> Vec<u64> {
    if k == 0 {
        return Vec::new();
    }
    indices.chunks_exact(k).map(fingerprint_row).collect()
}

/// The packed all-reduce buffer one rank contributes: `[fp_0..fp_{r-1}, !fp_0..!fp_{r-1}]`.
pub fn packed(fingerprints: &[u64]) -> Vec<u64> {
    fingerprints
        .iter()
        .copied()
        .chain(fingerprints.iter().map(|f| !f))
        .collect()
}

/// What `MIN` all-reduce does to the ranks' packed buffers (the reference for NCCL and for the
/// simulated-ranks kernel).
pub fn min_reduce(ranks: &[Vec<u64>]) -> Vec<u64> {
    let n = ranks.first().map_or(0, Vec::len);
    (0..n)
        .map(|i| ranks.iter().map(|r| r[i]).min().unwrap_or(0))
        .collect()
}

/// The rows whose fingerprints differ across ranks, read from a reduced packed buffer.
pub fn mismatched_rows(reduced: &[u64]) -> Vec<u32> {
    let rows = reduced.len() / 2;
    (0..rows)
        .filter(|&i| reduced[i] != !reduced[rows + i])
        .map(|i| i as u32)
        .collect()
}

/// Reference of the whole verification over simulated ranks: the rows where any two ranks'
/// `[rows, k]` index matrices differ, as the fingerprints see it.
pub fn reference_mismatches(ranks: &[&[i32]], k: usize) -> Vec<u32> {
    let packs: Vec<Vec<u64>> = ranks
        .iter()
        .map(|r| packed(&fingerprint_rows(r, k)))
        .collect();
    mismatched_rows(&min_reduce(&packs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_rows(rows: usize, k: usize, seed: u64) -> Vec<i32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..rows * k)
            .map(|_| rng.random_range(-1..100_000))
            .collect()
    }

    #[test]
    fn mix64_is_a_bijection_on_a_sample_and_has_no_fixed_zero() {
        assert_ne!(mix64(0), 0);
        let mut seen: Vec<u64> = (0..100_000u64).map(mix64).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100_000);
    }

    #[test]
    fn fingerprint_is_order_sensitive() {
        let row: Vec<i32> = (0..2048).map(|i| i * 7 + 3).collect();
        let mut swapped = row.clone();
        swapped.swap(10, 11);
        assert_ne!(fingerprint_row(&row), fingerprint_row(&swapped));
        let mut reversed = row.clone();
        reversed.reverse();
        assert_ne!(fingerprint_row(&row), fingerprint_row(&reversed));
        // Same multiset, rotated.
        let mut rotated = row.clone();
        rotated.rotate_left(1);
        assert_ne!(fingerprint_row(&row), fingerprint_row(&rotated));
    }

    #[test]
    fn a_single_changed_index_always_changes_the_fingerprint() {
        let row = random_rows(1, 257, 1);
        let base = fingerprint_row(&row);
        for pos in [0usize, 1, 128, 256] {
            for delta in [1i32, -1, 1 << 20, i32::MIN] {
                let mut r = row.clone();
                r[pos] = r[pos].wrapping_add(delta);
                assert_ne!(fingerprint_row(&r), base, "pos {pos} delta {delta}");
            }
        }
        // Padding value -1 versus a real index 0 at the tail.
        let mut a = vec![5, 9, -1];
        let b = fingerprint_row(&a);
        a[2] = 0;
        assert_ne!(fingerprint_row(&a), b);
    }

    #[test]
    fn length_is_part_of_the_fingerprint() {
        assert_ne!(fingerprint_row(&[1, 2, 3]), fingerprint_row(&[1, 2, 3, 0]));
        assert_ne!(fingerprint_row(&[]), fingerprint_row(&[0]));
    }

    #[test]
    fn packed_min_reduce_finds_exactly_the_differing_rows() {
        let (rows, k) = (19, 33);
        let a = random_rows(rows, k, 7);
        let mut b = a.clone();
        let mut c = a.clone();
        b[3 * k + 5] += 1; // row 3 differs on rank 1
        c.swap(11 * k, 11 * k + 1); // row 11 differs in order only on rank 2
        c[18 * k + k - 1] = -1; // row 18 differs on rank 2
        assert_eq!(reference_mismatches(&[&a, &a], k), Vec::<u32>::new());
        assert_eq!(reference_mismatches(&[&a, &b], k), vec![3]);
        assert_eq!(reference_mismatches(&[&a, &b, &c], k), vec![3, 11, 18]);
        // One rank only: never a mismatch.
        assert!(reference_mismatches(&[&c], k).is_empty());
    }

    #[test]
    fn packed_layout_is_fingerprint_then_complement() {
        let p = packed(&[1, 2]);
        assert_eq!(p, vec![1, 2, !1, !2]);
    }
}
