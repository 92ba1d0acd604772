"""The whole lightning indexer as torch custom ops: ``torch.ops.dsa_kernels.indexer_prefill``
and ``indexer_decode`` (key path into the cache, query path, FP8 scores, top-k; see
``dsa_indexer``'s crate docs for the exact math).

Heads, head dim, RoPE dims, page size and dtype come from the tensors' shapes; ``topk``, ``eps``,
the RoPE pairing and the scale format are arguments. Each op plans once per shape (a host-only
query: outputs and workspace sizes), allocates its outputs and workspace with torch, and runs
on ``torch.cuda.current_stream()``. The cache (and for prefill the contiguous key buffer) is
written in place. The fake implementations give the output shapes without launching, so
``torch.compile(fullgraph=True)`` and ``torch.cuda.graph`` capture trace through; call each op
once eagerly before capturing (plans made, kernels compiled), as for the other ops.
"""

import ctypes
import threading
from typing import Optional

import torch

from . import _lib
from ._lib import check
from .ops import _check_cuda, _float_code, _ptr, _stream

_PLANS: dict = {}
_PLANS_LOCK = threading.Lock()
_FP8_KEYS = (torch.uint8, torch.float8_e4m3fn)


def _plan(kind: str, cfg: _lib.DsaIndexerConfig, shape, device: torch.device):
    """A cached (plan handle, DsaIndexerPlanInfo); created and prepared on first use. Plans are
    small host objects kept for the life of the process."""
    key = (kind, bytes(cfg), bytes(shape), device.index)
    with _PLANS_LOCK:
        hit = _PLANS.get(key)
        if hit is not None:
            return hit
        lib = _lib.load()
        plan = ctypes.c_void_p()
        create = (lib.dsa_indexer_prefill_plan_create if kind == "prefill"
                  else lib.dsa_indexer_decode_plan_create)
        check(create(ctypes.byref(cfg), ctypes.byref(shape), device.index, ctypes.byref(plan)))
        info = _lib.DsaIndexerPlanInfo()
        try:
            check(lib.dsa_indexer_plan_info(plan, ctypes.byref(info)))
            check(lib.dsa_indexer_plan_prepare(plan, _stream(device)))
        except _lib.DsaError:
            lib.dsa_indexer_plan_destroy(plan)
            raise
        _PLANS[key] = (plan, info)
        return _PLANS[key]


def _tensor(name: str, t: Optional[torch.Tensor], dtypes, shape: tuple,
            device: torch.device) -> None:
    """``t`` (if given) is a contiguous tensor of ``shape`` (None entries: any size) and one of
    ``dtypes`` on ``device``."""
    if t is None:
        return
    _check_cuda(name, t, device)
    if t.dtype not in dtypes:
        raise TypeError(f"{name} must be {' or '.join(map(str, dtypes))}, got {t.dtype}")
    ok = t.dim() == len(shape) and all(w is None or w == g for g, w in zip(t.shape, shape))
    if not ok or not t.is_contiguous():
        want = "[" + ", ".join("*" if w is None else str(w) for w in shape) + "]"
        raise ValueError(f"{name} must be a contiguous {want} tensor, got {list(t.shape)} with "
                         f"strides {t.stride()}")


