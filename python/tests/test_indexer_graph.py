"""The indexer ops inside torch.cuda.graph capture/replay and under torch.compile(fullgraph=True):
bit for bit what the eager op gives on the same data (the cache reset before each run), and
through torch.library.opcheck."""

import _indexer_ref as ref
from _common import need_cuda

B, STRIDE, PAGE, DIM, HEADS = 6, 3000, 64, 128, 64


def _decode_inputs(torch, seed):
    """Decode inputs of fixed shapes (so one graph serves every seed) on the GPU."""
    g = torch.Generator().manual_seed(seed)
    cols = -(-STRIDE // PAGE)
    pages = B * cols + 2
    lens = torch.randint(1, STRIDE + 1, (B,), generator=g, dtype=torch.int32)
    lens[0] = STRIDE
    table = torch.randperm(pages, generator=g)[:B * cols].reshape(B, cols).to(torch.int32)
    last = (lens - 1).long()
    locs = table.long()[torch.arange(B), last // PAGE] * PAGE + last % PAGE
    a = dict(
        q=(torch.rand((B, HEADS, DIM), generator=g) * 4 - 2).bfloat16(),
        weights=torch.rand((B, HEADS), generator=g) * 2 - 1,
        k=(torch.rand((B, DIM), generator=g) * 4 - 1).bfloat16(),
        positions=last, out_cache_loc=locs,
        cache=ref.random_cache(torch, g, pages, PAGE, DIM),
        block_table=table, context_lens=lens,
        cos_sin=ref.rope_table(torch, STRIDE, 64),
        ln_weight=(torch.rand(DIM, generator=g) + 0.5).bfloat16(),
    )
    return {n: v.cuda() for n, v in a.items()}


def _decode(dk, a):
    return dk.indexer_decode(a["q"], a["weights"], a["k"], a["positions"], a["out_cache_loc"],
                             a["cache"], a["block_table"], a["context_lens"], STRIDE,
                             cos_sin=a["cos_sin"], ln_weight=a["ln_weight"], topk=512)


def _prefill_inputs(torch, seed, tokens=40, prefix=60):
    g = torch.Generator().manual_seed(seed)
    n = prefix + tokens
    keys = ref.random_cache(torch, g, 1, n, DIM)
    k8, ks = ref.cache_views(torch, keys, n, DIM)
    a = dict(
        q=(torch.rand((tokens, HEADS, DIM), generator=g) * 4 - 2).bfloat16(),
        weights=torch.rand((tokens, HEADS), generator=g) * 2 - 1,
        k=(torch.rand((tokens, DIM), generator=g) * 4 - 1).bfloat16(),
        positions=torch.arange(prefix, n), out_cache_loc=torch.randperm(4 * PAGE, generator=g)[
            :tokens],
        cache=ref.random_cache(torch, g, 4, PAGE, DIM),
        keys_fp8=k8.clone(), keys_scale=ks.clone(),
        ks=torch.zeros(tokens, dtype=torch.int32),
        ke=torch.arange(prefix + 1, n + 1, dtype=torch.int32),
        cos_sin=ref.rope_table(torch, n, 64),
    )
    return {n_: v.cuda() for n_, v in a.items()}, prefix


def _prefill(dk, a, prefix):
    return dk.indexer_prefill(a["q"], a["weights"], a["k"], a["positions"], a["out_cache_loc"],
                              a["cache"], a["keys_fp8"], a["keys_scale"], a["ks"], a["ke"],
                              new_keys_offset=prefix, cos_sin=a["cos_sin"], topk=64)


def _same(torch, what, got, want):
    for i, (x, y) in enumerate(zip(got, want)):
        if x.dtype == torch.float32:
            x, y = x.view(torch.int32), y.view(torch.int32)
        assert torch.equal(x, y), f"{what}: output {i} differs"


def test_indexer_decode_cuda_graph_replay_equals_eager():
    torch, dk = need_cuda()
    a = _decode_inputs(torch, 1)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: plan made, kernels compiled and loaded
        _decode(dk, a)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = _decode(dk, a)
    for seed in (2, 3, 4):
        new = _decode_inputs(torch, seed)
        for name, t in new.items():
            a[name].copy_(t)
        graph.replay()
        torch.cuda.synchronize()
        replayed = (out[0].clone(), out[1].clone(), a["cache"].clone())
        a["cache"].copy_(new["cache"])
        logits, idx = _decode(dk, a)
        torch.cuda.synchronize()
        _same(torch, f"seed {seed}", replayed, (logits, idx, a["cache"]))
        assert bool((idx >= 0).any())


def test_indexer_torch_compile_fullgraph_equals_eager():
    torch, dk = need_cuda()
    torch._dynamo.reset()

    def step(d, p, prefix):
        return _decode(dk, d) + _prefill(dk, p, prefix)

    compiled = torch.compile(step, fullgraph=True)
    for seed in (5, 6):
        d, (p, prefix) = _decode_inputs(torch, seed), _prefill_inputs(torch, seed)
        d0 = {n: t.clone() for n, t in d.items()}
        p0 = {n: t.clone() for n, t in p.items()}
        got = compiled(d, p, prefix)
        got_state = (d["cache"].clone(), p["cache"].clone(), p["keys_fp8"].clone(),
                     p["keys_scale"].clone())
        want = step(d0, p0, prefix)
        want_state = (d0["cache"], p0["cache"], p0["keys_fp8"], p0["keys_scale"])
        torch.cuda.synchronize()
        _same(torch, f"compiled outputs, seed {seed}", got, want)
        _same(torch, f"compiled writes, seed {seed}", got_state, want_state)


def test_indexer_opcheck():
    torch, dk = need_cuda()
    ops = torch.ops.dsa_kernels
    a = _decode_inputs(torch, 7)
    torch.library.opcheck(ops.indexer_decode.default, (
        a["q"], a["weights"], a["k"], a["ln_weight"], None, a["positions"], a["cos_sin"],
        a["out_cache_loc"], a["cache"], a["block_table"], a["context_lens"], STRIDE, 512, 1e-6,
        False, False))
    p, prefix = _prefill_inputs(torch, 8)
    torch.library.opcheck(ops.indexer_prefill.default, (
        p["q"], p["weights"], p["k"], None, None, p["positions"], p["cos_sin"],
        p["out_cache_loc"], p["cache"], p["keys_fp8"], p["keys_scale"], prefix, p["ks"],
        p["ke"], None, 0, 64, 1e-6, False, True))
    idx = torch.randint(-1, 10000, (19, 64), dtype=torch.int32, device="cuda")
    torch.library.opcheck(ops.index_fingerprints.default, (idx,))
