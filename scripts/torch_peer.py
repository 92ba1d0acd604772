#!/usr/bin/env python3
"""The peer in the same device call: torch's equivalents timed with CUDA events.

Prints one JSON object per line: {"op", "shape", "us"}. Median of many runs after warm-up, inputs
rotated so the working set exceeds L2, random data (never zeros).
"""
import json, sys
import torch

def median_us(fn, inputs, warmup=5, iters=50):
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    # As dsa's median_gpu_us: a spin before each start event keeps the GPU busy while the host
    # enqueues the run, so the interval is GPU time, not Python's launch cost; a clock loop, not
    # a memset, whose dirty lines in L2 would steal the run's bandwidth. Longer than dsa's 50k
    # cycles: Python enqueues a run in 10-20 us.
    for i in range(iters):
        torch.cuda._sleep(200_000)
        starts[i].record(); fn(inputs[i % len(inputs)]); ends[i].record()
    torch.cuda.synchronize()
    t = sorted(s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends))
    return t[len(t) // 2]

def copies(make, nbytes, l2=60 << 20):
    n = max(1, -(-3 * l2 // max(nbytes, 1)))
    return [make() for _ in range(min(n, 64))]

def topk(rows, length, k, causal=False):
    dev = "cuda"
    def make():
        x = torch.randn(rows, length, device=dev)
        if causal:
            mask = torch.arange(length, device=dev)[None, :] > torch.arange(rows, device=dev)[:, None]
            x = x.masked_fill(mask, float("-inf"))
        return x
    xs = copies(make, rows * length * 4)
    kk = min(k, length)
    return median_us(lambda x: torch.topk(x, kk, dim=-1, sorted=False), xs)

def layernorm(rows, dim):
    xs = copies(lambda: torch.randn(rows, dim, device="cuda", dtype=torch.bfloat16), rows * dim * 2)
    w = torch.randn(dim, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(w)
    return median_us(lambda x: torch.nn.functional.layer_norm(x, (dim,), w, b, 1e-6), xs)

def hadamard(rows, dim):
    import scipy.linalg  # noqa: F401 (only for the matrix)
    h = torch.tensor(__import__("scipy.linalg").linalg.hadamard(dim), device="cuda", dtype=torch.bfloat16) * dim ** -0.5
    xs = copies(lambda: torch.randn(rows, dim, device="cuda", dtype=torch.bfloat16), rows * dim * 2)
    return median_us(lambda x: x @ h, xs)

def _collective_rank(rank, world, port, out):
    import torch.distributed as dist
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    res = []
    for rows in (1, 8, 64, 256):
        fp = torch.randint(1, 1 << 62, (rows, 2), dtype=torch.int64, device="cuda")  # 16 B a row, as our verify
        fp1 = fp[:, 0].contiguous()  # 8 B a row: one fingerprint, gathered from every rank
        gathered = torch.empty(world * rows, dtype=torch.int64, device="cuda")
        idx = torch.randint(0, 1 << 20, (rows, 2048), dtype=torch.int32, device="cuda")  # broadcast's rows
        ar = median_us(lambda x: dist.all_reduce(x, op=dist.ReduceOp.MIN), [fp], iters=100)
        ag = median_us(lambda x: dist.all_gather_into_tensor(gathered, x), [fp1], iters=100)
        bc = median_us(lambda x: dist.broadcast(x, 0), [idx], iters=100)
        res.append((rows, ar, ag, bc))
    out.put((rank, res))
    dist.destroy_process_group()

def collective():
    """torch.distributed (NCCL) all-reduce of 16 B a row, all-gather of 8 B a row and broadcast
    of 8 KiB a row over every GPU, one process a GPU: the latency floor of the transport our collective uses."""
    import torch.multiprocessing as mp
    world = torch.cuda.device_count()
    ctx = mp.get_context("spawn"); q = ctx.Queue()
    ps = [ctx.Process(target=_collective_rank, args=(r, world, 29511, q)) for r in range(world)]
    for p in ps: p.start()
    got = dict(q.get() for _ in ps)
    for p in ps: p.join()
    for i, (rows, *_) in enumerate(got[0]):
        slowest = lambda j: max(got[r][i][j] for r in got)
        print(json.dumps({"op": "all_reduce_min", "world": world, "shape": f"{rows}x16B", "us": slowest(1)}), flush=True)
        print(json.dumps({"op": "all_gather", "world": world, "shape": f"{rows}x8B", "us": slowest(2)}), flush=True)
        print(json.dumps({"op": "broadcast", "world": world, "shape": f"{rows}x2048", "us": slowest(3)}), flush=True)

def main():
    which = sys.argv[1:] or ["topk"]
    if "collective" in which:
        collective()
    if "topk" in which:
        for rows in (1, 8, 64, 256):
            for length in (8192, 32768, 131072, 262144):
                print(json.dumps({"op": "topk", "shape": f"{rows}x{length}", "us": topk(rows, length, 2048)}), flush=True)
        print(json.dumps({"op": "topk", "shape": "1024x8192", "us": topk(1024, 8192, 2048)}), flush=True)
        for t in (4096, 16384):
            print(json.dumps({"op": "topk", "shape": f"prefill{t}", "us": topk(t, t, 2048, causal=True)}), flush=True)
    if "norm" in which:
        for rows, dim in ((1 << 20, 128), (65536, 7168)):
            print(json.dumps({"op": "layernorm", "shape": f"{rows}x{dim}", "us": layernorm(rows, dim)}), flush=True)
    if "hadamard" in which:
        for rows, dim in ((1 << 20, 128),):
            print(json.dumps({"op": "hadamard", "shape": f"{rows}x{dim}", "us": hadamard(rows, dim)}), flush=True)

if __name__ == "__main__":
    main()
