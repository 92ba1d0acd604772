"""Side by side: dsa_kernels' ops vs PyTorch (and FlashInfer's top_k when installed) on the
same shapes in one process. Prints a markdown table of median times and ratios.

    DSA_KERNELS_LIB=target/release/libdsa_kernels.so python3 python/bench_side_by_side.py

Each op is timed two ways: "graph" replays a CUDA graph of 20 calls (GPU time per call, no
host overhead) and "eager" brackets each Python call with CUDA events (what an eager caller
sees, host overhead included). Medians of --iters samples. Ratio = torch time / ours (> 1:
ours is faster).
"""

import argparse
import math
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dsa_kernels as dk  # noqa: E402

CALLS_PER_GRAPH = 20


def eager_us(fn, iters):
    for _ in range(3):
        fn()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3)
    return statistics.median(times)


def graph_us(fn, iters):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(CALLS_PER_GRAPH):
            fn()
    g.replay()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / CALLS_PER_GRAPH)
    return statistics.median(times)


def hadamard_matrix(n, dtype):
    h = torch.ones((1, 1), dtype=torch.float32, device="cuda")
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return (h / math.sqrt(n)).to(dtype)


def cases():
    """(op, shape text, ours, {baseline name: fn}) for every benchmarked shape."""
    try:
        import flashinfer
    except ImportError:
        flashinfer = None
    for rows, n, k in [(1, 131072, 2048), (64, 65536, 2048), (256, 32768, 2048),
                       (1024, 8192, 2048), (4096, 4096, 512)]:
        for dtype in (torch.float32, torch.bfloat16):
            s = torch.randn((rows, n), device="cuda", dtype=dtype)
            lengths = torch.full((rows,), n, dtype=torch.int32, device="cuda")
            base = {"torch.topk": lambda s=s, k=k: torch.topk(s, k, dim=-1, sorted=False)}
            if flashinfer is not None and hasattr(flashinfer, "top_k"):
                base["flashinfer.top_k"] = lambda s=s, k=k: flashinfer.top_k(s, k)
            yield ("topk", f"{rows}x{n} k={k} {str(dtype)[6:]}",
                   lambda s=s, lengths=lengths, k=k: dk.topk(s, lengths, k), base)
    for rows, n in [(65536, 128), (16384, 1024), (1024, 16384)]:
        x = torch.randn((rows, n), device="cuda", dtype=torch.bfloat16)
        h = hadamard_matrix(n, torch.bfloat16)
        yield ("hadamard", f"{rows}x{n} bf16", lambda x=x: dk.hadamard(x),
               {"x @ H (bf16 matmul)": lambda x=x, h=h: x @ h})
        yield ("hadamard_fp8", f"{rows}x{n} bf16->e4m3 block128",
               lambda x=x: dk.hadamard_fp8(x, block128=True),
               {"x @ H + torch quant": lambda x=x, h=h: _torch_fp8(x @ h)})
    for rows, dim in [(65536, 128), (16384, 1024), (4096, 7168)]:
        x = torch.randn((rows, dim), device="cuda", dtype=torch.bfloat16)
        w = torch.randn(dim, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(dim, device="cuda", dtype=torch.bfloat16)
        F = torch.nn.functional
        yield ("layer_norm", f"{rows}x{dim} bf16", lambda x=x, w=w, b=b: dk.layer_norm(x, w, b),
               {"F.layer_norm": lambda x=x, w=w, b=b, d=dim: F.layer_norm(x, (d,), w, b)})
        if hasattr(F, "rms_norm"):
            yield ("rms_norm", f"{rows}x{dim} bf16", lambda x=x, w=w: dk.rms_norm(x, w),
                   {"F.rms_norm": lambda x=x, w=w, d=dim: F.rms_norm(x, (d,), w, 1e-6)})


def _torch_fp8(y):
    g = y.view(y.shape[0], -1, 128).float()
    s = g.abs().amax(-1, keepdim=True).clamp(min=1e-4) / 448
    return (g / s).to(torch.float8_e4m3fn), s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--only", default="", help="comma-separated op names")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, dsa-kernels "
          f"{dk.version()}; median us, ratio = baseline / ours\n")
    print("| op | shape | ours graph | ours eager | baseline | base graph | base eager "
          "| ratio graph | ratio eager |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for op, shape, ours, baselines in cases():
        if only and op not in only:
            continue
        og, oe = graph_us(ours, args.iters), eager_us(ours, args.iters)
        for name, fn in baselines.items():
            try:
                bg, be = graph_us(fn, args.iters), eager_us(fn, args.iters)
            except Exception as e:  # noqa: BLE001 - a baseline that cannot run is reported
                print(f"| {op} | {shape} | {og:.1f} | {oe:.1f} | {name} | n/a ({e}) | | | |")
                continue
            print(f"| {op} | {shape} | {og:.1f} | {oe:.1f} | {name} | {bg:.1f} | {be:.1f} "
                  f"| {bg / og:.2f} | {be / oe:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
