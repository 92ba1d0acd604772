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
