"""The ops inside torch.cuda.graph capture/replay, under torch.compile(fullgraph=True), with
cudagraph trees (mode="reduce-overhead"), and through torch.library.opcheck."""

import math

from _common import need_cuda, ref_topk, sylvester


def _inputs(torch, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(-20, 20, (2, 131072), generator=g).float()  # split rows: workspace
    lengths = torch.tensor([131072, 77777], dtype=torch.int32)
    x = torch.randn((64, 128), generator=g).bfloat16()
    w = torch.randn(128, generator=g).bfloat16()
    return scores.cuda(), lengths.cuda(), x.cuda(), w.cuda()


def _pipeline(dk, scores, lengths, x, w):
    idx = dk.topk(scores, lengths, 2048)
    h = dk.hadamard(x)
    n = dk.layer_norm(h, w, None, out_dtype=None)
    return idx, h, n


def _check(torch, out, scores, lengths, x, w):
    idx, h, n = out
    torch.testing.assert_close(idx.cpu(), ref_topk(torch, scores, lengths, 2048), rtol=0, atol=0)
    ref_h = (x.double() @ sylvester(torch, 128).cuda()) / math.sqrt(128)
    torch.testing.assert_close(h.double(), ref_h, rtol=1.6e-2, atol=1e-2)
    ref_n = torch.nn.functional.layer_norm(h.float(), (128,), w.float())
    torch.testing.assert_close(n.float(), ref_n, rtol=1.6e-2, atol=4e-2)


def test_cuda_graph_capture_and_replay():
    torch, dk = need_cuda()
    scores, lengths, x, w = _inputs(torch, 1)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: plans made, kernels compiled and loaded
        _pipeline(dk, scores, lengths, x, w)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = _pipeline(dk, scores, lengths, x, w)
    for seed in (2, 3):
        s2, l2, x2, w2 = _inputs(torch, seed)
        l2[1] = 1000 * seed
        scores.copy_(s2)
        lengths.copy_(l2)
        x.copy_(x2)
        w.copy_(w2)
        graph.replay()
        torch.cuda.synchronize()
        _check(torch, out, scores, lengths, x, w)


def test_torch_compile_fullgraph():
    torch, dk = need_cuda()
    compiled = torch.compile(lambda *a: _pipeline(dk, *a), fullgraph=True)
    for seed in (4, 5):
        args = _inputs(torch, seed)
        _check(torch, compiled(*args), *args)


def test_torch_compile_reduce_overhead_cudagraphs():
    torch, dk = need_cuda()
    compiled = torch.compile(lambda *a: _pipeline(dk, *a), mode="reduce-overhead",
                             fullgraph=True)
    for seed in (6, 7, 8, 9):
        args = _inputs(torch, seed)
        out = [t.clone() for t in compiled(*args)]
        _check(torch, out, *args)


def test_opcheck():
    torch, dk = need_cuda()
    scores, lengths, x, w = _inputs(torch, 10)
    ops = torch.ops.dsa_kernels
    torch.library.opcheck(ops.topk.default, (scores, lengths, 64, None, None, None, None, 0,
                                             False, -1, False, False))
    torch.library.opcheck(ops.hadamard.default, (x, 0.0, None))
    torch.library.opcheck(ops.hadamard_fp8.default, (x, 0.0, True, False))
    torch.library.opcheck(ops.layer_norm.default, (x, w, None, 1e-5, False, torch.float32))
