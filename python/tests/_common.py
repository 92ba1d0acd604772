"""Shared helpers of the Python tests: skipping without torch/CUDA (with or without pytest),
torch references, and the import of the package from this repository."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    import pytest
except ImportError:  # the plain runner (run_all.py) works without pytest
    pytest = None


class Skipped(Exception):
    """A test skipped itself (used when pytest is absent)."""


PLAIN = False  # set by run_all.py's own runner, which does not know pytest's skip


def skip(reason: str):
    if pytest is not None and not PLAIN:
        pytest.skip(reason)
    raise Skipped(reason)


def need_torch():
    """(torch, dsa_kernels) without needing a GPU or the library (fake/meta paths)."""
    try:
        import torch
    except ImportError:
        skip("torch is not installed")
    import dsa_kernels
    return torch, dsa_kernels


def need_cuda():
    """(torch, dsa_kernels), or skip the test when torch, a GPU or the library is missing."""
    try:
        import torch
    except ImportError:
        skip("torch is not installed")
    if not torch.cuda.is_available():
        skip("no CUDA device")
    import dsa_kernels
    try:
        dsa_kernels.load()
    except OSError as e:
        skip(str(e))
    return torch, dsa_kernels


def ref_topk(torch, scores, lengths, k, row_starts=None, tie_large=False, sorted_out=False):
    """The top-k contract in torch: a stable descending sort (NaN first, ties by index) of each
    row's clamped window; -1 padding; ascending index unless sorted_out."""
    rows, stride = scores.shape
    out = torch.full((rows, k), -1, dtype=torch.int32)
    s = scores.float().cpu()
    starts = row_starts.cpu().tolist() if row_starts is not None else [0] * rows
    for i, (start, n) in enumerate(zip(starts, lengths.cpu().tolist())):
        start = min(max(start, 0), stride)
        n = min(max(n, 0), stride - start)
        v = s[i, start:start + n]
        if tie_large:
            v = v.flip(0)
        order = torch.sort(v, descending=True, stable=True).indices[:k]
        if tie_large:
            order = n - 1 - order
        if not sorted_out:
            order = order.sort().values
        out[i, :len(order)] = order.to(torch.int32)
    return out


def sylvester(torch, n):
    """The n x n Hadamard matrix in Sylvester order (as scipy.linalg.hadamard), float64."""
    h = torch.ones((1, 1), dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def fwht(torch, x):
    """x @ H_n in float64 by butterflies (for n too large for the matrix); x is [rows, n]."""
    n = x.shape[-1]
    y, h = x.double().reshape(-1, n), 1
    while h < n:
        y = y.view(-1, n // (2 * h), 2, h)
        y = torch.stack((y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]), dim=2).view(-1, n)
        h *= 2
    return y


def tol(torch, dtype):
    """(rtol, atol) for one rounding to `dtype` of values of magnitude ~1."""
    return {torch.float32: (1e-4, 1e-4), torch.float16: (2e-3, 2e-3),
            torch.bfloat16: (1.6e-2, 1e-2)}[dtype]
