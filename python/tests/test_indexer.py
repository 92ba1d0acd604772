"""indexer_decode / indexer_prefill against the torch reference of the contract
(_indexer_ref.py, mirroring the Rust CPU reference): the keys written to the cache and key
buffer, nothing else written, the scores, and top-k of the op's own scores exactly (with the
fused paged or ragged transform)."""

import math

import _indexer_ref as ref
from _common import need_cuda, ref_topk

EPS = 1e-6


def _tokens(torch, g, n, heads, dim, dtype):
    return dict(
        q=(torch.rand((n, heads, dim), generator=g) * 4 - 2).to(dtype),
        weights=torch.rand((n, heads), generator=g) * 2 - 1,
        k=(torch.rand((n, dim), generator=g) * 4 - 1).to(dtype),
        ln_weight=(torch.rand(dim, generator=g) + 0.5).to(dtype),
        ln_bias=(torch.rand(dim, generator=g) * 0.4 - 0.2).to(dtype),
    )


def _written_mask(torch, cache, locs, page, dim):
    """Bytes of the cache that the new keys at slots ``locs`` (>= 0) may write."""
    mask = torch.zeros(cache.shape, dtype=torch.bool)
    for loc in locs.tolist():
        if loc < 0:
            continue
        p, o = divmod(loc, page)
        mask[p, o * dim:(o + 1) * dim] = True
        mask[p, page * dim + 4 * o:page * dim + 4 * o + 4] = True
    return mask


def _check_keys(torch, what, cache0, cache, key_codes, key_scales, locs, page, dim, want):
    """The new slots (``locs >= 0``) hold ``key_codes``/``key_scales`` (the op's own keys,
    ``[T, D]``/``[T]``), close to the reference ``want``; no other cache byte changed."""
    cache, cache0 = cache.cpu(), cache0.cpu()
    mask = _written_mask(torch, cache, locs, page, dim)
    assert torch.equal(cache[~mask], cache0[~mask]), f"{what}: cache bytes outside the new slots"
    codes, scales = ref.cache_views(torch, cache, page, dim)
    valid = (locs >= 0).cpu()
    slots = locs.cpu()[valid]
    assert torch.equal(codes[slots], key_codes.cpu()[valid]), f"{what}: cache keys"
    assert torch.equal(scales[slots], key_scales.cpu()[valid]), f"{what}: cache scales"
    ref.assert_codes_close(torch, f"{what} keys", key_codes.cpu()[valid], want[0][valid], 0.9)
    torch.testing.assert_close(key_scales.cpu()[valid], want[1][valid], rtol=1e-5, atol=0)


