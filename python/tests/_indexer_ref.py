"""The indexer's contract in torch (float64, on any device), mirroring the Rust CPU reference
(``dsa_indexer::cpu``): LayerNorm -> RoPE -> Hadamard -> FP8 for keys, RoPE -> Hadamard -> FP8
and the folded weights for queries, the FP8 scores, and random inputs in sglang's layouts."""

from __future__ import annotations

import math

from _common import sylvester


def f32(torch, x: float) -> float:
    """``x`` rounded to f32, as a Python float."""
    return torch.tensor(x, dtype=torch.float32).item()


def quantize(torch, v, pow2: bool):
    """One scale per row of ``v`` (``[..., D]`` float64): ``amax`` in f32, ``s = max(amax,
    1e-4) / 448`` in f32 (rounded up to a power of two for pow2), ``inv = 1 / s`` in f32,
    ``code = e4m3(f32(v * inv))`` (round to nearest even). Returns (uint8 codes, f32 scales)."""
    amax = v.abs().float().amax(-1)
    s = torch.clamp(amax, min=f32(torch, 1e-4)) / 448.0
    if pow2:
        bits = s.view(torch.int32)
        up = ((bits & 0x7F800000) + 0x800000).view(torch.float32)
        s = torch.where((bits & 0x7FFFFF) == 0, s, up)
    inv = torch.ones_like(s) / s
    x = (v * inv.double()[..., None]).float()
    return x.to(torch.float8_e4m3fn).view(torch.uint8), s


def decode_fp8(torch, codes):
    """e4m3 bytes as float64 values."""
    return codes.view(torch.float8_e4m3fn).double()


def rope(torch, x, table, interleaved: bool):
    """RoPE on the leading ``R`` dims of ``x`` (``[N, D]`` f64) with per-row ``table`` (``[N, R]``:
    R/2 cosines then R/2 sines)."""
    r = table.shape[1]
    if r == 0:
        return x
    half = r // 2
    c, s = table[:, :half].double(), table[:, half:].double()
    x = x.clone()
    if interleaved:
        i0, i1 = slice(0, r, 2), slice(1, r, 2)
    else:
        i0, i1 = slice(0, half), slice(half, r)
    a, b = x[:, i0].clone(), x[:, i1].clone()
    x[:, i0] = a * c - b * s
    x[:, i1] = b * c + a * s
    return x


def hadamard(torch, x):
    """``x @ H_D`` times the f32 constant ``1/sqrt(D)`` the kernels use (Sylvester order)."""
    d = x.shape[-1]
    return x @ sylvester(torch, d).to(x.device) * f32(torch, 1.0 / math.sqrt(d))


def table_rows(torch, cos_sin, positions):
    """The RoPE table row of each position (clamped to the table); ``[N, 0]`` without a table."""
    if cos_sin is None:
        return positions.new_zeros((positions.shape[0], 0), dtype=torch.float32)
    return cos_sin[positions.clamp(0, cos_sin.shape[0] - 1)]


def key_path(torch, k, ln_weight, ln_bias, eps, rows, interleaved, pow2):
    """FP8(Hadamard(RoPE(LayerNorm(k)))): (``[T, D]`` codes, ``[T]`` scales)."""
    x = k.double()
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + f32(torch, eps))
    if ln_weight is not None:
        x = x * ln_weight.double()
    if ln_bias is not None:
        x = x + ln_bias.double()
    return quantize(torch, hadamard(torch, rope(torch, x, rows, interleaved)), pow2)


def query_path(torch, q, weights, rows, interleaved, pow2):
    """``q8 [T, H, D]`` codes and the folded weights ``w' = w * s_q / sqrt(H * D)`` ``[T, H]``."""
    t, h, d = q.shape
    x = rope(torch, q.double().reshape(t * h, d), rows.repeat_interleave(h, 0), interleaved)
    codes, s = quantize(torch, hadamard(torch, x), pow2)
    wq = (weights.double().reshape(-1) * s.double() * (1.0 / math.sqrt(h * d))).float()
    return codes.reshape(t, h, d), wq.reshape(t, h)


def scores(torch, q8, wq, k8, k_scale):
    """``logit[t, s] = sum_h w'[t, h] * relu(dot(q8[t, h], k8[s]) * k_scale[s])``: float64
    ``[T, S]`` for keys shared by every row (``k8 [S, D]`` codes, ``k_scale [S]``) or per row
    (``[T, S, D]``, ``[T, S]``)."""
    q = decode_fp8(torch, q8)
    if k8.dim() == 2:
        dots = torch.einsum("thd,sd->ths", q, decode_fp8(torch, k8))
        s = k_scale.double()[None, None, :]
    else:
        dots = torch.einsum("thd,tsd->ths", q, decode_fp8(torch, k8))
        s = k_scale.double()[:, None, :]
    return (wq.double()[:, :, None] * torch.relu(dots * s)).sum(1)


def cache_views(torch, cache, page: int, dim: int):
    """(codes ``[pages * page, D]`` uint8, scales ``[pages * page]`` f32) views of a cache."""
    pages = cache.shape[0]
    c = cache.view(pages, page * (dim + 4))
    codes = c[:, : page * dim].reshape(pages * page, dim)
    scales = c[:, page * dim:].contiguous().view(torch.float32).reshape(pages * page)
    return codes, scales


def random_cache(torch, g, pages: int, page: int, dim: int):
    """A cache of random FP8 keys (no NaN codes) with scales in [0.001, 0.02)."""
    codes = torch.randint(0, 256, (pages, page * dim), generator=g, dtype=torch.uint8)
    codes = torch.where((codes & 0x7F) == 0x7F, codes ^ 1, codes)
    scales = torch.rand((pages, page), generator=g) * 0.019 + 0.001
    return torch.cat([codes, scales.view(torch.uint8).reshape(pages, page * 4)], 1)


def rope_table(torch, max_pos: int, rope_dim: int):
    """A real RoPE table (theta 10000), ``[max_pos, R]`` f32; None for ``R = 0``."""
    if rope_dim == 0:
        return None
    half = rope_dim // 2
    inv = 10000.0 ** (-2.0 * torch.arange(half, dtype=torch.float64) / rope_dim)
    ang = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([ang.cos(), ang.sin()], 1).float()


def assert_codes_close(torch, what, got, want, min_equal):
    """FP8 codes within one step of the e4m3 grid, at least ``min_equal`` identical."""
    def ordinal(c):
        c = c.long()
        return torch.where(c >= 128, -(c & 0x7F), c)

    diff = (ordinal(got.cpu()) - ordinal(want.cpu())).abs()
    assert int(diff.max()) <= 1 if diff.numel() else True, f"{what}: codes differ by {diff.max()}"
    frac = float((diff == 0).double().mean()) if diff.numel() else 1.0
    assert frac >= min_equal, f"{what}: only {frac} of the codes are identical"


def assert_scores_close(torch, what, got, want, rel):
    """``-inf`` exactly where the reference has it; elsewhere within ``rel`` of the row's
    largest finite |logit|."""
    got, want = got.double().cpu(), want.double().cpu()
    masked = torch.isneginf(want)
    assert torch.equal(torch.isneginf(got), masked), f"{what}: -inf mask differs"
    fin = torch.where(masked, torch.zeros_like(want), want)
    scale = fin.abs().amax(1, keepdim=True).clamp(min=1e-6)
    err = (torch.where(masked, torch.zeros_like(got), got) - fin).abs() / scale
    assert float(err.max()) <= rel, f"{what}: worst scaled score error {float(err.max()):e}"
