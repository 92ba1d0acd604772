//! `dsa_indexer_prefill`, `dsa_indexer_decode` and `dsa_collective_fingerprint` reject every
//! bad argument (null or misaligned pointers, a short workspace, an out-of-range offset, the
//! wrong plan kind, a missing communicator) with `DSA_STATUS_INVALID_ARGUMENT` before touching
//! a device; valid ones reach the device layer. Runs without a GPU.

mod common;

use common::indexer::*;
use common::*;
use dsa_kernels::collective::*;
use dsa_kernels::indexer::*;
use dsa_kernels::*;
use std::ptr::{null, null_mut};

#[test]
fn prefill_rejects_bad_arguments_before_the_device() {
    let c = default_config();
    let p = prefill_plan(&c, &PREFILL);
    let ws = info(&p).workspace_bytes;
    let good = prefill_args(ws);
    let run = |a: &DsaIndexerPrefillArgs| dsa_indexer_prefill(p.0, a, null(), null_mut());
    invalid(
        dsa_indexer_prefill(null(), &good, null(), null_mut()),
        "dsa_indexer_prefill: plan is a null pointer",
    );
    invalid(
        dsa_indexer_prefill(p.0, null(), null(), null_mut()),
        "args is a null pointer",
    );
    let d = decode_plan(&c, &DECODE);
    invalid(
        dsa_indexer_prefill(d.0, &good, null(), null_mut()),
        "plan is a decode plan, not a prefill plan",
    );
    let t = tokens();
    let short = format!("smaller than the {ws} bytes the plan needs");
    let cases: Vec<(DsaIndexerPrefillArgs, &str)> = vec![
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens { q: null(), ..t },
                ..good
            },
            "args.tokens.q is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    q: addr(0x10001),
                    ..t
                },
                ..good
            },
            "args.tokens.q (0x10001) is not 2-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    weights: null(),
                    ..t
                },
                ..good
            },
            "args.tokens.weights is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    weights: addr(0x20002),
                    ..t
                },
                ..good
            },
            "args.tokens.weights (0x20002) is not 4-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens { k: null(), ..t },
                ..good
            },
            "args.tokens.k is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    ln_weight: addr(0x11001),
                    ..t
                },
                ..good
            },
            "args.tokens.ln_weight (0x11001)",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    ln_bias: addr(0x12003),
                    ..t
                },
                ..good
            },
            "args.tokens.ln_bias (0x12003)",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    positions: addr(0x40004),
                    ..t
                },
                ..good
            },
            "args.tokens.positions (0x40004) is not 8-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    cos_sin: null(),
                    ..t
                },
                ..good
            },
            "args.tokens.cos_sin is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    out_cache_loc: null(),
                    ..t
                },
                ..good
            },
            "args.tokens.out_cache_loc is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                tokens: DsaIndexerTokens {
                    cache: addr_mut(0x70008),
                    ..t
                },
                ..good
            },
            "args.tokens.cache (0x70008) is not 16-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                keys_fp8: null_mut(),
                ..good
            },
            "args.keys_fp8 is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                keys_fp8: addr_mut(0x80004),
                ..good
            },
            "args.keys_fp8 (0x80004) is not 16-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                keys_scale: null_mut(),
                ..good
            },
            "args.keys_scale is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs { ks: null(), ..good },
            "args.ks is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                ke: addr(0xb0001),
                ..good
            },
            "args.ke (0xb0001) is not 4-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                topk_offsets: addr(0xe0002),
                ..good
            },
            "args.topk_offsets (0xe0002)",
        ),
        (
            DsaIndexerPrefillArgs {
                logits: null_mut(),
                ..good
            },
            "args.logits is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                indices: addr_mut(0xd0002),
                ..good
            },
            "args.indices (0xd0002) is not 4-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                workspace: null_mut(),
                ..good
            },
            "args.workspace is a null device pointer",
        ),
        (
            DsaIndexerPrefillArgs {
                workspace: addr_mut(0x100008),
                ..good
            },
            "args.workspace (0x100008) is not 16-byte aligned",
        ),
        (
            DsaIndexerPrefillArgs {
                workspace_bytes: ws - 1,
                ..good
            },
            &short,
        ),
        (
            DsaIndexerPrefillArgs {
                new_keys_offset: -1,
                ..good
            },
            "args.new_keys_offset = -1 must be non-negative",
        ),
        (
            DsaIndexerPrefillArgs {
                new_keys_offset: 282,
                ..good
            },
            "args.new_keys_offset = 282: the 19 new keys end past the 300-row key buffer",
        ),
    ];
    for (a, needle) in &cases {
        invalid(run(a), needle);
    }
    // A verifying policy needs a communicator; without one nothing is launched.
    let verify = DsaIndexerConfig {
        policy: DsaConsistencyPolicy::Verify as i32,
        ..c
    };
    let pv = prefill_plan(&verify, &PREFILL);
    let a = prefill_args(info(&pv).workspace_bytes);
    invalid(
        dsa_indexer_prefill(pv.0, &a, null(), null_mut()),
        "consistency policy `verify` needs a communicator, but comm is a null pointer",
    );
    // Valid arguments reach the device: the last fitting offset, optional pointers given.
    expect_reaches_device(|| run(&good));
    let full = DsaIndexerPrefillArgs {
        new_keys_offset: 281,
        topk_offsets: addr(0xe0000),
        tokens: DsaIndexerTokens {
            ln_weight: addr(0x11000),
            ln_bias: addr(0x12000),
            ..t
        },
        ..good
    };
    expect_reaches_device(|| run(&full));
    // Without RoPE the table may be NULL.
    let no_rope = prefill_plan(&DsaIndexerConfig { rope_dim: 0, ..c }, &PREFILL);
    let a = DsaIndexerPrefillArgs {
        tokens: DsaIndexerTokens {
            cos_sin: null(),
            ..t
        },
        workspace_bytes: info(&no_rope).workspace_bytes,
        ..good
    };
    expect_reaches_device(|| dsa_indexer_prefill(no_rope.0, &a, null(), null_mut()));
}

