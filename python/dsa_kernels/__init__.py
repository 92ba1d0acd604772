"""dsa_kernels: DeepSeek Sparse Attention indexer kernels for PyTorch, over the C ABI of
``libdsa_kernels.so`` (ctypes).

1. ``topk(scores, lengths, k, ...)``: deterministic top-k indices (ties by index), with fused
   ragged or paged index transforms.
2. ``hadamard(x)`` / ``hadamard_fp8(x)``: Walsh-Hadamard transform, optionally quantized to FP8.
3. ``layer_norm(x, w, b)`` / ``rms_norm(x, w)``.
4. ``indexer_prefill(...)`` / ``indexer_decode(...)``: the whole lightning indexer (key path
   into the paged cache, query path, FP8 scores, top-k) in one call.
5. ``index_fingerprints(indices)`` / ``verify_indices(indices, group)``: cross-rank consistency
   of the selected indices over ``torch.distributed`` (see ``collective``'s docs for why the
   C ABI's borrowed-communicator functions are not exposed).

Every op is a torch custom op (``torch.ops.dsa_kernels.*``) with a fake implementation, runs
on ``torch.cuda.current_stream()``, allocates its outputs with torch, and can be captured in a
CUDA graph after one eager call. The library is found at ``$DSA_KERNELS_LIB``, in this folder,
or in the repository's ``target/release``.
"""

from ._lib import DsaError, library_candidates, load
from .collective import index_fingerprints, mismatched_rows, verify_indices
from .indexer import indexer_decode, indexer_prefill
from .ops import hadamard, hadamard_fp8, layer_norm, rms_norm, topk

__all__ = ["DsaError", "hadamard", "hadamard_fp8", "index_fingerprints", "indexer_decode",
           "indexer_prefill", "layer_norm", "library_candidates", "load", "mismatched_rows",
           "rms_norm", "topk", "verify_indices", "version"]


def version() -> str:
    """The loaded library's version string."""
    return load().dsa_version().decode()
