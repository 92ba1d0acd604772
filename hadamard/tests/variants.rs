//! Every variant compiles warning-free through the real NVRTC (no GPU needed), its entry symbol
//! is in the image, and the ids are unique.

use dsa_hadamard::{HadamardVariant, all_specs};
use dsa_jit_cache::{Arch, CacheConfig, JitCache, KernelVariant};
use std::collections::HashSet;
use std::time::Instant;

#[test]
fn variant_ids_are_unique_and_name_every_parameter() {
    let all = HadamardVariant::all();
    let ids: HashSet<String> = all.iter().map(|v| v.to_string()).collect();
    assert_eq!(ids.len(), all.len());
    assert_eq!(all.len(), all_specs().len());
    assert!(ids.contains("hadamard.fwht[bf16->bf16,n=128]"));
    assert!(ids.contains("hadamard.fwht_fp8[bf16->e4m3,n=128,scale=block128]"));
    assert!(ids.contains("hadamard.fwht[f32->f16,n=32768]"));
}

#[test]
fn every_variant_compiles_without_warnings() {
    let jit = JitCache::new(CacheConfig { dir: None });
    let start = Instant::now();
    for v in HadamardVariant::all() {
        let spec = v.spec();
        let img = jit
            .image(&spec, Arch::SM90A)
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        assert!(img.log.is_empty(), "{v}: NVRTC log:\n{}", img.log);
        let sym = spec.symbol(dsa_hadamard::variant::ROLE);
        assert!(
            img.bytes.windows(sym.len()).any(|w| w == sym.as_bytes()),
            "{v}: entry {sym} missing"
        );
    }
    eprintln!(
        "compiled {} hadamard variants in {:.1} s",
        HadamardVariant::all().len(),
        start.elapsed().as_secs_f64()
    );
}
