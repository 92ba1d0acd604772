//! Every variant compiles warning-free through the real NVRTC (no GPU needed), its entry symbol
//! is in the image, and the ids are unique.

use dsa_jit_cache::{Arch, CacheConfig, JitCache, KernelVariant};
use dsa_layernorm::{LayerNormVariant, all_specs, variant::ROLE};
use std::collections::HashSet;

#[test]
fn variant_ids_are_unique() {
    let all = LayerNormVariant::all();
    let ids: HashSet<String> = all.iter().map(|v| v.to_string()).collect();
    assert_eq!(ids.len(), all.len());
    assert_eq!(all.len(), all_specs().len());
    assert!(ids.contains("layernorm.norm[bf16->bf16,vec=8,team=warp,chunks=1]"));
}

#[test]
fn every_variant_compiles_without_warnings() {
    let jit = JitCache::new(CacheConfig { dir: None });
    for v in LayerNormVariant::all() {
        let spec = v.spec();
        let img = jit
            .image(&spec, Arch::SM90A)
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        assert!(img.log.is_empty(), "{v}: NVRTC log:\n{}", img.log);
        let sym = spec.symbol(ROLE);
        assert!(
            img.bytes.windows(sym.len()).any(|w| w == sym.as_bytes()),
            "{v}: entry {sym} missing"
        );
    }
}
