"""dsa_kernels: DeepSeek Sparse Attention indexer kernels for PyTorch, over the C ABI of
``libdsa_kernels.so`` (ctypes).

1. ``topk(scores, lengths, k, ...)``: deterministic top-k indices (ties by index), with fused
   ragged or paged index transforms.
2. ``hadamard(x)`` / ``hadamard_fp8(x)``: Walsh-Hadamard transform, optionally quantized to FP8.
3. ``layer_norm(x, w, b)`` / ``rms_norm(x, w)``.

Every op is a torch custom op (``torch.ops.dsa_kernels.*``) with a fake implementation, runs
on ``torch.cuda.current_stream()``, allocates its outputs with torch, and can be captured in a
CUDA graph after one eager call. The library is found at ``$DSA_KERNELS_LIB``, in this folder,
or in the repository's ``target/release``.
"""

from ._lib import DsaError, library_candidates, load
from .ops import hadamard, hadamard_fp8, layer_norm, rms_norm, topk

__all__ = ["DsaError", "hadamard", "hadamard_fp8", "layer_norm", "library_candidates", "load",
           "rms_norm", "topk", "version"]


def version() -> str:
    """The loaded library's version string."""
    return load().dsa_version().decode()
