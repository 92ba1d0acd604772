//! Indexer plans and argument structs with fake device addresses for the boundary tests.

use super::*;
use dsa_kernels::indexer::*;
use std::ptr::{null, null_mut};

pub fn default_config() -> DsaIndexerConfig {
    let mut c = DsaIndexerConfig::default();
    ok(dsa_indexer_config_default(&mut c));
    c
}

pub const PREFILL: DsaIndexerPrefillShape = DsaIndexerPrefillShape {
    tokens: 19,
    num_keys: 300,
    stride: 301,
    max_positions: 4096,
    cache_pages: 8,
};

pub const DECODE: DsaIndexerDecodeShape = DsaIndexerDecodeShape {
    batch: 7,
    stride: 5000,
    bt_stride: 100,
    max_positions: 8192,
    cache_pages: 600,
};

/// A plan destroyed when dropped.
pub struct Plan(pub *mut DsaIndexerPlan);

impl Drop for Plan {
    fn drop(&mut self) {
        ok(dsa_indexer_plan_destroy(self.0));
    }
}

pub fn prefill_plan(c: &DsaIndexerConfig, s: &DsaIndexerPrefillShape) -> Plan {
    let mut p = null_mut();
    ok(dsa_indexer_prefill_plan_create_for(c, s, &H100, &mut p));
    Plan(p)
}

pub fn decode_plan(c: &DsaIndexerConfig, s: &DsaIndexerDecodeShape) -> Plan {
    let mut p = null_mut();
    ok(dsa_indexer_decode_plan_create_for(c, s, &H100, &mut p));
    Plan(p)
}

pub fn info(p: &Plan) -> DsaIndexerPlanInfo {
    let mut i = DsaIndexerPlanInfo::default();
    ok(dsa_indexer_plan_info(p.0, &mut i));
    i
}

pub fn tokens() -> DsaIndexerTokens {
    DsaIndexerTokens {
        q: addr(0x10000),
        weights: addr(0x20000),
        k: addr(0x30000),
        ln_weight: null(),
        ln_bias: null(),
        positions: addr(0x40000),
        cos_sin: addr(0x50000),
        out_cache_loc: addr(0x60000),
        cache: addr_mut(0x70000),
    }
}

pub fn prefill_args(ws_bytes: usize) -> DsaIndexerPrefillArgs {
    DsaIndexerPrefillArgs {
        tokens: tokens(),
        keys_fp8: addr_mut(0x80000),
        keys_scale: addr_mut(0x90000),
        new_keys_offset: 0,
        ks: addr(0xa0000),
        ke: addr(0xb0000),
        topk_offsets: null(),
        logits: addr_mut(0xc0000),
        indices: addr_mut(0xd0000),
        workspace: addr_mut(0x100000),
        workspace_bytes: ws_bytes,
    }
}

pub fn decode_args(ws_bytes: usize) -> DsaIndexerDecodeArgs {
    DsaIndexerDecodeArgs {
        tokens: tokens(),
        block_table: addr(0xa0000),
        context_lens: addr(0xb0000),
        logits: addr_mut(0xc0000),
        indices: addr_mut(0xd0000),
        workspace: addr_mut(0x100000),
        workspace_bytes: ws_bytes,
    }
}
