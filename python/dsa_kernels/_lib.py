"""ctypes bindings of the C ABI (``ffi/include/dsa_kernels.h``): library loading, the structs,
and status handling. Nothing here imports torch."""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_float, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from pathlib import Path

ABI_VERSION = 1
LIB_NAME = "libdsa_kernels.so"

# Status codes (DsaStatus).
OK, INVALID_ARGUMENT, NO_DRIVER, NO_NVRTC, COMPILE, CUDA, UNSUPPORTED, INTERNAL, NCCL = range(9)
# DsaDtype.
F32, BF16, F16, FP8_E4M3 = range(4)


class DsaError(RuntimeError):
    """A call into the library failed: ``status`` is the DsaStatus name, the message says why."""

    def __init__(self, status: int, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.status = status
        self.status_name = name


class DsaDeviceInfo(ctypes.Structure):
    _fields_ = [("ordinal", c_int32), ("sm_count", c_int32), ("cc_major", c_int32),
                ("cc_minor", c_int32), ("max_smem_per_block", c_int32), ("l2_bytes", c_int32),
                ("name_hash", c_uint64)]


class DsaTopkConfig(ctypes.Structure):
    _fields_ = [("k", c_int32), ("dtype", c_int32), ("tie_break", c_int32), ("order", c_int32),
                ("transform", c_int32), ("page_size", c_int32), ("request_map", c_int32),
                ("threads", c_int32), ("cluster", c_int32)]


class DsaTopkArgs(ctypes.Structure):
    _fields_ = [("scores", c_void_p), ("lengths", c_void_p), ("row_starts", c_void_p),
                ("out", c_void_p), ("workspace", c_void_p), ("workspace_bytes", c_size_t),
                ("offsets", c_void_p), ("page_table", c_void_p), ("rows_to_requests", c_void_p),
                ("page_table_stride", c_int64), ("page_table_cols", c_int64),
                ("num_requests", c_int64)]


class DsaHadamardParams(ctypes.Structure):
    _fields_ = [("n", c_int64), ("rows", c_int64), ("in_stride", c_int64),
                ("out_stride", c_int64), ("input_dtype", c_int32), ("output_dtype", c_int32),
                ("scale_group", c_int32), ("pow2_scales", c_int32), ("scale", c_float)]


class DsaHadamardSizes(ctypes.Structure):
    _fields_ = [("input_len", c_uint64), ("output_len", c_uint64), ("scales_len", c_uint64)]


class DsaLayerNormParams(ctypes.Structure):
    _fields_ = [("dim", c_int64), ("rows", c_int64), ("x_stride", c_int64), ("y_stride", c_int64),
                ("input_dtype", c_int32), ("output_dtype", c_int32), ("norm", c_int32),
                ("eps", c_float)]


class DsaLayerNormSizes(ctypes.Structure):
    _fields_ = [("input_len", c_uint64), ("output_len", c_uint64)]


class DsaIndexerConfig(ctypes.Structure):
    _fields_ = [("heads", c_int32), ("dim", c_int32), ("rope_dim", c_int32),
                ("page_size", c_int32), ("k", c_int32), ("input_dtype", c_int32),
                ("rope_style", c_int32), ("scale_format", c_int32), ("policy", c_int32),
                ("eps", c_float)]


class DsaIndexerPrefillShape(ctypes.Structure):
    _fields_ = [("tokens", c_int64), ("num_keys", c_int64), ("stride", c_int64),
                ("max_positions", c_int64), ("cache_pages", c_int64)]


class DsaIndexerDecodeShape(ctypes.Structure):
    _fields_ = [("batch", c_int64), ("stride", c_int64), ("bt_stride", c_int64),
                ("max_positions", c_int64), ("cache_pages", c_int64)]


class DsaIndexerPlanInfo(ctypes.Structure):
    _fields_ = [("workspace_bytes", c_size_t), ("logits_shape", c_int64 * 2),
                ("indices_shape", c_int64 * 2), ("bt_cols", c_int64),
                ("q_fp8_offset", c_size_t), ("weights_offset", c_size_t),
                ("verify_offset", c_size_t), ("verify_bytes", c_size_t), ("kind", c_int32)]


class DsaIndexerTokens(ctypes.Structure):
    _fields_ = [("q", c_void_p), ("weights", c_void_p), ("k", c_void_p), ("ln_weight", c_void_p),
                ("ln_bias", c_void_p), ("positions", c_void_p), ("cos_sin", c_void_p),
                ("out_cache_loc", c_void_p), ("cache", c_void_p)]


class DsaIndexerPrefillArgs(ctypes.Structure):
    _fields_ = [("tokens", DsaIndexerTokens), ("keys_fp8", c_void_p), ("keys_scale", c_void_p),
                ("new_keys_offset", c_int64), ("ks", c_void_p), ("ke", c_void_p),
                ("topk_offsets", c_void_p), ("logits", c_void_p), ("indices", c_void_p),
                ("workspace", c_void_p), ("workspace_bytes", c_size_t)]


class DsaIndexerDecodeArgs(ctypes.Structure):
    _fields_ = [("tokens", DsaIndexerTokens), ("block_table", c_void_p),
                ("context_lens", c_void_p), ("logits", c_void_p), ("indices", c_void_p),
                ("workspace", c_void_p), ("workspace_bytes", c_size_t)]


_SIGNATURES = {
    "dsa_abi_version": ([], c_int32),
    "dsa_version": ([], c_char_p),
    "dsa_last_error": ([], c_char_p),
    "dsa_status_name": ([c_int32], c_char_p),
    "dsa_device_info": ([c_int32, POINTER(DsaDeviceInfo)], c_int32),
    "dsa_topk_plan_create": ([POINTER(DsaTopkConfig), c_int64, c_int64, c_int32,
                              POINTER(c_void_p)], c_int32),
    "dsa_topk_plan_create_for": ([POINTER(DsaTopkConfig), c_int64, c_int64,
                                  POINTER(DsaDeviceInfo), POINTER(c_void_p)], c_int32),
    "dsa_topk_plan_destroy": ([c_void_p], c_int32),
    "dsa_topk_plan_workspace_bytes": ([c_void_p, POINTER(c_size_t)], c_int32),
    "dsa_topk_plan_output_shape": ([c_void_p, POINTER(c_int64)], c_int32),
    "dsa_topk_plan_prepare": ([c_void_p, c_void_p], c_int32),
    "dsa_topk_run": ([c_void_p, POINTER(DsaTopkArgs), c_void_p], c_int32),
    "dsa_hadamard_sizes": ([POINTER(DsaHadamardParams), POINTER(DsaHadamardSizes)], c_int32),
    "dsa_hadamard_prepare": ([POINTER(DsaHadamardParams), c_void_p], c_int32),
    "dsa_hadamard_run": ([POINTER(DsaHadamardParams), c_void_p, c_void_p, c_void_p, c_void_p],
                         c_int32),
    "dsa_layernorm_sizes": ([POINTER(DsaLayerNormParams), POINTER(DsaLayerNormSizes)], c_int32),
    "dsa_layernorm_prepare": ([POINTER(DsaLayerNormParams), c_void_p], c_int32),
    "dsa_layernorm_run": ([POINTER(DsaLayerNormParams), c_void_p, c_void_p, c_void_p, c_void_p,
                           c_void_p], c_int32),
    "dsa_indexer_config_default": ([POINTER(DsaIndexerConfig)], c_int32),
    "dsa_indexer_prefill_plan_create": ([POINTER(DsaIndexerConfig),
                                         POINTER(DsaIndexerPrefillShape), c_int32,
                                         POINTER(c_void_p)], c_int32),
    "dsa_indexer_prefill_plan_create_for": ([POINTER(DsaIndexerConfig),
                                             POINTER(DsaIndexerPrefillShape),
                                             POINTER(DsaDeviceInfo), POINTER(c_void_p)], c_int32),
    "dsa_indexer_decode_plan_create": ([POINTER(DsaIndexerConfig), POINTER(DsaIndexerDecodeShape),
                                        c_int32, POINTER(c_void_p)], c_int32),
    "dsa_indexer_decode_plan_create_for": ([POINTER(DsaIndexerConfig),
                                            POINTER(DsaIndexerDecodeShape),
                                            POINTER(DsaDeviceInfo), POINTER(c_void_p)], c_int32),
    "dsa_indexer_plan_destroy": ([c_void_p], c_int32),
    "dsa_indexer_plan_workspace_bytes": ([c_void_p, POINTER(c_size_t)], c_int32),
    "dsa_indexer_plan_info": ([c_void_p, POINTER(DsaIndexerPlanInfo)], c_int32),
    "dsa_indexer_plan_prepare": ([c_void_p, c_void_p], c_int32),
    "dsa_indexer_prefill": ([c_void_p, POINTER(DsaIndexerPrefillArgs), c_void_p, c_void_p],
                            c_int32),
    "dsa_indexer_decode": ([c_void_p, POINTER(DsaIndexerDecodeArgs), c_void_p, c_void_p], c_int32),
    "dsa_collective_verify_workspace_bytes": ([c_int64, POINTER(c_size_t)], c_int32),
    "dsa_collective_fingerprint": ([c_void_p, c_int64, c_int64, c_void_p, c_size_t, c_void_p],
                                   c_int32),
}


def library_candidates() -> list[Path]:
    """Where the library is looked for, in order: ``$DSA_KERNELS_LIB`` (a file), this package's
    folder, then the repository's ``target/release`` (and ``target/release/deps``)."""
    out = []
    if os.environ.get("DSA_KERNELS_LIB"):
        out.append(Path(os.environ["DSA_KERNELS_LIB"]))
    here = Path(__file__).resolve().parent
    out.append(here / LIB_NAME)
    repo = here.parent.parent
    out += [repo / "target/release" / LIB_NAME, repo / "target/release/deps" / LIB_NAME]
    return out


def _point_at_nvrtc() -> None:
    """Let the library find NVRTC in the pip wheels (PyTorch's cu13 ones) without a subprocess."""
    if os.environ.get("DSA_NVRTC_PATH"):
        return
    try:
        import nvidia  # namespace package of NVIDIA's wheels
    except ImportError:
        return
    for root in getattr(nvidia, "__path__", []):
        for sub in ("cu13/lib", "cuda_nvrtc/lib"):
            if (Path(root) / sub / "libnvrtc.so.13").is_file():
                os.environ["DSA_NVRTC_PATH"] = str(Path(root) / sub)
                return


def load() -> ctypes.CDLL:
    """Load the library once, check its ABI version and declare every signature."""
    global _LIB
    if _LIB is not None:
        return _LIB
    _point_at_nvrtc()
    tried = library_candidates()
    path = next((p for p in tried if p.is_file()), None)
    if path is None:
        raise OSError(f"{LIB_NAME} not found; tried: {', '.join(map(str, tried))}. "
                      "Build it with `cargo build --release -p dsa-ffi` or set DSA_KERNELS_LIB.")
    lib = ctypes.CDLL(str(path))
    for name, (args, res) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    if lib.dsa_abi_version() != ABI_VERSION:
        raise OSError(f"{path} implements ABI {lib.dsa_abi_version()}, this package {ABI_VERSION}")
    _LIB = lib
    return lib


_LIB: ctypes.CDLL | None = None


def check(status: int) -> None:
    """Raise DsaError for a non-OK status, with the library's thread-local message."""
    if status != OK:
        lib = load()
        raise DsaError(status, lib.dsa_status_name(status).decode(),
                       lib.dsa_last_error().decode(errors="replace"))