def _config_and_tokens(q, weights, k, ln_weight, ln_bias, positions, cos_sin, out_cache_loc,
                       cache, topk, eps, interleaved, pow2_scales):
    """The C config and per-token arguments from the tensors, every tensor checked."""
    device = q.device
    _check_cuda("q", q, device)
    if q.dim() != 3:
        raise ValueError(f"q must be [tokens, heads, dim], got {list(q.shape)}")
    t, h, d = q.shape
    dt = (q.dtype,)
    _float_code("q", q.dtype)
    _tensor("q", q, dt, (t, h, d), device)
    _tensor("weights", weights, (torch.float32,), (t, h), device)
    _tensor("k", k, dt, (t, d), device)
    _tensor("ln_weight", ln_weight, dt, (d,), device)
    _tensor("ln_bias", ln_bias, dt, (d,), device)
    _tensor("positions", positions, (torch.int64,), (t,), device)
    _tensor("out_cache_loc", out_cache_loc, (torch.int64,), (t,), device)
    _tensor("cos_sin", cos_sin, (torch.float32,), (None, None), device)
    _tensor("cache", cache, (torch.uint8,), (None, None), device)
    if cache.shape[1] % (d + 4) != 0:
        raise ValueError(f"cache must be [pages, page_size * (dim + 4)] uint8 (dim = {d}), got "
                         f"{list(cache.shape)}")
    cfg = _lib.DsaIndexerConfig()
    check(_lib.load().dsa_indexer_config_default(ctypes.byref(cfg)))
    cfg.heads, cfg.dim, cfg.k = h, d, topk
    cfg.rope_dim = 0 if cos_sin is None else cos_sin.shape[1]
    cfg.page_size = cache.shape[1] // (d + 4)
    cfg.input_dtype = _float_code("q", q.dtype)
    cfg.rope_style, cfg.scale_format, cfg.eps = int(interleaved), int(pow2_scales), eps
    tokens = _lib.DsaIndexerTokens(
        q=_ptr(q), weights=_ptr(weights), k=_ptr(k), ln_weight=_ptr(ln_weight),
        ln_bias=_ptr(ln_bias), positions=_ptr(positions), cos_sin=_ptr(cos_sin),
        out_cache_loc=_ptr(out_cache_loc), cache=_ptr(cache))
    max_positions = 0 if cos_sin is None else cos_sin.shape[0]
    return cfg, tokens, max_positions


def _outputs(rows: int, stride: int, k: int, device: torch.device):
    return (torch.empty((rows, stride), dtype=torch.float32, device=device),
            torch.empty((rows, k), dtype=torch.int32, device=device))


@torch.library.custom_op("dsa_kernels::indexer_decode", mutates_args=("cache",))
def _decode_op(q: torch.Tensor, weights: torch.Tensor, k: torch.Tensor,
               ln_weight: Optional[torch.Tensor], ln_bias: Optional[torch.Tensor],
               positions: torch.Tensor, cos_sin: Optional[torch.Tensor],
               out_cache_loc: torch.Tensor, cache: torch.Tensor, block_table: torch.Tensor,
               context_lens: torch.Tensor, max_context: int, topk: int, eps: float,
               interleaved: bool, pow2_scales: bool) -> tuple[torch.Tensor, torch.Tensor]:
    device = q.device
    cfg, tokens, max_pos = _config_and_tokens(q, weights, k, ln_weight, ln_bias, positions,
                                              cos_sin, out_cache_loc, cache, topk, eps,
                                              interleaved, pow2_scales)
    b = q.shape[0]
    _tensor("block_table", block_table, (torch.int32,), (b, None), device)
    _tensor("context_lens", context_lens, (torch.int32,), (b,), device)
    shape = _lib.DsaIndexerDecodeShape(batch=b, stride=max_context, bt_stride=block_table.shape[1],
                                       max_positions=max_pos, cache_pages=cache.shape[0])
    plan, info = _plan("decode", cfg, shape, device)
    logits, indices = _outputs(b, max_context, topk, device)
    if b == 0:
        return logits, indices
    ws = torch.empty(info.workspace_bytes, dtype=torch.uint8, device=device)
    args = _lib.DsaIndexerDecodeArgs(
        tokens=tokens, block_table=_ptr(block_table), context_lens=_ptr(context_lens),
        logits=_ptr(logits), indices=_ptr(indices), workspace=_ptr(ws),
        workspace_bytes=info.workspace_bytes)
    check(_lib.load().dsa_indexer_decode(plan, ctypes.byref(args), None, _stream(device)))
    return logits, indices


