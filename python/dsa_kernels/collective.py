"""Cross-rank consistency of top-k indices from PyTorch.

The C ABI's collective functions borrow an engine's ``ncclComm_t``. From PyTorch that is out of
reach in a safe way: the library loads NCCL by the names ``libnccl.so``/``libnccl.so.<cuda>``,
not the ``libnccl.so.2`` of PyTorch's wheels, so it would call a *second* NCCL library on a
communicator created by PyTorch's (or fail to find one). What works is the protocol's own
kernel: ``index_fingerprints`` computes every row's 64-bit fingerprint on the device
(order-sensitive, bit-exact with ``dsa_indexer::collective::fingerprint``), and
``verify_indices`` compares them across ranks with ``torch.distributed`` (one MIN all-reduce of
16 bytes per row on the process group's own communicator). Broadcasting rank 0's indices is
``torch.distributed.broadcast(indices, src=0)``.
"""

import ctypes
from typing import Optional

import torch

from . import _lib
from ._lib import check
from .ops import _check_cuda, _stream


@torch.library.custom_op("dsa_kernels::index_fingerprints", mutates_args=())
def _fingerprints_op(indices: torch.Tensor) -> torch.Tensor:
    device = indices.device
    _check_cuda("indices", indices, device)
    if indices.dtype != torch.int32 or indices.dim() != 2 or not indices.is_contiguous():
        raise ValueError(f"indices must be a contiguous [rows, k] int32 tensor, got "
                         f"{indices.dtype} {list(indices.shape)}")
    rows, k = indices.shape
    if rows == 0:
        return torch.empty((0,), dtype=torch.int64, device=device)
    lib = _lib.load()
    need = ctypes.c_size_t()
    check(lib.dsa_collective_verify_workspace_bytes(rows, ctypes.byref(need)))
    ws = torch.empty(need.value // 8, dtype=torch.int64, device=device)
    check(lib.dsa_collective_fingerprint(indices.data_ptr(), rows, k, ws.data_ptr(), need.value,
                                         _stream(device)))
    return ws[:rows].clone()


@_fingerprints_op.register_fake
def _(indices):
    return indices.new_empty((indices.shape[0],), dtype=torch.int64)


def index_fingerprints(indices: torch.Tensor) -> torch.Tensor:
    """The 64-bit fingerprint of each row of ``indices`` (``[rows, k]`` int32): ``[rows]``
    int64 (the u64 bits). Equal rows give equal fingerprints; a changed index or order changes
    it. No host synchronisation (capturable)."""
    return torch.ops.dsa_kernels.index_fingerprints(indices)


def mismatched_rows(reduced: torch.Tensor) -> torch.Tensor:
    """Rows that differ across ranks, from the MIN all-reduce of ``cat([fp, ~fp])`` (``[2 *
    rows]`` int64): ``min(fp) != ~min(~fp)``, i.e. ``min != max``. Returns ``[rows]`` bool."""
    rows = reduced.shape[0] // 2
    return reduced[:rows] != torch.bitwise_not(reduced[rows:])


def verify_indices(indices: torch.Tensor, group: Optional[object] = None) -> torch.Tensor:
    """Which rows of ``indices`` differ on some rank of ``group`` (a ``torch.distributed``
    process group; None: the default): ``[rows]`` bool on the device, no host sync. Every rank
    calls it with the same shape. ``.sum()`` counts the rows; ``.any().item()`` asks once."""
    import torch.distributed as dist

    fp = index_fingerprints(indices)
    packed = torch.cat([fp, torch.bitwise_not(fp)])
    dist.all_reduce(packed, op=dist.ReduceOp.MIN, group=group)
    return mismatched_rows(packed)