#[test]
fn decode_rejects_bad_arguments_before_the_device() {
    let c = DsaIndexerConfig {
        input_dtype: DsaDtype::F32 as i32,
        ..default_config()
    };
    let p = decode_plan(&c, &DECODE);
    let ws = info(&p).workspace_bytes;
    let good = decode_args(ws);
    let run = |a: &DsaIndexerDecodeArgs| dsa_indexer_decode(p.0, a, null(), null_mut());
    invalid(
        dsa_indexer_decode(null(), &good, null(), null_mut()),
        "dsa_indexer_decode: plan is a null pointer",
    );
    invalid(
        dsa_indexer_decode(p.0, null(), null(), null_mut()),
        "args is a null pointer",
    );
    let pf = prefill_plan(&c, &PREFILL);
    invalid(
        dsa_indexer_decode(pf.0, &good, null(), null_mut()),
        "plan is a prefill plan, not a decode plan",
    );
    let t = tokens();
    let short = format!("workspace of 16 bytes is smaller than the {ws} bytes");
    let cases: Vec<(DsaIndexerDecodeArgs, &str)> = vec![
        (
            DsaIndexerDecodeArgs {
                tokens: DsaIndexerTokens {
                    q: addr(0x10002),
                    ..t
                },
                ..good
            },
            "args.tokens.q (0x10002) is not 4-byte aligned",
        ),
        (
            DsaIndexerDecodeArgs {
                tokens: DsaIndexerTokens {
                    k: addr(0x30002),
                    ..t
                },
                ..good
            },
            "args.tokens.k (0x30002) is not 4-byte aligned",
        ),
        (
            DsaIndexerDecodeArgs {
                tokens: DsaIndexerTokens {
                    positions: null(),
                    ..t
                },
                ..good
            },
            "args.tokens.positions is a null device pointer",
        ),
        (
            DsaIndexerDecodeArgs {
                tokens: DsaIndexerTokens {
                    cache: null_mut(),
                    ..t
                },
                ..good
            },
            "args.tokens.cache is a null device pointer",
        ),
        (
            DsaIndexerDecodeArgs {
                block_table: null(),
                ..good
            },
            "args.block_table is a null device pointer",
        ),
        (
            DsaIndexerDecodeArgs {
                block_table: addr(0xa0002),
                ..good
            },
            "args.block_table (0xa0002) is not 4-byte aligned",
        ),
        (
            DsaIndexerDecodeArgs {
                context_lens: null(),
                ..good
            },
            "args.context_lens is a null device pointer",
        ),
        (
            DsaIndexerDecodeArgs {
                logits: addr_mut(0xc0001),
                ..good
            },
            "args.logits (0xc0001) is not 4-byte aligned",
        ),
        (
            DsaIndexerDecodeArgs {
                indices: null_mut(),
                ..good
            },
            "args.indices is a null device pointer",
        ),
        (
            DsaIndexerDecodeArgs {
                workspace: null_mut(),
                ..good
            },
            "args.workspace is a null device pointer",
        ),
        (
            DsaIndexerDecodeArgs {
                workspace_bytes: 16,
                ..good
            },
            &short,
        ),
    ];
    for (a, needle) in &cases {
        invalid(run(a), needle);
    }
    for policy in [
        DsaConsistencyPolicy::Broadcast,
        DsaConsistencyPolicy::VerifyThenBroadcast,
    ] {
        let pc = decode_plan(
            &DsaIndexerConfig {
                policy: policy as i32,
                ..c
            },
            &DECODE,
        );
        let a = decode_args(info(&pc).workspace_bytes);
        invalid(
            dsa_indexer_decode(pc.0, &a, null(), null_mut()),
            "needs a communicator, but comm is a null pointer",
        );
    }
    expect_reaches_device(|| run(&good));
    // An empty batch still checks its pointers, then reaches the device layer.
    let empty = decode_plan(&c, &DsaIndexerDecodeShape { batch: 0, ..DECODE });
    let a = decode_args(info(&empty).workspace_bytes);
    invalid(
        dsa_indexer_decode(
            empty.0,
            &DsaIndexerDecodeArgs {
                logits: null_mut(),
                ..a
            },
            null(),
            null_mut(),
        ),
        "args.logits is a null device pointer",
    );
    expect_reaches_device(|| dsa_indexer_decode(empty.0, &a, null(), null_mut()));
}