@_decode_op.register_fake
def _(q, weights, k, ln_weight, ln_bias, positions, cos_sin, out_cache_loc, cache, block_table,
      context_lens, max_context, topk, eps, interleaved, pow2_scales):
    b = q.shape[0]
    return (q.new_empty((b, max_context), dtype=torch.float32),
            q.new_empty((b, topk), dtype=torch.int32))


@torch.library.custom_op("dsa_kernels::indexer_prefill",
                         mutates_args=("cache", "keys_fp8", "keys_scale"))
def _prefill_op(q: torch.Tensor, weights: torch.Tensor, k: torch.Tensor,
                ln_weight: Optional[torch.Tensor], ln_bias: Optional[torch.Tensor],
                positions: torch.Tensor, cos_sin: Optional[torch.Tensor],
                out_cache_loc: torch.Tensor, cache: torch.Tensor, keys_fp8: torch.Tensor,
                keys_scale: torch.Tensor, new_keys_offset: int, ks: torch.Tensor,
                ke: torch.Tensor, topk_offsets: Optional[torch.Tensor], logits_stride: int,
                topk: int, eps: float, interleaved: bool,
                pow2_scales: bool) -> tuple[torch.Tensor, torch.Tensor]:
    device = q.device
    cfg, tokens, max_pos = _config_and_tokens(q, weights, k, ln_weight, ln_bias, positions,
                                              cos_sin, out_cache_loc, cache, topk, eps,
                                              interleaved, pow2_scales)
    t, d = q.shape[0], q.shape[2]
    _tensor("keys_fp8", keys_fp8, _FP8_KEYS, (None, d), device)
    s = keys_fp8.shape[0]
    _tensor("keys_scale", keys_scale, (torch.float32,), (s,), device)
    for name, v in (("ks", ks), ("ke", ke), ("topk_offsets", topk_offsets)):
        _tensor(name, v, (torch.int32,), (t,), device)
    stride = logits_stride if logits_stride > 0 else max(s, 1)
    shape = _lib.DsaIndexerPrefillShape(tokens=t, num_keys=s, stride=stride,
                                        max_positions=max_pos, cache_pages=cache.shape[0])
    plan, info = _plan("prefill", cfg, shape, device)
    logits, indices = _outputs(t, stride, topk, device)
    if t == 0:
        return logits, indices
    ws = torch.empty(info.workspace_bytes, dtype=torch.uint8, device=device)
    args = _lib.DsaIndexerPrefillArgs(
        tokens=tokens, keys_fp8=_ptr(keys_fp8), keys_scale=_ptr(keys_scale),
        new_keys_offset=new_keys_offset, ks=_ptr(ks), ke=_ptr(ke),
        topk_offsets=_ptr(topk_offsets), logits=_ptr(logits), indices=_ptr(indices),
        workspace=_ptr(ws), workspace_bytes=info.workspace_bytes)
    check(_lib.load().dsa_indexer_prefill(plan, ctypes.byref(args), None, _stream(device)))
    return logits, indices


@_prefill_op.register_fake
def _(q, weights, k, ln_weight, ln_bias, positions, cos_sin, out_cache_loc, cache, keys_fp8,
      keys_scale, new_keys_offset, ks, ke, topk_offsets, logits_stride, topk, eps, interleaved,
      pow2_scales):
    t = q.shape[0]
    stride = logits_stride if logits_stride > 0 else torch.sym_max(keys_fp8.shape[0], 1)
    return (q.new_empty((t, stride), dtype=torch.float32),
            q.new_empty((t, topk), dtype=torch.int32))


def _rope(rope: str) -> bool:
    if rope not in ("neox", "interleaved"):
        raise ValueError(f"rope must be 'neox' or 'interleaved', got {rope!r}")
    return rope == "interleaved"


