"""The fake (meta) implementations give every op's output shapes and dtypes without a GPU,
and torch.compile(fullgraph=True) traces the Python wrappers without a graph break."""

from _common import need_torch


def _meta_inputs(torch):
    scores = torch.empty((19, 4096), dtype=torch.bfloat16, device="meta")
    lengths = torch.empty((19,), dtype=torch.int32, device="meta")
    x = torch.empty((3, 5, 256), dtype=torch.bfloat16, device="meta")
    w = torch.empty((256,), dtype=torch.bfloat16, device="meta")
    return scores, lengths, x, w


def _pipeline(dk, scores, lengths, x, w):
    idx = dk.topk(scores, lengths, 64, sorted=True)
    h = dk.hadamard(x, out_dtype=None)
    q, s = dk.hadamard_fp8(x, block128=True)
    n = dk.rms_norm(h, w, out_dtype=None)
    return idx, h, q, s, n


def _check(torch, out):
    idx, h, q, s, n = out
    assert idx.shape == (19, 64) and idx.dtype == torch.int32
    assert h.shape == (3, 5, 256) and h.dtype == torch.bfloat16
    assert q.shape == (3, 5, 256) and q.dtype == torch.float8_e4m3fn
    assert s.shape == (3, 5, 2) and s.dtype == torch.float32
    assert n.shape == (3, 5, 256) and n.dtype == torch.bfloat16


def test_fake_shapes_on_meta_tensors():
    torch, dk = need_torch()
    _check(torch, _pipeline(dk, *_meta_inputs(torch)))
    x = torch.empty((7, 128), dtype=torch.float16, device="meta")
    assert dk.layer_norm(x, out_dtype=torch.float32).dtype == torch.float32
    assert dk.hadamard_fp8(x)[1].shape == (7, 1)


def test_compile_fullgraph_traces_on_meta_tensors():
    torch, dk = need_torch()
    torch._dynamo.reset()
    compiled = torch.compile(lambda *a: _pipeline(dk, *a), fullgraph=True, backend="eager")
    _check(torch, compiled(*_meta_inputs(torch)))


def test_ops_are_registered_with_schemas():
    torch, dk = need_torch()
    ops = torch.ops.dsa_kernels
    for name in ("topk", "hadamard", "hadamard_fp8", "layer_norm"):
        schema = str(getattr(ops, name).default._schema)
        assert schema.startswith(f"dsa_kernels::{name}("), schema
    assert "ScalarType? out_dtype" in str(ops.layer_norm.default._schema)


def _meta_indexer(torch, t=5, h=64, d=128, page=64, s=300):
    m = dict(device="meta")
    return dict(
        q=torch.empty((t, h, d), dtype=torch.bfloat16, **m),
        weights=torch.empty((t, h), dtype=torch.float32, **m),
        k=torch.empty((t, d), dtype=torch.bfloat16, **m),
        positions=torch.empty((t,), dtype=torch.int64, **m),
        out_cache_loc=torch.empty((t,), dtype=torch.int64, **m),
        cache=torch.empty((40, page * (d + 4)), dtype=torch.uint8, **m),
        cos_sin=torch.empty((4096, 64), dtype=torch.float32, **m),
        block_table=torch.empty((t, 20), dtype=torch.int32, **m),
        context_lens=torch.empty((t,), dtype=torch.int32, **m),
        keys_fp8=torch.empty((s, d), dtype=torch.float8_e4m3fn, **m),
        keys_scale=torch.empty((s,), dtype=torch.float32, **m),
        ks=torch.empty((t,), dtype=torch.int32, **m),
        ke=torch.empty((t,), dtype=torch.int32, **m),
    )


def _indexer_calls(dk, a):
    tok = (a["q"], a["weights"], a["k"], a["positions"], a["out_cache_loc"], a["cache"])
    dl, di = dk.indexer_decode(*tok, a["block_table"], a["context_lens"], 1000,
                               cos_sin=a["cos_sin"], topk=256)
    pl, pi = dk.indexer_prefill(*tok, a["keys_fp8"], a["keys_scale"], a["ks"], a["ke"],
                                new_keys_offset=295, cos_sin=a["cos_sin"])
    sl, _ = dk.indexer_prefill(*tok, a["keys_fp8"], a["keys_scale"], a["ks"], a["ke"],
                               logits_stride=512, topk=64, rope="interleaved")
    fp = dk.index_fingerprints(di)
    return dl, di, pl, pi, sl, fp


def _check_indexer(torch, out):
    dl, di, pl, pi, sl, fp = out
    assert dl.shape == (5, 1000) and dl.dtype == torch.float32
    assert di.shape == (5, 256) and di.dtype == torch.int32
    assert pl.shape == (5, 300) and pl.dtype == torch.float32
    assert pi.shape == (5, 2048) and pi.dtype == torch.int32
    assert sl.shape == (5, 512)
    assert fp.shape == (5,) and fp.dtype == torch.int64


def test_indexer_fake_shapes_on_meta_tensors():
    torch, dk = need_torch()
    _check_indexer(torch, _indexer_calls(dk, _meta_indexer(torch)))


def test_indexer_compile_fullgraph_traces_on_meta_tensors():
    torch, dk = need_torch()
    torch._dynamo.reset()
    compiled = torch.compile(lambda a: _indexer_calls(dk, a), fullgraph=True, backend="eager")
    _check_indexer(torch, compiled(_meta_indexer(torch)))


def test_indexer_ops_declare_what_they_write():
    torch, dk = need_torch()
    ops = torch.ops.dsa_kernels
    decode = str(ops.indexer_decode.default._schema)
    assert "!) cache" in decode and decode.count("!)") == 1, decode
    prefill = str(ops.indexer_prefill.default._schema)
    for name in ("cache", "keys_fp8", "keys_scale"):
        assert f"!) {name}" in prefill, prefill
    assert "!)" not in str(ops.index_fingerprints.default._schema)


def test_indexer_rejects_host_tensors_and_bad_options():
    torch, dk = need_torch()
    a = {n: torch.zeros(t.shape, dtype=t.dtype) for n, t in _meta_indexer(torch).items()}
    tok = (a["q"], a["weights"], a["k"], a["positions"], a["out_cache_loc"], a["cache"])
    for call, exc in [
        (lambda: dk.indexer_decode(*tok, a["block_table"], a["context_lens"], 1000), ValueError),
        (lambda: dk.indexer_decode(*tok, a["block_table"], a["context_lens"], 1000,
                                   rope="gptj"), ValueError),
        (lambda: dk.index_fingerprints(a["ks"][None]), ValueError),
    ]:
        try:
            call()
        except exc:
            continue
        raise AssertionError(f"expected {exc.__name__}")