#[test]
fn fingerprint_rejects_bad_arguments_before_the_device() {
    let mut need = 0usize;
    ok(dsa_collective_verify_workspace_bytes(4, &mut need));
    let fp = |idx: usize, rows: i64, k: i64, ws: usize, n: usize| {
        dsa_collective_fingerprint(addr(idx), rows, k, addr_mut(ws), n, null_mut())
    };
    invalid(
        fp(0, 4, 8, 0x2000, need),
        "indices is a null device pointer",
    );
    invalid(
        fp(0x1002, 4, 8, 0x2000, need),
        "indices (0x1002) is not 4-byte aligned",
    );
    invalid(fp(0x1000, 0, 8, 0x2000, need), "rows (0) and k (8)");
    invalid(fp(0x1000, 4, 0, 0x2000, need), "rows (4) and k (0)");
    invalid(fp(0x1000, -4, 8, 0x2000, need), "rows = -4");
    invalid(
        fp(0x1000, 4, 8, 0, need),
        "workspace is a null device pointer",
    );
    invalid(
        fp(0x1000, 4, 8, 0x2004, need),
        "workspace (0x2004) is not 8-byte aligned",
    );
    invalid(fp(0x1000, 4, 8, 0x2000, need - 8), "verify workspace");
    expect_reaches_device(|| fp(0x1000, 4, 8, 0x2000, need));
}
