"""Row fingerprints of top-k indices against a Python statement of the contract
(dsa_indexer::collective::fingerprint), the cross-rank comparison on simulated ranks, a
one-rank NCCL process group, and CUDA-graph replay."""

from _common import need_cuda, skip

MASK = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64's finaliser on ``x + golden ratio``."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def fingerprint(row) -> int:
    """``mix64(sum_j mix64(j << 32 | u32(v_j)) ^ k)`` as a signed 64-bit value."""
    total = 0
    for j, v in enumerate(row):
        total = (total + mix64((j << 32) | (v & 0xFFFFFFFF))) & MASK
    fp = mix64(total ^ len(row))
    return fp - (1 << 64) if fp >= 1 << 63 else fp


def _indices(torch, rows, k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 200000, (rows, k), generator=g, dtype=torch.int32)


def test_index_fingerprints_match_the_contract():
    torch, dk = need_cuda()
    for rows, k, seed in [(1, 1, 1), (19, 2048, 2), (99, 7, 3), (3, 1025, 4)]:
        idx = _indices(torch, rows, k, seed)
        got = dk.index_fingerprints(idx.cuda())
        assert got.dtype == torch.int64 and got.shape == (rows,)
        assert got.cpu().tolist() == [fingerprint(r) for r in idx.tolist()], f"{rows}x{k}"
    empty = dk.index_fingerprints(torch.zeros((0, 8), dtype=torch.int32, device="cuda"))
    assert empty.shape == (0,)


def test_mismatched_rows_of_two_simulated_ranks():
    torch, dk = need_cuda()
    a = _indices(torch, 12, 256, 5).cuda()
    b = a.clone()
    b[3, 5] += 1  # one changed index
    b[7] = b[7].flip(0)  # same indices, other order
    b[9] = a[9]
    fa, fb = dk.index_fingerprints(a), dk.index_fingerprints(b)
    packed = torch.minimum(torch.cat([fa, torch.bitwise_not(fa)]),
                           torch.cat([fb, torch.bitwise_not(fb)]))
    flags = dk.mismatched_rows(packed)
    assert flags.nonzero().flatten().tolist() == [3, 7]
    same = torch.cat([fa, torch.bitwise_not(fa)])
    assert not bool(dk.mismatched_rows(same).any())


def test_verify_indices_over_a_one_rank_nccl_group():
    torch, dk = need_cuda()
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_nccl_available():
        skip("torch.distributed with NCCL is not available")
    if dist.is_initialized():
        skip("a process group is already initialised")
    dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1,
                            device_id=torch.device("cuda", torch.cuda.current_device()))
    try:
        idx = _indices(torch, 64, 2048, 6).cuda()
        flags = dk.verify_indices(idx)
        assert flags.shape == (64,) and flags.dtype == torch.bool
        assert not bool(flags.any())
    finally:
        dist.destroy_process_group()


def test_index_fingerprints_in_a_cuda_graph():
    torch, dk = need_cuda()
    idx = _indices(torch, 33, 512, 7).cuda()
    dk.index_fingerprints(idx)  # warm-up: kernels compiled and loaded
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = dk.index_fingerprints(idx)
    for seed in (8, 9):
        idx.copy_(_indices(torch, 33, 512, seed))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, dk.index_fingerprints(idx)), seed
