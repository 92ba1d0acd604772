"""The ops as torch custom ops (``torch.ops.dsa_kernels.*``): tensors in, tensors out, launched
on ``torch.cuda.current_stream()`` with outputs and workspace allocated by torch.

Each op has a fake (meta) implementation giving its output shapes without launching, so
``torch.compile(fullgraph=True)`` and piecewise CUDA-graph capture trace through it. Inside a
``torch.cuda.graph`` capture nothing synchronises the host; run each op once before capturing
(as torch's own graph recipe does) so its kernels are compiled and loaded, and a top-k's plan
is made, outside the capture.
"""


import ctypes
import threading
from typing import Optional

import torch

from . import _lib
from ._lib import check

_DTYPES = {torch.float32: _lib.F32, torch.bfloat16: _lib.BF16, torch.float16: _lib.F16}
_FP8 = torch.float8_e4m3fn


def _stream(device: torch.device) -> ctypes.c_void_p:
    return ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream)


def _ptr(t: Optional[torch.Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _float_code(name: str, dtype: torch.dtype) -> int:
    if dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32, bfloat16 or float16, got {dtype}")
    return _DTYPES[dtype]


def _check_cuda(name: str, t: torch.Tensor, device: torch.device) -> None:
    if not t.is_cuda:
        raise ValueError(f"{name} must be a CUDA tensor, got {t.device}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device}, expected {device}")


def _check_i32(name: str, t: Optional[torch.Tensor], shape: tuple, device: torch.device) -> None:
    if t is None:
        return
    _check_cuda(name, t, device)
    if t.dtype != torch.int32:
        raise TypeError(f"{name} must be int32, got {t.dtype}")
    if tuple(t.shape) != shape or not t.is_contiguous():
        raise ValueError(f"{name} must be a contiguous {list(shape)} tensor, got "
                         f"{list(t.shape)} with strides {t.stride()}")


def _rows_view(name: str, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``x`` as 2-D rows with unit inner stride (a view when possible) and its row stride."""
    if x.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension")
    if x.dim() == 2 and x.stride(1) == 1 and x.stride(0) >= x.shape[1]:
        return x, x.stride(0)
    x2 = x.contiguous().view(-1, x.shape[-1])
    return x2, x2.shape[1]


# --------------------------------------------------------------------------------------------
# top-k

_PLANS: dict = {}
_PLANS_LOCK = threading.Lock()


def _topk_plan(cfg: _lib.DsaTopkConfig, rows: int, stride: int, device: torch.device):
    """A cached plan (handle, workspace bytes); created and prepared on first use. Plans are
    small host objects kept for the life of the process."""
    key = (bytes(cfg), rows, stride, device.index)
    with _PLANS_LOCK:
        hit = _PLANS.get(key)
        if hit is not None:
            return hit
        lib = _lib.load()
        plan = ctypes.c_void_p()
        check(lib.dsa_topk_plan_create(ctypes.byref(cfg), rows, stride, device.index,
                                       ctypes.byref(plan)))
        ws = ctypes.c_size_t()
        check(lib.dsa_topk_plan_workspace_bytes(plan, ctypes.byref(ws)))
        check(lib.dsa_topk_plan_prepare(plan, _stream(device)))
        _PLANS[key] = (plan, ws.value)
        return _PLANS[key]


@torch.library.custom_op("dsa_kernels::topk", mutates_args=())
def _topk_op(scores: torch.Tensor, lengths: torch.Tensor, k: int,
             row_starts: Optional[torch.Tensor], offsets: Optional[torch.Tensor],
             page_table: Optional[torch.Tensor], rows_to_requests: Optional[torch.Tensor],
             page_size: int, cu_seqlens: bool, page_table_cols: int, tie_large: bool,
             sorted_output: bool) -> torch.Tensor:
    device = scores.device
    _check_cuda("scores", scores, device)
    if scores.dim() != 2 or scores.stride(1) != 1:
        raise ValueError(f"scores must be 2-D [rows, n] with unit inner stride, got shape "
                         f"{list(scores.shape)} strides {scores.stride()}")
    rows, n = scores.shape
    stride = scores.stride(0) if rows > 1 else n
    if stride < n:
        raise ValueError(f"scores rows overlap (row stride {stride} < {n})")
    # The kernel may read a row's whole stride (lengths are clamped to it, not to n).
    need = (scores.storage_offset() + rows * stride) * scores.element_size()
    if rows and scores.untyped_storage().nbytes() < need:
        raise ValueError("the last row of scores does not extend to its full row stride; "
                         "pass a contiguous tensor")
    cfg = _lib.DsaTopkConfig(k=k, dtype=_float_code("scores", scores.dtype),
                             tie_break=int(tie_large), order=int(sorted_output))
    _check_i32("lengths", lengths, (rows,), device)
    _check_i32("row_starts", row_starts, (rows,), device)
    args = _lib.DsaTopkArgs(scores=scores.data_ptr(), lengths=lengths.data_ptr(),
                            row_starts=_ptr(row_starts))
    if offsets is not None and page_table is not None:
        raise ValueError("offsets (ragged) and page_table (paged) exclude each other")
    if offsets is not None:
        _check_i32("offsets", offsets, (rows,), device)
        cfg.transform, args.offsets = 1, offsets.data_ptr()
    if page_table is not None:
        if rows_to_requests is None:
            raise ValueError("the paged transform needs request_of_row or cu_seqlens_q")
        _check_cuda("page_table", page_table, device)
        if page_table.dtype != torch.int32 or page_table.dim() != 2 or page_table.stride(1) != 1:
            raise ValueError("page_table must be int32 [num_requests, pages] with unit inner "
                             "stride")
        num_req = page_table.shape[0]
        _check_i32("cu_seqlens_q" if cu_seqlens else "request_of_row", rows_to_requests,
                   (num_req + 1,) if cu_seqlens else (rows,), device)
        cfg.transform, cfg.page_size, cfg.request_map = 2, page_size, int(cu_seqlens)
        args.page_table, args.rows_to_requests = page_table.data_ptr(), rows_to_requests.data_ptr()
        args.page_table_stride = max(page_table.stride(0), page_table.shape[1])
        args.page_table_cols = page_table.shape[1] if page_table_cols < 0 else page_table_cols
        args.num_requests = num_req
    if rows == 0 or n == 0:  # no candidates: every slot is padding (k is still checked)
        if not 1 <= k <= 4096:
            raise _lib.DsaError(_lib.INVALID_ARGUMENT, "DSA_STATUS_INVALID_ARGUMENT",
                                f"k = {k} is out of range: 1..=4096")
        return torch.full((rows, k), -1, dtype=torch.int32, device=device)
    out = torch.empty((rows, k), dtype=torch.int32, device=device)
    plan, ws_bytes = _topk_plan(cfg, rows, stride, device)
    ws = torch.empty(ws_bytes, dtype=torch.uint8, device=device) if ws_bytes else None
    args.out, args.workspace, args.workspace_bytes = out.data_ptr(), _ptr(ws), ws_bytes
    check(_lib.load().dsa_topk_run(plan, ctypes.byref(args), _stream(device)))
    return out


@_topk_op.register_fake
def _(scores, lengths, k, row_starts, offsets, page_table, rows_to_requests, page_size,
      cu_seqlens, page_table_cols, tie_large, sorted_output):
    return scores.new_empty((scores.shape[0], k), dtype=torch.int32)


def topk(scores: torch.Tensor, lengths: torch.Tensor, k: int, *,
         row_starts: Optional[torch.Tensor] = None, tie_break: str = "small",
         sorted: bool = False, offsets: Optional[torch.Tensor] = None,
         page_table: Optional[torch.Tensor] = None, page_size: int = 0,
         request_of_row: Optional[torch.Tensor] = None,
         cu_seqlens_q: Optional[torch.Tensor] = None,
         page_table_cols: Optional[int] = None) -> torch.Tensor:
    """Deterministic top-k of each row: ``[rows, k]`` int32 indices (-1 padded).

    Row ``i``'s candidates are ``scores[i, row_starts[i] + j]`` for ``j < lengths[i]``
    (``lengths``/``row_starts`` int32 ``[rows]``, clamped to the row). Larger scores first,
    NaN above +inf, equal scores by index (``tie_break="small"`` or ``"large"``). The output
    is in ascending index, or by rank with ``sorted=True``. Fused transforms: ``offsets``
    (ragged: ``idx + offsets[i]``) or ``page_table`` + ``page_size`` with ``request_of_row``
    or ``cu_seqlens_q`` (paged: ``page_table[req][idx // P] * P + idx % P``).
    """
    if tie_break not in ("small", "large"):
        raise ValueError(f"tie_break must be 'small' or 'large', got {tie_break!r}")
    if request_of_row is not None and cu_seqlens_q is not None:
        raise ValueError("pass request_of_row or cu_seqlens_q, not both")
    req = cu_seqlens_q if cu_seqlens_q is not None else request_of_row
    return torch.ops.dsa_kernels.topk(
        scores, lengths, k, row_starts, offsets, page_table, req, page_size,
        cu_seqlens_q is not None, -1 if page_table_cols is None else page_table_cols,
        tie_break == "large", sorted)


# --------------------------------------------------------------------------------------------
# Hadamard


def _hadamard_params(x2: torch.Tensor, in_stride: int, out_code: int, group: int,
                     pow2: bool, scale: float) -> _lib.DsaHadamardParams:
    n = x2.shape[1]
    return _lib.DsaHadamardParams(n=n, rows=x2.shape[0], in_stride=in_stride, out_stride=n,
                                  input_dtype=_float_code("x", x2.dtype), output_dtype=out_code,
                                  scale_group=group, pow2_scales=int(pow2), scale=scale)


def _hadamard_launch(params, x2, y, scales) -> None:
    lib = _lib.load()
    dev = x2.device
    if params.rows == 0:
        check(lib.dsa_hadamard_sizes(ctypes.byref(params), ctypes.byref(_lib.DsaHadamardSizes())))
        return
    check(lib.dsa_hadamard_run(ctypes.byref(params), x2.data_ptr(), y.data_ptr(), _ptr(scales),
                               _stream(dev)))


@torch.library.custom_op("dsa_kernels::hadamard", mutates_args=())
def _hadamard_op(x: torch.Tensor, scale: float, out_dtype: Optional[torch.dtype]) -> torch.Tensor:
    _check_cuda("x", x, x.device)
    x2, stride = _rows_view("x", x)
    odt = out_dtype or x.dtype
    y = torch.empty(x.shape, dtype=odt, device=x.device)
    params = _hadamard_params(x2, stride, _float_code("out_dtype", odt), 0, False, scale)
    _hadamard_launch(params, x2, y, None)
    return y


@_hadamard_op.register_fake
def _(x, scale, out_dtype):
    return x.new_empty(x.shape, dtype=out_dtype or x.dtype)


@torch.library.custom_op("dsa_kernels::hadamard_fp8", mutates_args=())
def _hadamard_fp8_op(x: torch.Tensor, scale: float, block128: bool,
                     pow2_scales: bool) -> tuple[torch.Tensor, torch.Tensor]:
    _check_cuda("x", x, x.device)
    x2, stride = _rows_view("x", x)
    n = x.shape[-1]
    y = torch.empty(x.shape, dtype=_FP8, device=x.device)
    s = torch.empty((*x.shape[:-1], n // 128 if block128 else 1), dtype=torch.float32,
                    device=x.device)
    params = _hadamard_params(x2, stride, _lib.FP8_E4M3, int(block128), pow2_scales, scale)
    _hadamard_launch(params, x2, y, s)
    return y, s


@_hadamard_fp8_op.register_fake
def _(x, scale, block128, pow2_scales):
    n = x.shape[-1]
    return (x.new_empty(x.shape, dtype=_FP8),
            x.new_empty((*x.shape[:-1], n // 128 if block128 else 1), dtype=torch.float32))


def hadamard(x: torch.Tensor, scale: Optional[float] = None,
             out_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``x @ H_n * scale`` along the last dim (``n`` a power of two in 2..32768, Sylvester order
    as ``scipy.linalg.hadamard``); default scale ``1/sqrt(n)`` (orthonormal, self-inverse)."""
    return torch.ops.dsa_kernels.hadamard(x, 0.0 if scale is None else float(scale), out_dtype)


def hadamard_fp8(x: torch.Tensor, scale: Optional[float] = None, *, block128: bool = False,
                 pow2_scales: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The transform quantized to FP8 e4m3: ``(bytes as float8_e4m3fn [..., n], f32 scales
    [..., n / g])`` with ``g = n`` (one scale per row) or 128; dequantize as ``q.float() * s``."""
    return torch.ops.dsa_kernels.hadamard_fp8(x, 0.0 if scale is None else float(scale),
                                              block128, pow2_scales)


# --------------------------------------------------------------------------------------------
# LayerNorm / RMSNorm


@torch.library.custom_op("dsa_kernels::layer_norm", mutates_args=())
def _layer_norm_op(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                   eps: float, rms: bool, out_dtype: Optional[torch.dtype]) -> torch.Tensor:
    dev = x.device
    _check_cuda("x", x, dev)
    x2, stride = _rows_view("x", x)
    dim = x.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            _check_cuda(name, t, dev)
            if t.dtype != x.dtype or tuple(t.shape) != (dim,) or not t.is_contiguous():
                raise ValueError(f"{name} must be a contiguous [{dim}] tensor of {x.dtype}, got "
                                 f"{t.dtype} {list(t.shape)}")
    odt = out_dtype or x.dtype
    y = torch.empty(x.shape, dtype=odt, device=dev)
    params = _lib.DsaLayerNormParams(dim=dim, rows=x2.shape[0], x_stride=stride, y_stride=dim,
                                     input_dtype=_float_code("x", x.dtype),
                                     output_dtype=_float_code("out_dtype", odt), norm=int(rms),
                                     eps=eps)
    lib = _lib.load()
    if params.rows == 0:
        check(lib.dsa_layernorm_sizes(ctypes.byref(params), ctypes.byref(_lib.DsaLayerNormSizes())))
        return y
    check(lib.dsa_layernorm_run(ctypes.byref(params), x2.data_ptr(), y.data_ptr(), _ptr(weight),
                                _ptr(bias), _stream(dev)))
    return y


@_layer_norm_op.register_fake
def _(x, weight, bias, eps, rms, out_dtype):
    return x.new_empty(x.shape, dtype=out_dtype or x.dtype)


def layer_norm(x: torch.Tensor, weight: Optional[torch.Tensor] = None,
               bias: Optional[torch.Tensor] = None, eps: float = 1e-5,
               out_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """LayerNorm over the last dim (as ``F.layer_norm(x, (dim,), weight, bias, eps)``), f32
    statistics; ``weight``/``bias`` of ``x``'s dtype; output in ``out_dtype`` (default x's)."""
    return torch.ops.dsa_kernels.layer_norm(x, weight, bias, float(eps), False, out_dtype)


def rms_norm(x: torch.Tensor, weight: Optional[torch.Tensor] = None,
             bias: Optional[torch.Tensor] = None, eps: float = 1e-6,
             out_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """RMSNorm over the last dim: ``x / sqrt(mean(x^2) + eps) * weight + bias``."""
    return torch.ops.dsa_kernels.layer_norm(x, weight, bias, float(eps), True, out_dtype)

