//! The reference pipeline on the CPU (runs on CI): paged vs ragged equivalence on the same keys,
//! prefill-then-decode consistency through the cache, and top-k edge cases.

mod pipeline_common;

use dsa_indexer::IndexerConfig;
use dsa_indexer::cpu::{self, DecodeInputs, PagedCache, PagedKeys, PrefillInputs, Quantized};
use pipeline_common::*;

#[test]
fn paged_and_ragged_scores_agree_on_the_same_keys() {
    let mut r = rng(1);
    let c = IndexerConfig {
        heads: 16,
        dim: 64,
        rope_dim: 16,
        page_size: 16,
        k: 40,
        ..IndexerConfig::default()
    };
    let lens = [0, 1, 15, 16, 17, 100, 333];
    let bt_stride = 25;
    let (cache, table) = random_cache_and_table(&mut r, &c, 60, &lens, bt_stride);
    let q8 = random_keys(&mut r, lens.len() * c.heads, c.dim);
    let wq: Vec<f32> = (0..lens.len() * c.heads)
        .map(|i| ((i % 5) as f32 - 2.0) * 0.1)
        .collect();
    let stride = 340;
    let keys = PagedKeys {
        cache: &cache,
        block_table: &table,
        bt_stride,
        bt_cols: bt_stride,
        context_lens: &lens,
    };
    let paged = cpu::scores_paged(c.heads, &q8, &wq, &keys, stride);
    for (b, &len) in lens.iter().enumerate() {
        let gathered = cache.gather(&table[b * bt_stride..(b + 1) * bt_stride], len as usize);
        let one = Quantized {
            codes: q8.codes[b * c.heads * c.dim..(b + 1) * c.heads * c.dim].to_vec(),
            scales: q8.scales[b * c.heads..(b + 1) * c.heads].to_vec(),
        };
        let mut contiguous = gathered.clone();
        if contiguous.scales.is_empty() {
            contiguous = Quantized {
                codes: vec![0; c.dim],
                scales: vec![1.0],
            };
        }
        let ragged = cpu::scores_ragged(
            c.heads,
            &one,
            &wq[b * c.heads..(b + 1) * c.heads],
            &contiguous,
            &[0],
            &[len],
            stride,
        );
        let row = &paged[b * stride..(b + 1) * stride];
        assert_eq!(
            row.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            ragged.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "request {b}"
        );
        assert!(row[len as usize..].iter().all(|&x| x == f32::NEG_INFINITY));
    }
    // An invalid page inside the context masks exactly its keys.
    let mut holed = table.clone();
    holed[5 * bt_stride + 2] = -1;
    let keys = PagedKeys {
        block_table: &holed,
        ..keys
    };
    let masked = cpu::scores_paged(c.heads, &q8, &wq, &keys, stride);
    for s in 0..stride {
        let (a, b) = (masked[5 * stride + s], paged[5 * stride + s]);
        if (32..48).contains(&s) {
            assert_eq!(a, f32::NEG_INFINITY)
        } else {
            assert_eq!(a.to_bits(), b.to_bits())
        }
    }
}

#[test]
fn prefill_then_decode_through_the_cache_scores_the_same_keys() {
    // One request: prefill its first 150 tokens into shuffled pages, then decode token 150.
    let mut r = rng(2);
    let c = IndexerConfig {
        heads: 16,
        dim: 128,
        page_size: 16,
        k: 64,
        ..IndexerConfig::default()
    };
    let (n, p) = (150usize, 16usize);
    let pages = 12;
    let order: Vec<i32> = vec![7, 3, 11, 0, 9, 1, 5, 10, 2, 8, 4, 6];
    let slot = |pos: usize| order[pos / p] as i64 * p as i64 + (pos % p) as i64;
    let data = TokenData::random(&mut r, &c, (0..n as i64).collect(), n + 1);
    let locs: Vec<i64> = (0..n).map(slot).collect();
    let mut cache = PagedCache::new(c.cache_layout(), pages, 0);
    let empty = Quantized {
        codes: vec![0; n * c.dim],
        scales: vec![0.0; n],
    };
    let ks = vec![0; n];
    let ke: Vec<i32> = (1..=n as i32).collect();
    let pre = cpu::prefill(
        &c,
        &data.inputs(),
        &PrefillInputs {
            out_cache_loc: &locs,
            keys: &empty,
            new_keys_offset: 0,
            ks: &ks,
            ke: &ke,
            topk_offsets: None,
            stride: n,
        },
        &mut cache,
    );
    // The cache now holds exactly the prefill's keys in request order.
    let gathered = cache.gather(&order, n);
    assert_eq!(gathered, pre.keys);
    // Causal rows: row t has t + 1 finite logits; fewer than k gives -1 padding after them.
    for t in [0usize, 10, 63, 64, 149] {
        let row = &pre.logits[t * n..(t + 1) * n];
        assert_eq!(row.iter().filter(|x| x.is_finite()).count(), t + 1);
        let idx = &pre.indices[t * c.k..(t + 1) * c.k];
        let kept = idx.iter().filter(|&&i| i >= 0).count();
        assert_eq!(kept, (t + 1).min(c.k));
        assert!(idx[kept..].iter().all(|&i| i == -1));
        // The best key is always selected.
        let best = (0..=t)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
            .unwrap();
        assert!(idx.contains(&(best as i32)), "row {t}");
    }
    // Decode the next token: its logits over the first 150 keys use the cached keys, and
    // the indices are cache slots of the selected positions.
    let next = TokenData::random(&mut r, &c, vec![n as i64], n + 1);
    let lens = [n as i32 + 1];
    let dec = cpu::decode(
        &c,
        &next.inputs(),
        &DecodeInputs {
            out_cache_loc: &[slot(n)],
            block_table: &order,
            bt_stride: pages,
            bt_cols: pages,
            context_lens: &lens,
            stride: n + 1,
        },
        &mut cache,
    );
    let mut keys = pre.keys.clone();
    keys.push(dec.keys.row(0), dec.keys.scales[0]);
    let ragged = cpu::scores_ragged(
        c.heads,
        &dec.q8,
        &dec.wq,
        &keys,
        &[0],
        &[n as i32 + 1],
        n + 1,
    );
    assert_eq!(ragged, dec.logits);
    let pos_of = |s: i32| (0..=n).find(|&pos| slot(pos) == s as i64).unwrap();
    let mut positions: Vec<usize> = dec
        .indices
        .iter()
        .filter(|&&i| i >= 0)
        .map(|&i| pos_of(i))
        .collect();
    positions.sort();
    assert_eq!(positions.len(), c.k);
    let mut by_score: Vec<usize> = (0..=n).collect();
    by_score.sort_by(|&a, &b| dec.logits[b].total_cmp(&dec.logits[a]).then(a.cmp(&b)));
    let mut top: Vec<usize> = by_score[..c.k].to_vec();
    top.sort();
    assert_eq!(positions, top);
}
