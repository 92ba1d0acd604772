//! The indexer's C entry points (and the communicator-free fingerprint) reject every bad
//! argument with `DSA_STATUS_INVALID_ARGUMENT` and a message naming it, before touching a
//! device; host-only queries agree with the Rust plans. Runs without a GPU; on a machine with
//! one, the cases whose arguments are valid are skipped.

mod common;

use common::*;
use dsa_indexer::collective::ConsistencyPolicy;
use dsa_indexer::{DecodeShape, Indexer, IndexerConfig, PrefillShape};
use dsa_jit_cache::DeviceInfo;
use dsa_kernels::collective::*;
use dsa_kernels::indexer::*;
use dsa_kernels::*;
use std::ptr::{null, null_mut};

fn default_config() -> DsaIndexerConfig {
    let mut c = DsaIndexerConfig::default();
    ok(dsa_indexer_config_default(&mut c));
    c
}

const PREFILL: DsaIndexerPrefillShape = DsaIndexerPrefillShape {
    tokens: 19,
    num_keys: 300,
    stride: 301,
    max_positions: 4096,
    cache_pages: 8,
};

const DECODE: DsaIndexerDecodeShape = DsaIndexerDecodeShape {
    batch: 7,
    stride: 5000,
    bt_stride: 100,
    max_positions: 8192,
    cache_pages: 600,
};

/// A plan destroyed when dropped.
struct Plan(*mut DsaIndexerPlan);

impl Drop for Plan {
    fn drop(&mut self) {
        ok(dsa_indexer_plan_destroy(self.0));
    }
}

fn prefill_plan(c: &DsaIndexerConfig, s: &DsaIndexerPrefillShape) -> Plan {
    let mut p = null_mut();
    ok(dsa_indexer_prefill_plan_create_for(c, s, &H100, &mut p));
    Plan(p)
}

fn decode_plan(c: &DsaIndexerConfig, s: &DsaIndexerDecodeShape) -> Plan {
    let mut p = null_mut();
    ok(dsa_indexer_decode_plan_create_for(c, s, &H100, &mut p));
    Plan(p)
}

fn info(p: &Plan) -> DsaIndexerPlanInfo {
    let mut i = DsaIndexerPlanInfo::default();
    ok(dsa_indexer_plan_info(p.0, &mut i));
    i
}

