//! The paged index-key cache layout (sglang's `index_k_with_scale_buffer`).

/// Geometry of the paged index-key cache: `pages` pages of `page_bytes()` bytes each.
///
/// Page `p` starts at byte `p * page_size * (dim + 4)` and holds, in this order:
/// 1. `page_size` keys of `dim` FP8 e4m3 bytes, slot-major (`[page_size, dim]` u8);
/// 2. `page_size` f32 scales, one per slot (`[page_size]` f32, little-endian).
///
/// A token at cache slot `loc` sits in page `loc / page_size`, slot `loc % page_size`. This is
/// sglang's per-layer `index_k_with_scale_buffer` (uint8 `[num_pages, page_size * (D + D/128 * 4)]`
/// with `quant_block_size = 128`, so one scale per key for `D <= 128`), which DeepGEMM's
/// `fp8_paged_mqa_logits` reads as `[num_pages, page_size, 1, D + 4]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheLayout {
    /// Tokens per page.
    pub page_size: usize,
    /// Bytes per key (the head dim).
    pub dim: usize,
}

impl CacheLayout {
    /// Bytes of one page.
    pub fn page_bytes(&self) -> usize {
        self.page_size * (self.dim + 4)
    }

    /// Byte offset of the FP8 key of cache slot `loc`.
    pub fn key_offset(&self, loc: usize) -> usize {
        let (page, slot) = (loc / self.page_size, loc % self.page_size);
        page * self.page_bytes() + slot * self.dim
    }

    /// Byte offset of the f32 scale of cache slot `loc`.
    pub fn scale_offset(&self, loc: usize) -> usize {
        let (page, slot) = (loc / self.page_size, loc % self.page_size);
        page * self.page_bytes() + self.page_size * self.dim + 4 * slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sglang_page_layout_by_hand() {
        let l = CacheLayout {
            page_size: 64,
            dim: 128,
        };
        assert_eq!(l.page_bytes(), 8448);
        assert_eq!(l.key_offset(0), 0);
        assert_eq!(l.key_offset(1), 128);
        assert_eq!(l.scale_offset(0), 8192);
        assert_eq!(l.scale_offset(63), 8192 + 252);
        assert_eq!(l.key_offset(64), 8448);
        assert_eq!(l.scale_offset(65), 8448 + 8192 + 4);
        // Keys and scales of a page tile it exactly.
        let mut used = vec![0u8; l.page_bytes()];
        for s in 0..64 {
            used[l.key_offset(s)..][..128]
                .iter_mut()
                .for_each(|b| *b += 1);
            used[l.scale_offset(s)..][..4]
                .iter_mut()
                .for_each(|b| *b += 1);
        }
        assert!(used.iter().all(|&b| b == 1));
    }
}