def indexer_decode(q: torch.Tensor, weights: torch.Tensor, k: torch.Tensor,
                   positions: torch.Tensor, out_cache_loc: torch.Tensor, cache: torch.Tensor,
                   block_table: torch.Tensor, context_lens: torch.Tensor, max_context: int, *,
                   cos_sin: Optional[torch.Tensor] = None,
                   ln_weight: Optional[torch.Tensor] = None,
                   ln_bias: Optional[torch.Tensor] = None, topk: int = 2048, eps: float = 1e-6,
                   rope: str = "neox",
                   pow2_scales: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One decode step of the indexer (one query token per request): ``(logits, indices)``.

    - ``q`` ``[B, H, D]`` (bf16/f16/f32), ``weights`` ``[B, H]`` f32, ``k`` ``[B, D]`` (q's
      dtype; LayerNorm'd with ``ln_weight``/``ln_bias`` ``[D]``, default ones/zeros).
    - ``positions``, ``out_cache_loc`` ``[B]`` int64 (a negative slot stores nothing);
      ``cos_sin`` ``[max_positions, R]`` f32 (R/2 cosines then R/2 sines; None: no RoPE).
    - ``cache``: uint8 ``[pages, page_size * (D + 4)]`` (sglang's index_k_with_scale_buffer),
      written in place at the new keys' slots.
    - ``block_table`` ``[B, cols]`` int32 page ids; ``context_lens`` ``[B]`` int32 (the new token
      included); ``max_context``: the logit row stride, the largest context served.

    Returns ``logits`` ``[B, max_context]`` f32 (``-inf`` past each context) and ``indices``
    ``[B, topk]`` int32: cache slots ``page * page_size + offset`` in ascending position, -1 pads.
    """
    return torch.ops.dsa_kernels.indexer_decode(
        q, weights, k, ln_weight, ln_bias, positions, cos_sin, out_cache_loc, cache, block_table,
        context_lens, int(max_context), int(topk), float(eps), _rope(rope), bool(pow2_scales))


def indexer_prefill(q: torch.Tensor, weights: torch.Tensor, k: torch.Tensor,
                    positions: torch.Tensor, out_cache_loc: torch.Tensor, cache: torch.Tensor,
                    keys_fp8: torch.Tensor, keys_scale: torch.Tensor, ks: torch.Tensor,
                    ke: torch.Tensor, *, new_keys_offset: int = 0,
                    topk_offsets: Optional[torch.Tensor] = None,
                    logits_stride: Optional[int] = None,
                    cos_sin: Optional[torch.Tensor] = None,
                    ln_weight: Optional[torch.Tensor] = None,
                    ln_bias: Optional[torch.Tensor] = None, topk: int = 2048, eps: float = 1e-6,
                    rope: str = "neox",
                    pow2_scales: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One prefill call of the indexer over ``T`` new tokens: ``(logits, indices)``.

    Per-token inputs and ``cache`` as in :func:`indexer_decode`. ``keys_fp8`` ``[S, D]``
    (uint8 or float8_e4m3fn) and ``keys_scale`` ``[S]`` f32 are the contiguous key buffer the
    scores read: the call writes the new keys at rows ``new_keys_offset ..
    new_keys_offset + T`` (the caller fills the others, e.g. a cached prefix). Token ``t``
    scores keys ``[ks[t], ke[t])`` (``[T]`` int32, clamped to ``[0, S]``).

    Returns ``logits`` ``[T, stride]`` f32 (``stride = logits_stride or max(S, 1)``; ``-inf``
    outside each range) and ``indices`` ``[T, topk]`` int32 in ascending order, -1 padded: rows
    of the key buffer, or, with ``topk_offsets`` (``[T]`` int32), each selected key's position
    ``j`` within the token's range (key row ``clamped ks[t] + j``) plus ``topk_offsets[t]``.
    """
    return torch.ops.dsa_kernels.indexer_prefill(
        q, weights, k, ln_weight, ln_bias, positions, cos_sin, out_cache_loc, cache, keys_fp8,
        keys_scale, int(new_keys_offset), ks, ke, topk_offsets,
        0 if logits_stride is None else int(logits_stride), int(topk), float(eps), _rope(rope),
        bool(pow2_scales))