fn tokens() -> DsaIndexerTokens {
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

fn prefill_args(ws_bytes: usize) -> DsaIndexerPrefillArgs {
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

fn decode_args(ws_bytes: usize) -> DsaIndexerDecodeArgs {
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

#[test]
fn config_default_is_deepseek_v32() {
    let c = default_config();
    assert_eq!(
        (c.heads, c.dim, c.rope_dim, c.page_size, c.k),
        (64, 128, 64, 64, 2048)
    );
    assert_eq!(c.input_dtype, DsaDtype::Bf16 as i32);
    assert_eq!(
        (c.rope_style, c.scale_format, c.policy),
        (
            DsaRopeStyle::Neox as i32,
            DsaScaleFormat::F32 as i32,
            DsaConsistencyPolicy::None as i32
        )
    );
    assert_eq!(c.eps, 1e-6);
    invalid(
        dsa_indexer_config_default(null_mut()),
        "config_out is a null pointer",
    );
    invalid(
        dsa_indexer_config_default(0x1002 as *mut DsaIndexerConfig),
        "4-byte aligned",
    );
}

#[test]
fn plan_create_rejects_bad_configs_shapes_and_pointers() {
    let c = default_config();
    let mut out = null_mut();
    let pf = |c: &DsaIndexerConfig, s: &DsaIndexerPrefillShape, out: &mut *mut DsaIndexerPlan| {
        dsa_indexer_prefill_plan_create_for(c, s, &H100, out)
    };
    let dc = |c: &DsaIndexerConfig, s: &DsaIndexerDecodeShape, out: &mut *mut DsaIndexerPlan| {
        dsa_indexer_decode_plan_create_for(c, s, &H100, out)
    };
    invalid(
        dsa_indexer_prefill_plan_create_for(null(), &PREFILL, &H100, &mut out),
        "config is a null pointer",
    );
    invalid(
        dsa_indexer_prefill_plan_create_for(&c, null(), &H100, &mut out),
        "shape is a null pointer",
    );
    invalid(
        dsa_indexer_prefill_plan_create_for(&c, &PREFILL, null(), &mut out),
        "device is a null pointer",
    );
    invalid(
        dsa_indexer_prefill_plan_create_for(&c, &PREFILL, &H100, null_mut()),
        "plan_out is a null pointer",
    );
    invalid(
        dsa_indexer_decode_plan_create_for(&c, &DECODE, &H100, 0x1004 as *mut _),
        "plan_out (0x1004) is not 8-byte aligned",
    );
    invalid(
        dsa_indexer_decode_plan_create_for(null(), &DECODE, &H100, &mut out),
        "config is a null pointer",
    );
    invalid(
        dsa_indexer_decode_plan_create_for(&c, null(), &H100, &mut out),
        "shape is a null pointer",
    );
    let bad_configs = [
        (
            DsaIndexerConfig { dim: 96, ..c },
            "dim 96 is not one of [64, 128]",
        ),
        (DsaIndexerConfig { heads: 24, ..c }, "heads 24 must be"),
        (DsaIndexerConfig { heads: 128, ..c }, "heads 128 must be"),
        (DsaIndexerConfig { heads: -16, ..c }, "config.heads = -16"),
        (DsaIndexerConfig { rope_dim: 66, ..c }, "rope_dim 66"),
        (DsaIndexerConfig { page_size: 2, ..c }, "page size 2"),
        (DsaIndexerConfig { page_size: 48, ..c }, "page size 48"),
        (DsaIndexerConfig { k: 0, ..c }, "k = 0 is outside 1..=4096"),
        (DsaIndexerConfig { k: 4097, ..c }, "k = 4097"),
        (DsaIndexerConfig { eps: f32::NAN, ..c }, "eps NaN"),
        (DsaIndexerConfig { eps: -1.0, ..c }, "eps -1"),
        (
            DsaIndexerConfig {
                input_dtype: DsaDtype::Fp8E4m3 as i32,
                ..c
            },
            "config.input_dtype cannot be FP8",
        ),
        (
            DsaIndexerConfig {
                input_dtype: 9,
                ..c
            },
            "config.input_dtype = 9 is not a valid value",
        ),
        (
            DsaIndexerConfig { rope_style: 2, ..c },
            "config.rope_style = 2",
        ),
        (
            DsaIndexerConfig {
                scale_format: -1,
                ..c
            },
            "config.scale_format = -1",
        ),
        (DsaIndexerConfig { policy: 4, ..c }, "config.policy = 4"),
        (DsaIndexerConfig::default(), "dim 0 is not one of"),
    ];
    for (cfg, needle) in bad_configs {
        invalid(pf(&cfg, &PREFILL, &mut out), needle);
        invalid(dc(&cfg, &DECODE, &mut out), needle);
        assert!(out.is_null(), "no plan on failure");
    }
    let bad_prefill = [
        (
            DsaIndexerPrefillShape {
                tokens: -1,
                ..PREFILL
            },
            "shape.tokens = -1 must be non-negative",
        ),
        (
            DsaIndexerPrefillShape {
                tokens: 301,
                ..PREFILL
            },
            "shape.tokens = 301 new keys do not fit in shape.num_keys = 300",
        ),
        (
            DsaIndexerPrefillShape {
                stride: 299,
                ..PREFILL
            },
            "logit stride 299 is smaller than the 300 keys",
        ),
        (
            DsaIndexerPrefillShape {
                max_positions: 0,
                ..PREFILL
            },
            "the RoPE table has no rows",
        ),
        (
            DsaIndexerPrefillShape {
                cache_pages: -3,
                ..PREFILL
            },
            "shape.cache_pages = -3",
        ),
    ];
    for (s, needle) in bad_prefill {
        invalid(pf(&c, &s, &mut out), needle);
    }
    let bad_decode = [
        (
            DsaIndexerDecodeShape {
                batch: -2,
                ..DECODE
            },
            "shape.batch = -2",
        ),
        (
            DsaIndexerDecodeShape {
                stride: 0,
                ..DECODE
            },
            "decode stride 0 and block-table stride 100 must be positive",
        ),
        (
            DsaIndexerDecodeShape {
                bt_stride: 0,
                ..DECODE
            },
            "block-table stride 0 must be positive",
        ),
        (
            DsaIndexerDecodeShape {
                max_positions: 0,
                ..DECODE
            },
            "the RoPE table has no rows",
        ),
    ];
    for (s, needle) in bad_decode {
        invalid(dc(&c, &s, &mut out), needle);
    }
    // No RoPE: a table of zero rows is fine.
    let no_rope = DsaIndexerConfig { rope_dim: 0, ..c };
    let shape = DsaIndexerDecodeShape {
        max_positions: 0,
        ..DECODE
    };
    drop(decode_plan(&no_rope, &shape));
    let bad_device = DsaDeviceInfo {
        sm_count: 0,
        ..H100
    };
    invalid(
        dsa_indexer_decode_plan_create_for(&c, &DECODE, &bad_device, &mut out),
        "device info sm_count = 0 must be > 0",
    );
    // Argument errors come before any device access; valid ones reach the driver.
    invalid(
        dsa_indexer_prefill_plan_create(&c, &PREFILL, -1, &mut out),
        "device_ordinal = -1",
    );
    invalid(
        dsa_indexer_decode_plan_create(&DsaIndexerConfig { k: 0, ..c }, &DECODE, 0, &mut out),
        "k = 0",
    );
    invalid(
        dsa_indexer_decode_plan_create(&c, &DECODE, 0, null_mut()),
        "plan_out is a null pointer",
    );
    if !gpu_present() {
        expect(
            dsa_indexer_prefill_plan_create(&c, &PREFILL, 0, &mut out),
            DsaStatus::NoDriver,
            "CUDA driver",
        );
        expect(
            dsa_indexer_decode_plan_create(&c, &DECODE, 0, &mut out),
            DsaStatus::NoDriver,
            "CUDA driver",
        );
    }
    assert_eq!(dsa_indexer_plan_destroy(null_mut()), DsaStatus::Ok);
}

#[test]
fn plan_queries_agree_with_the_rust_plans() {
    let dev = DeviceInfo::H100;
    for policy in [
        DsaConsistencyPolicy::None,
        DsaConsistencyPolicy::Verify,
        DsaConsistencyPolicy::Broadcast,
    ] {
        let c = DsaIndexerConfig {
            policy: policy as i32,
            k: 256,
            ..default_config()
        };
        let rust_config = IndexerConfig {
            policy: ConsistencyPolicy::ALL[policy as usize],
            k: 256,
            ..IndexerConfig::default()
        };
        let ix = Indexer::new(rust_config).unwrap();

        let p = prefill_plan(&c, &PREFILL);
        let want = ix
            .plan_prefill(
                PrefillShape {
                    tokens: 19,
                    num_keys: 300,
                    stride: 301,
                    max_positions: 4096,
                    cache_pages: 8,
                },
                &dev,
            )
            .unwrap();
        let i = info(&p);
        assert_eq!(i.kind, DsaIndexerPlanKind::Prefill as i32);
        assert_eq!(i.workspace_bytes, want.workspace_bytes());
        assert_eq!(i.logits_shape, [19, 301]);
        assert_eq!(i.indices_shape, [19, 256]);
        assert_eq!(i.bt_cols, 0);
        let r = want.regions();
        assert_eq!(
            (i.q_fp8_offset, i.weights_offset, i.verify_offset),
            (r.q_fp8, r.weights, r.verify)
        );
        let verify = rust_config.policy.workspace_bytes(19);
        assert_eq!(i.verify_bytes, verify);
        assert!(i.verify_offset + i.verify_bytes <= i.workspace_bytes);
        let mut bytes = 0usize;
        ok(dsa_indexer_plan_workspace_bytes(p.0, &mut bytes));
        assert_eq!(bytes, i.workspace_bytes);

        let p = decode_plan(&c, &DECODE);
        let want = ix
            .plan_decode(
                DecodeShape {
                    batch: 7,
                    stride: 5000,
                    bt_stride: 100,
                    max_positions: 8192,
                    cache_pages: 600,
                },
                &dev,
            )
            .unwrap();
        let i = info(&p);
        assert_eq!(i.kind, DsaIndexerPlanKind::Decode as i32);
        assert_eq!(i.workspace_bytes, want.workspace_bytes());
        assert_eq!(i.logits_shape, [7, 5000]);
        assert_eq!(i.indices_shape, [7, 256]);
        assert_eq!(i.bt_cols, 79, "ceil(5000 / 64) columns of 100");
        assert_eq!(i.verify_offset, want.regions().verify);
        assert_eq!(i.verify_bytes, rust_config.policy.workspace_bytes(7));
    }
    // A zero stride is max(S, 1); zero tokens and keys plan an empty call.
    let c = default_config();
    let p = prefill_plan(
        &c,
        &DsaIndexerPrefillShape {
            stride: 0,
            ..PREFILL
        },
    );
    assert_eq!(info(&p).logits_shape, [19, 300]);
    let empty = DsaIndexerPrefillShape {
        tokens: 0,
        num_keys: 0,
        stride: 0,
        ..PREFILL
    };
    let p = prefill_plan(&c, &empty);
    let i = info(&p);
    assert_eq!((i.logits_shape, i.indices_shape), ([0, 1], [0, 2048]));
    assert_eq!(i.workspace_bytes, 0);
    let e = |s, needle| invalid(s, needle);
    let mut bytes = 0usize;
    let mut inf = DsaIndexerPlanInfo::default();
    e(
        dsa_indexer_plan_workspace_bytes(null(), &mut bytes),
        "plan is a null pointer",
    );
    e(
        dsa_indexer_plan_workspace_bytes(p.0, null_mut()),
        "bytes_out is a null pointer",
    );
    e(
        dsa_indexer_plan_info(null(), &mut inf),
        "plan is a null pointer",
    );
    e(
        dsa_indexer_plan_info(p.0, null_mut()),
        "info_out is a null pointer",
    );
    e(
        dsa_indexer_plan_prepare(null(), null_mut()),
        "plan is a null pointer",
    );
    expect_reaches_device(|| dsa_indexer_plan_prepare(p.0, null_mut()));
}

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
