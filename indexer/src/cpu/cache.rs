//! A host copy of the paged index-key cache.

use super::fp8::Quantized;
use crate::layout::CacheLayout;

/// `pages` pages in the [`CacheLayout`] byte layout.
#[derive(Clone, Debug, PartialEq)]
pub struct PagedCache {
    /// The raw bytes, as on the device.
    pub bytes: Vec<u8>,
    /// The geometry.
    pub layout: CacheLayout,
}

impl PagedCache {
    /// A cache of `pages` pages filled with `fill`.
    pub fn new(layout: CacheLayout, pages: usize, fill: u8) -> Self {
        PagedCache {
            bytes: vec![fill; pages * layout.page_bytes()],
            layout,
        }
    }

    /// Wraps bytes read back from the device.
    pub fn from_bytes(layout: CacheLayout, bytes: Vec<u8>) -> Self {
        PagedCache { bytes, layout }
    }

    /// Pages.
    pub fn pages(&self) -> usize {
        self.bytes.len() / self.layout.page_bytes()
    }

    /// Slots (`pages * page_size`).
    pub fn slots(&self) -> usize {
        self.pages() * self.layout.page_size
    }

    /// Stores row `r` of `keys` at slot `loc`; a slot outside the cache (negative included) is
    /// skipped, as on the device.
    pub fn store(&mut self, loc: i64, keys: &Quantized, r: usize) {
        if loc < 0 || loc as usize >= self.slots() {
            return;
        }
        let (k, s) = (
            self.layout.key_offset(loc as usize),
            self.layout.scale_offset(loc as usize),
        );
        self.bytes[k..k + self.layout.dim].copy_from_slice(keys.row(r));
        self.bytes[s..s + 4].copy_from_slice(&keys.scales[r].to_le_bytes());
    }

    /// The FP8 key and scale at slot `loc` (inside the cache).
    pub fn key(&self, loc: usize) -> (&[u8], f32) {
        let (k, s) = (self.layout.key_offset(loc), self.layout.scale_offset(loc));
        let scale = f32::from_le_bytes(self.bytes[s..s + 4].try_into().unwrap_or([0; 4]));
        (&self.bytes[k..k + self.layout.dim], scale)
    }

    /// The first `len` keys of a request, gathered through its block-table row into
    /// contiguous rows (every page must be valid).
    pub fn gather(&self, table_row: &[i32], len: usize) -> Quantized {
        let p = self.layout.page_size;
        let mut out = Quantized::default();
        for s in 0..len {
            let (codes, scale) = self.key(table_row[s / p] as usize * p + s % p);
            out.push(codes, scale);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_read_back_and_skip_outside_slots() {
        let layout = CacheLayout {
            page_size: 4,
            dim: 8,
        };
        let mut cache = PagedCache::new(layout, 3, 0xaa);
        let keys = Quantized {
            codes: (0..16).collect(),
            scales: vec![0.5, 2.0],
        };
        cache.store(5, &keys, 1);
        cache.store(-1, &keys, 0);
        cache.store(12, &keys, 0);
        assert_eq!(cache.key(5), (&[8u8, 9, 10, 11, 12, 13, 14, 15][..], 2.0));
        assert_eq!(cache.bytes.iter().filter(|&&b| b != 0xaa).count(), 8 + 4);
        // Page 1 slot 1: bytes 48 + 8 .. and scale at 48 + 32 + 4.
        assert_eq!(cache.bytes[56], 8);
        assert_eq!(&cache.bytes[84..88], &2.0f32.to_le_bytes());
        let g = cache.gather(&[2, 1], 6);
        assert_eq!(g.scales.len(), 6);
        assert_eq!(g.row(5), &[8, 9, 10, 11, 12, 13, 14, 15]);
    }
}
