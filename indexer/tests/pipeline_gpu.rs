//! The GPU pipeline against the f64 reference, stage by stage: key path (cache and key
//! buffer), query path (workspace), scores from the GPU's own quantized inputs, top-k of the
//! GPU's own scores (exact), and end-to-end overlap with the reference's selection.

mod pipeline_common;

use dsa_indexer::collective::ConsistencyPolicy;
use dsa_indexer::cpu::{self, DecodeInputs, PagedCache, PagedKeys, PrefillInputs, Quantized};
use dsa_indexer::{
    DType, DecodeArgs, DecodeShape, Indexer, IndexerConfig, IndexerError, PrefillArgs,
    PrefillShape, RopeStyle, ScaleFormat,
};
use dsa_jit_cache::dptr;
use dsa_topk::Transform;
use dsa_topk::cpu::{Inputs, TransformData};
use pipeline_common::*;
use rand::seq::SliceRandom;

const NAN_BYTES: [u8; 4] = [0xff, 0xff, 0xc0, 0x7f];

fn poison(n: usize) -> Vec<u8> {
    NAN_BYTES.iter().copied().cycle().take(n.max(16)).collect()
}

/// One decode step on the GPU and in the reference; every stage compared.
fn check_decode(what: &str, c: IndexerConfig, lens: &[i32], stride: usize, seed: u64) {
    let g = gpu();
    let s = &g.stream;
    let mut r = rng(seed);
    let batch = lens.len();
    let p = c.page_size;
    let bt_stride = stride.div_ceil(p) + 3;
    let pages: usize = lens
        .iter()
        .map(|&l| (l.max(1) as usize).div_ceil(p))
        .sum::<usize>()
        + 5;
    let (cache0, table) = random_cache_and_table(&mut r, &c, pages, lens, bt_stride);
    let positions: Vec<i64> = lens.iter().map(|&l| (l as i64 - 1).max(0)).collect();
    let locs: Vec<i64> = lens
        .iter()
        .enumerate()
        .map(|(b, &l)| {
            let last = l as usize - (l > 0) as usize;
            if l == 0 {
                -1
            } else {
                table[b * bt_stride + last / p] as i64 * p as i64 + (last % p) as i64
            }
        })
        .collect();
    let data = TokenData::random(&mut r, &c, positions, stride);
    let plan = Indexer::new(c)
        .unwrap()
        .plan_decode(
            DecodeShape {
                batch,
                stride,
                bt_stride,
                max_positions: stride,
                cache_pages: pages,
            },
            &g.info,
        )
        .unwrap();
    let tb = TokenBuffers::new(s, &data, &locs);
    let cache = up(s, &cache0.bytes);
    let table_d = up(s, &table);
    let lens_d = up(s, lens);
    let logits = up(s, &poison(batch * stride * 4));
    let indices = up(s, &poison(batch * c.k * 4));
    let ws = up(s, &poison(plan.workspace_bytes()));
    let args = DecodeArgs {
        tokens: tb.args(s, dptr(&cache, s)),
        block_table: dptr(&table_d, s),
        context_lens: dptr(&lens_d, s),
        logits: dptr(&logits, s),
        indices: dptr(&indices, s),
        workspace: dptr(&ws, s),
        workspace_bytes: plan.workspace_bytes(),
    };
    // SAFETY: every buffer above has the shape the plan documents.
    unsafe { plan.decode(s, &args, None) }.unwrap();
    let gpu_cache = PagedCache::from_bytes(c.cache_layout(), down(s, &cache));
    let gpu_logits = f32s(&down(s, &logits));
    let gpu_idx = i32s(&down(s, &indices));
    let wsb = down(s, &ws);
    let reg = plan.regions();

    let mut ref_cache = cache0.clone();
    let extra = DecodeInputs {
        out_cache_loc: &locs,
        block_table: &table,
        bt_stride,
        bt_cols: plan.bt_cols(),
        context_lens: lens,
        stride,
    };
    let want = cpu::decode(&c, &data.inputs(), &extra, &mut ref_cache);

    // 1. Key path: the new slots hold close codes and scales; nothing else in the cache moved.
    let mut patched = gpu_cache.clone();
    for (t, &loc) in locs.iter().enumerate().filter(|(_, l)| **l >= 0) {
        let (codes, scale) = gpu_cache.key(loc as usize);
        assert_codes_close(&format!("{what} key {t}"), codes, want.keys.row(t), 0.0);
        assert_rel_close(
            &format!("{what} key scale {t}"),
            &[scale],
            &want.keys.scales[t..t + 1],
            1e-5,
        );
        patched.store(loc, &want.keys, t);
    }
    assert!(
        patched.bytes == ref_cache.bytes,
        "{what}: cache bytes outside the new slots changed"
    );
    // 2. Query path.
    let (h, d) = (c.heads, c.dim);
    let q8 = wsb[reg.q_fp8..reg.q_fp8 + batch * h * d].to_vec();
    let wq = f32s(&wsb[reg.weights..reg.weights + batch * h * 4]);
    assert_codes_close(&format!("{what} q8"), &q8, &want.q8.codes, 0.95);
    assert_rel_close(&format!("{what} w'"), &wq, &want.wq, 1e-5);
    // 3. Scores from the GPU's own quantized inputs.
    let q8g = Quantized {
        codes: q8,
        scales: vec![1.0; batch * h],
    };
    let keys = PagedKeys {
        cache: &gpu_cache,
        block_table: &table,
        bt_stride,
        bt_cols: plan.bt_cols(),
        context_lens: lens,
    };
    let exact = cpu::scores_paged(h, &q8g, &wq, &keys, stride);
    assert_scores_close(
        &format!("{what} scores"),
        &gpu_logits,
        &exact,
        &row_scales(&exact, stride),
        stride,
        2e-3,
    );
    // 4. Top-k of the GPU's own scores, exactly.
    let identity: Vec<i32> = (0..batch as i32).collect();
    let input = Inputs {
        scores: &gpu_logits,
        stride,
        lengths: lens,
        row_starts: None,
    };
    let data_t = TransformData::Paged {
        page_table: &table,
        stride: bt_stride,
        cols: plan.bt_cols(),
        num_requests: batch,
        rows_to_requests: &identity,
    };
    let topk_ref = dsa_topk::cpu::topk(&input, &c.topk_config(c.paged_transform()), &data_t);
    assert_eq!(gpu_idx, topk_ref, "{what}: top-k of the GPU's scores");
    // End to end.
    let ov = overlap(&gpu_idx, &want.indices, c.k);
    eprintln!("{what}: end-to-end overlap {ov:.5}");
    assert!(ov >= 0.99, "{what}: overlap {ov}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn decode_default_config_mixed_lengths_shuffled_pages() {
    let lens = [
        0, 1, 2, 63, 64, 65, 100, 2047, 2048, 2049, 3000, 4999, 5000, 777, 1, 128, 4096, 2500, 17,
    ];
    check_decode("decode default", IndexerConfig::default(), &lens, 5000, 1);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn decode_other_dtypes_heads_dims_rope_styles_and_pages() {
    let cases = [
        (
            IndexerConfig {
                input: DType::F16,
                heads: 32,
                rope: RopeStyle::Interleaved,
                scale_format: ScaleFormat::Pow2,
                page_size: 16,
                k: 100,
                ..IndexerConfig::default()
            },
            vec![1, 99, 100, 101, 999, 1000, 500],
            1000,
        ),
        (
            IndexerConfig {
                input: DType::F32,
                heads: 16,
                dim: 64,
                rope_dim: 32,
                page_size: 4,
                k: 7,
                ..IndexerConfig::default()
            },
            vec![5, 0, 99, 6, 7],
            99,
        ),
        (
            IndexerConfig {
                heads: 128,
                dim: 64,
                rope_dim: 64,
                page_size: 128,
                k: 300,
                ..IndexerConfig::default()
            },
            vec![1500, 299, 301],
            1500,
        ),
        (
            IndexerConfig {
                heads: 48,
                dim: 64,
                rope_dim: 0,
                k: 33,
                ..IndexerConfig::default()
            },
            vec![111],
            111,
        ),
    ];
    for (i, (c, lens, stride)) in cases.into_iter().enumerate() {
        check_decode(&format!("decode case {i}"), c, &lens, stride, 10 + i as u64);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn decode_one_request_long_context() {
    check_decode(
        "decode 1 x 70000",
        IndexerConfig::default(),
        &[70000],
        70001,
        3,
    );
}

/// One prefill call (a prefix already in the key buffer, then `tokens` new tokens).
fn check_prefill(
    what: &str,
    c: IndexerConfig,
    prefix: usize,
    tokens: usize,
    window: Option<usize>,
    seed: u64,
) {
    let g = gpu();
    let s = &g.stream;
    let mut r = rng(seed);
    let n_keys = prefix + tokens;
    let stride = n_keys + 3;
    let p = c.page_size;
    let pages = n_keys.div_ceil(p) + 2;
    let mut order: Vec<i64> = (0..pages as i64).collect();
    order.shuffle(&mut r);
    let mut locs: Vec<i64> = (0..tokens)
        .map(|t| order[(prefix + t) / p] * p as i64 + ((prefix + t) % p) as i64)
        .collect();
    if tokens > 2 {
        locs[tokens / 2] = -1; // a padding token: not stored
    }
    let positions: Vec<i64> = (0..tokens).map(|t| (prefix + t) as i64).collect();
    let data = TokenData::random(&mut r, &c, positions, n_keys);
    let ke: Vec<i32> = (0..tokens).map(|t| (prefix + t + 1) as i32).collect();
    let mut ks: Vec<i32> = ke
        .iter()
        .map(|&e| window.map_or(0, |w| (e - w as i32).max(0)))
        .collect();
    let mut ke = ke;
    if tokens >= 3 {
        ks[0] = ke[0] + 5; // empty range: every column masked, indices all -1
        ks[1] = -7; // clamped to 0
        ke[2] = n_keys as i32 + 100; // clamped to the key count
    }
    let mut keys0 = random_keys(&mut r, n_keys, c.dim);
    for t in 0..tokens {
        keys0.codes[(prefix + t) * c.dim..][..c.dim].fill(0x7f); // NaN codes: must be overwritten
        keys0.scales[prefix + t] = f32::NAN;
    }
    let plan = Indexer::new(c)
        .unwrap()
        .plan_prefill(
            PrefillShape {
                tokens,
                num_keys: n_keys,
                stride,
                max_positions: n_keys,
                cache_pages: pages,
            },
            &g.info,
        )
        .unwrap();
    let cache0 = PagedCache::new(c.cache_layout(), pages, 0x33);
    let tb = TokenBuffers::new(s, &data, &locs);
    let cache = up(s, &cache0.bytes);
    let k8 = up(s, &keys0.codes);
    let kscale = up(s, &keys0.scales);
    let ks_d = up(s, &ks);
    let ke_d = up(s, &ke);
    let logits = up(s, &poison(tokens * stride * 4));
    let indices = up(s, &poison(tokens * c.k * 4));
    let ws = up(s, &poison(plan.workspace_bytes()));
    let args = PrefillArgs {
        tokens: tb.args(s, dptr(&cache, s)),
        keys_fp8: dptr(&k8, s),
        keys_scale: dptr(&kscale, s),
        new_keys_offset: prefix,
        ks: dptr(&ks_d, s),
        ke: dptr(&ke_d, s),
        topk_offsets: 0,
        logits: dptr(&logits, s),
        indices: dptr(&indices, s),
        workspace: dptr(&ws, s),
        workspace_bytes: plan.workspace_bytes(),
    };
    // SAFETY: every buffer above has the shape the plan documents.
    unsafe { plan.prefill(s, &args, None) }.unwrap();
    let gpu_keys = Quantized {
        codes: down(s, &k8),
        scales: down(s, &kscale),
    };
    let gpu_cache = PagedCache::from_bytes(c.cache_layout(), down(s, &cache));
    let gpu_logits = f32s(&down(s, &logits));
    let gpu_idx = i32s(&down(s, &indices));
    let wsb = down(s, &ws);
    let reg = plan.regions();

    let mut ref_cache = cache0.clone();
    let extra = PrefillInputs {
        out_cache_loc: &locs,
        keys: &keys0,
        new_keys_offset: prefix,
        ks: &ks,
        ke: &ke,
        topk_offsets: None,
        stride,
    };
    let want = cpu::prefill(&c, &data.inputs(), &extra, &mut ref_cache);

    // 1. Key path: key buffer rows and cache slots.
    let d = c.dim;
    assert_codes_close(
        &format!("{what} key buffer"),
        &gpu_keys.codes[prefix * d..],
        &want.keys.codes,
        0.97,
    );
    assert_rel_close(
        &format!("{what} key scales"),
        &gpu_keys.scales[prefix..],
        &want.keys.scales,
        1e-5,
    );
    assert_eq!(
        &gpu_keys.codes[..prefix * d],
        &keys0.codes[..prefix * d],
        "{what}: prefix rows moved"
    );
    let mut patched = gpu_cache.clone();
    for (t, &loc) in locs.iter().enumerate() {
        patched.store(loc, &want.keys, t);
    }
    assert!(
        patched.bytes == ref_cache.bytes,
        "{what}: cache bytes outside the new slots changed"
    );
    // 2. Query path.
    let h = c.heads;
    let q8 = wsb[reg.q_fp8..reg.q_fp8 + tokens * h * d].to_vec();
    let wq = f32s(&wsb[reg.weights..reg.weights + tokens * h * 4]);
    assert_codes_close(&format!("{what} q8"), &q8, &want.q8.codes, 0.95);
    assert_rel_close(&format!("{what} w'"), &wq, &want.wq, 1e-5);
    // 3. Scores from the GPU's own inputs.
    let q8g = Quantized {
        codes: q8,
        scales: vec![1.0; tokens * h],
    };
    let exact = cpu::scores_ragged(h, &q8g, &wq, &gpu_keys, &ks, &ke, stride);
    assert_scores_close(
        &format!("{what} scores"),
        &gpu_logits,
        &exact,
        &row_scales(&exact, stride),
        stride,
        2e-3,
    );
    // 4. Top-k of the GPU's own scores, exactly.
    let n = n_keys as i32;
    let starts: Vec<i32> = ks.iter().map(|&v| v.clamp(0, n)).collect();
    let lengths: Vec<i32> = (0..tokens)
        .map(|t| ke[t].clamp(starts[t], n) - starts[t])
        .collect();
    let input = Inputs {
        scores: &gpu_logits,
        stride,
        lengths: &lengths,
        row_starts: Some(&starts),
    };
    let topk_ref = dsa_topk::cpu::topk(
        &input,
        &c.topk_config(Transform::Ragged),
        &TransformData::Ragged { offsets: &starts },
    );
    assert_eq!(gpu_idx, topk_ref, "{what}: top-k of the GPU's scores");
    if tokens >= 3 {
        assert!(
            gpu_idx[..c.k].iter().all(|&i| i == -1),
            "{what}: the empty row selects nothing"
        );
    }
    let ov = overlap(&gpu_idx, &want.indices, c.k);
    eprintln!("{what}: end-to-end overlap {ov:.5}");
    assert!(ov >= 0.99, "{what}: overlap {ov}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn prefill_causal_with_prefix_default_config() {
    check_prefill("prefill 37+99", IndexerConfig::default(), 37, 99, None, 21);
    check_prefill(
        "prefill 1000+1000 k=256",
        IndexerConfig {
            k: 256,
            ..IndexerConfig::default()
        },
        1000,
        1000,
        None,
        22,
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn prefill_windows_one_token_and_other_configs() {
    check_prefill(
        "prefill one token",
        IndexerConfig::default(),
        500,
        1,
        None,
        23,
    );
    let f16 = IndexerConfig {
        input: DType::F16,
        heads: 32,
        rope: RopeStyle::Interleaved,
        page_size: 16,
        k: 50,
        ..IndexerConfig::default()
    };
    check_prefill("prefill f16 window 200", f16, 0, 300, Some(200), 24);
    let small = IndexerConfig {
        input: DType::F32,
        heads: 16,
        dim: 64,
        rope_dim: 16,
        scale_format: ScaleFormat::Pow2,
        k: 19,
        ..IndexerConfig::default()
    };
    check_prefill("prefill d64", small, 5, 989, Some(64), 25);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn misuse_is_a_typed_error_before_any_launch() {
    let g = gpu();
    let s = &g.stream;
    let c = IndexerConfig {
        policy: ConsistencyPolicy::Verify,
        ..IndexerConfig::default()
    };
    let plan = Indexer::new(c)
        .unwrap()
        .plan_decode(
            DecodeShape {
                batch: 2,
                stride: 128,
                bt_stride: 2,
                max_positions: 128,
                cache_pages: 4,
            },
            &g.info,
        )
        .unwrap();
    let ws = s.alloc_zeros::<u8>(plan.workspace_bytes()).unwrap();
    let args = DecodeArgs {
        workspace: dptr(&ws, s),
        workspace_bytes: plan.workspace_bytes(),
        indices: 0x1000,
        ..DecodeArgs::default()
    };
    // SAFETY: nothing is launched: each call fails its host-side checks.
    let err = unsafe { plan.decode(s, &args, None) }.unwrap_err();
    assert!(
        matches!(err, IndexerError::NoCommunicator(ConsistencyPolicy::Verify)),
        "{err}"
    );
    let plain = Indexer::new(IndexerConfig::default())
        .unwrap()
        .plan_decode(*plan.shape(), &g.info)
        .unwrap();
    // SAFETY: as above.
    let err = unsafe { plain.decode(s, &args, None) }.unwrap_err();
    assert!(matches!(err, IndexerError::Null(_)), "{err}");
    let short = DecodeArgs {
        workspace_bytes: 8,
        ..args
    };
    // SAFETY: as above.
    let err = unsafe { plain.decode(s, &short, None) }.unwrap_err();
    assert!(matches!(err, IndexerError::Workspace { .. }), "{err}");
}