def _run_decode(torch, dk, what, *, lens, stride, heads=64, dim=128, rope_dim=64, page=64,
                dtype=None, topk=2048, interleaved=False, pow2=False, seed=0):
    dtype = dtype or torch.bfloat16
    g = torch.Generator().manual_seed(seed)
    b = len(lens)
    bt_stride = -(-stride // page) + 3
    pages = sum(-(-max(n, 1) // page) for n in lens) + 5
    pool = torch.randperm(pages, generator=g).tolist()
    table = torch.full((b, bt_stride), -1, dtype=torch.int32)
    locs = []
    for r, n in enumerate(lens):
        for col in range(-(-max(n, 1) // page)):
            table[r, col] = pool.pop()
        last = n - 1
        locs.append(-1 if n <= 0 else int(table[r, last // page]) * page + last % page)
    locs = torch.tensor(locs, dtype=torch.int64)
    positions = torch.tensor([max(n - 1, 0) for n in lens], dtype=torch.int64)
    t = _tokens(torch, g, b, heads, dim, dtype)
    cos_sin = ref.rope_table(torch, stride, rope_dim)
    cache0 = ref.random_cache(torch, g, pages, page, dim)
    lens_t = torch.tensor(lens, dtype=torch.int32)
    dev = {n: v.cuda() for n, v in t.items()}
    cache = cache0.cuda()
    cs = None if cos_sin is None else cos_sin.cuda()
    logits, idx = dk.indexer_decode(
        dev["q"], dev["weights"], dev["k"], positions.cuda(), locs.cuda(), cache, table.cuda(),
        lens_t.cuda(), stride, cos_sin=cs, ln_weight=dev["ln_weight"], ln_bias=dev["ln_bias"],
        topk=topk, eps=EPS, rope="interleaved" if interleaved else "neox", pow2_scales=pow2)
    torch.cuda.synchronize()
    assert logits.shape == (b, stride) and idx.shape == (b, topk)

    rows = ref.table_rows(torch, cos_sin, positions)
    want_keys = ref.key_path(torch, t["k"], t["ln_weight"], t["ln_bias"], EPS, rows, interleaved,
                             pow2)
    codes, scales = ref.cache_views(torch, cache.cpu(), page, dim)
    slots = locs.clamp(min=0)
    _check_keys(torch, what, cache0, cache, codes[slots], scales[slots], locs, page, dim,
                want_keys)
    # Scores: the reference queries against the keys the op left in the cache.
    q8, wq = ref.query_path(torch, t["q"], t["weights"], rows, interleaved, pow2)
    cols = min(bt_stride, -(-stride // page))
    ctx = lens_t.clamp(0, min(stride, cols * page)).long()
    pos = torch.arange(stride)
    slot = table.long()[:, (pos // page).clamp(max=bt_stride - 1)] * page + pos % page
    inside = pos[None, :] < ctx[:, None]
    slot = torch.where(inside, slot, torch.zeros_like(slot))
    want = ref.scores(torch, q8, wq, codes[slot], scales[slot])
    want = torch.where(inside, want, torch.full_like(want, -math.inf))
    ref.assert_scores_close(torch, f"{what} scores", logits, want, 1e-2)
    # Top-k of the op's own scores, exactly, through the page table.
    base = ref_topk(torch, logits, lens_t, topk).long()
    entry = table.long()[torch.arange(b)[:, None], (base.clamp(min=0) // page)]
    mapped = torch.where(base >= 0, entry * page + base % page, base)
    torch.testing.assert_close(idx.cpu(), mapped.to(torch.int32), rtol=0, atol=0,
                               msg=f"{what} indices")
    if any(n > 0 for n in lens):
        assert bool((idx >= 0).any()), what


def test_decode_default_config_mixed_lengths():
    torch, dk = need_cuda()
    lens = [0, 1, 2, 63, 64, 65, 100, 2047, 2048, 2049, 2999, 3000, 777]
    _run_decode(torch, dk, "decode default", lens=lens, stride=3000, seed=1)


def test_decode_other_dtypes_heads_dims_rope_and_pages():
    torch, dk = need_cuda()
    _run_decode(torch, dk, "decode f16 h32", lens=[1, 99, 100, 101, 999, 1000, 500], stride=1000,
                heads=32, page=16, dtype=torch.float16, topk=100, interleaved=True, pow2=True,
                seed=2)
    _run_decode(torch, dk, "decode f32 d64 no rope", lens=[5, 0, 99, 6, 7], stride=99, heads=16,
                dim=64, rope_dim=0, page=4, dtype=torch.float32, topk=7, seed=3)
    _run_decode(torch, dk, "decode h128 d64", lens=[1500, 299, 301], stride=1500, heads=128,
                dim=64, page=128, topk=300, seed=4)


def _run_prefill(torch, dk, what, *, prefix, tokens, window=None, heads=64, dim=128, rope_dim=64,
                 page=64, dtype=None, topk=2048, offsets=False, fp8_keys=False, seed=0):
    dtype = dtype or torch.bfloat16
    g = torch.Generator().manual_seed(seed)
    n_keys = prefix + tokens
    stride = n_keys + 3
    pages = -(-n_keys // page) + 2
    order = torch.randperm(pages, generator=g)
    locs = torch.tensor([int(order[(prefix + i) // page]) * page + (prefix + i) % page
                         for i in range(tokens)], dtype=torch.int64)
    if tokens > 2:
        locs[tokens // 2] = -1  # a padding token: not stored
    positions = torch.arange(prefix, n_keys, dtype=torch.int64)
    ke = torch.arange(prefix + 1, n_keys + 1, dtype=torch.int32)
    ks = (ke - window).clamp(min=0) if window else torch.zeros_like(ke)
    if tokens >= 3:
        ks[0] = ke[0] + 5  # empty range
        ks[1] = -7  # clamped to 0
        ke[2] = n_keys + 100  # clamped to the key count
    t = _tokens(torch, g, tokens, heads, dim, dtype)
    cos_sin = ref.rope_table(torch, n_keys, rope_dim)
    keys0 = ref.random_cache(torch, g, 1, n_keys, dim)
    k8_0, ks_0 = ref.cache_views(torch, keys0, n_keys, dim)
    k8_0, ks_0 = k8_0.clone(), ks_0.clone()
    k8_0[prefix:] = 0x7F  # NaN codes: the call must overwrite them
    ks_0[prefix:] = math.nan
    cache0 = ref.random_cache(torch, g, pages, page, dim)
    top_off = torch.arange(tokens, dtype=torch.int32) * 1000
    dev = {n: v.cuda() for n, v in t.items()}
    cache, k8, kscale = cache0.cuda(), k8_0.cuda(), ks_0.cuda()
    cs = None if cos_sin is None else cos_sin.cuda()
    logits, idx = dk.indexer_prefill(
        dev["q"], dev["weights"], dev["k"], positions.cuda(), locs.cuda(), cache,
        k8.view(torch.float8_e4m3fn) if fp8_keys else k8, kscale, ks.cuda(), ke.cuda(),
        new_keys_offset=prefix, topk_offsets=top_off.cuda() if offsets else None,
        logits_stride=stride, cos_sin=cs,
        ln_weight=dev["ln_weight"], ln_bias=dev["ln_bias"], topk=topk, eps=EPS)
    torch.cuda.synchronize()
    assert logits.shape == (tokens, stride) and idx.shape == (tokens, topk)

    rows = ref.table_rows(torch, cos_sin, positions)
    want_keys = ref.key_path(torch, t["k"], t["ln_weight"], t["ln_bias"], EPS, rows, False, False)
    k8h, ksh = k8.cpu(), kscale.cpu()
    assert torch.equal(k8h[:prefix], k8_0[:prefix]), f"{what}: prefix rows moved"
    assert torch.equal(ksh[:prefix], ks_0[:prefix]), f"{what}: prefix scales moved"
    _check_keys(torch, what, cache0, cache, k8h[prefix:], ksh[prefix:], locs, page, dim, want_keys)
    q8, wq = ref.query_path(torch, t["q"], t["weights"], rows, False, False)
    s0 = ks.long().clamp(0, n_keys)
    s1 = torch.maximum(ke.long().clamp(0, n_keys), s0)
    col = torch.arange(stride)
    inside = (col[None, :] >= s0[:, None]) & (col[None, :] < s1[:, None])
    keys = col.clamp(max=n_keys - 1)
    want = ref.scores(torch, q8, wq, k8h[keys], ksh[keys])
    want = torch.where(inside, want, torch.full_like(want, -math.inf))
    ref.assert_scores_close(torch, f"{what} scores", logits, want, 1e-2)
    base = ref_topk(torch, logits, (s1 - s0).to(torch.int32), topk, s0.to(torch.int32)).long()
    add = top_off.long() if offsets else s0
    want_idx = torch.where(base >= 0, base + add[:, None], base)
    torch.testing.assert_close(idx.cpu(), want_idx.to(torch.int32), rtol=0, atol=0,
                               msg=f"{what} indices")
    if tokens >= 3:
        assert bool((idx[0] == -1).all()), f"{what}: the empty range selects nothing"


def test_prefill_causal_with_prefix():
    torch, dk = need_cuda()
    _run_prefill(torch, dk, "prefill 37+99", prefix=37, tokens=99, seed=21)
    _run_prefill(torch, dk, "prefill one token", prefix=500, tokens=1, seed=22)


def test_prefill_windows_offsets_fp8_keys_and_other_configs():
    torch, dk = need_cuda()
    _run_prefill(torch, dk, "prefill offsets fp8 keys", prefix=0, tokens=300, topk=256,
                 offsets=True, fp8_keys=True, seed=23)
    _run_prefill(torch, dk, "prefill f32 d64 window 64", prefix=5, tokens=300, window=64,
                 heads=16, dim=64, rope_dim=16, dtype=torch.float32, topk=19, seed=24)


def test_indexer_rejects_bad_tensors():
    torch, dk = need_cuda()
    b, h, d, page = 2, 64, 128, 64
    q = torch.zeros((b, h, d), dtype=torch.bfloat16, device="cuda")
    w = torch.zeros((b, h), device="cuda")
    k = torch.zeros((b, d), dtype=torch.bfloat16, device="cuda")
    pos = torch.zeros(b, dtype=torch.int64, device="cuda")
    loc = torch.full((b,), -1, dtype=torch.int64, device="cuda")
    cache = torch.zeros((4, page * (d + 4)), dtype=torch.uint8, device="cuda")
    table = torch.zeros((b, 4), dtype=torch.int32, device="cuda")
    lens = torch.ones(b, dtype=torch.int32, device="cuda")
    cs = ref.rope_table(torch, 16, 64).cuda()

    def call(**kw):
        a = dict(q=q, weights=w, k=k, positions=pos, out_cache_loc=loc, cache=cache,
                 block_table=table, context_lens=lens, max_context=64, cos_sin=cs)
        a.update(kw)
        return dk.indexer_decode(**a)

    for kw, exc in [
        (dict(q=q.float()), TypeError),  # k is bf16
        (dict(weights=w.half()), TypeError),
        (dict(k=k[:1]), ValueError),
        (dict(positions=pos.int()), TypeError),
        (dict(cache=cache[:, :-1]), ValueError),
        (dict(block_table=table.t().contiguous().t()), ValueError),
        (dict(context_lens=lens[:1]), ValueError),
        (dict(cos_sin=cs.double()), TypeError),
        (dict(max_context=0), dk.DsaError),
        (dict(cos_sin=cs[:, :62].contiguous()), dk.DsaError),
    ]:
        try:
            call(**kw)
        except exc:
            continue
        raise AssertionError(f"expected {exc.__name__} for {list(kw)}")
    logits, idx = call()  # the valid call runs
    assert logits.shape == (b, 64) and idx.shape == (b, 2048)
    try:
        call(cos_sin=cs[:, :62].contiguous())
    except dk.DsaError as e:
        assert e.status_name == "DSA_STATUS_INVALID_ARGUMENT" and "rope_dim 62" in str(e), e
