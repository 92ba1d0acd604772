//! The indexer's plan entry points reject every bad config, shape and pointer with
//! `DSA_STATUS_INVALID_ARGUMENT` and a message naming it, before touching a device, and the
//! host-only queries agree with the Rust plans. Runs without a GPU; on a machine with one, the
//! cases whose arguments are valid are skipped. (Call arguments: `indexer_args_boundary.rs`.)

mod common;

use common::indexer::*;
use common::*;
use dsa_indexer::collective::ConsistencyPolicy;
use dsa_indexer::{DecodeShape, Indexer, IndexerConfig, PrefillShape};
use dsa_jit_cache::DeviceInfo;
use dsa_kernels::indexer::*;
use dsa_kernels::*;
use std::ptr::{null, null_mut};

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
