"""Hadamard transform against x @ H (Sylvester order) in float64, and the fused FP8 output."""

import math

from _common import fwht, need_cuda, sylvester, tol


def test_hadamard_matches_matmul():
    torch, dk = need_cuda()
    g = torch.Generator().manual_seed(0)
    for n in (2, 16, 128, 1024, 4096, 32768):
        for rows in (1, 19, 99):
            H = sylvester(torch, n).cuda() if n <= 4096 else None
            for dtype in (torch.float32, torch.bfloat16, torch.float16):
                x = torch.randn((rows, n), generator=g).to(dtype).cuda()
                for out_dtype in (None, torch.float32):
                    y = dk.hadamard(x, out_dtype=out_dtype)
                    # x @ H for n <= 4096; butterflies in float64 for the 2^30-entry matrix
                    ref = (x.double() @ H if H is not None else fwht(torch, x)) / math.sqrt(n)
                    rtol, atol = tol(torch, y.dtype)
                    torch.testing.assert_close(y.double(), ref, rtol=rtol, atol=atol,
                                               msg=f"n={n} rows={rows} {dtype}->{y.dtype}")


def test_hadamard_scale_strides_and_batch_dims():
    torch, dk = need_cuda()
    x = torch.randn((3, 5, 256), dtype=torch.bfloat16, device="cuda")
    H = sylvester(torch, 256).cuda()
    y = dk.hadamard(x, scale=0.5, out_dtype=torch.float32)
    torch.testing.assert_close(y.double(), x.double() @ H * 0.5, rtol=1e-4, atol=1e-4)
    big = torch.randn((7, 384), dtype=torch.float16, device="cuda")
    y = dk.hadamard(big[:, :256], out_dtype=torch.float32)  # row stride 384
    torch.testing.assert_close(y.double(), big[:, :256].double() @ H / 16, rtol=1e-4, atol=1e-4)


def test_hadamard_fp8():
    torch, dk = need_cuda()
    for n, block in ((128, False), (1024, True), (8192, True)):
        x = torch.randn((33, n), dtype=torch.bfloat16, device="cuda")
        q, s = dk.hadamard_fp8(x, block128=block)
        g = 128 if block else n
        assert q.dtype == torch.float8_e4m3fn and q.shape == x.shape
        assert s.shape == (33, n // g) and s.dtype == torch.float32
        ref = (x.double() @ sylvester(torch, n).cuda()) / math.sqrt(n)
        amax = ref.view(33, n // g, g).abs().amax(-1)
        torch.testing.assert_close(s.double(), amax.clamp(min=1e-4) / 448, rtol=1e-5, atol=0)
        deq = q.double().view(33, n // g, g) * s.double()[..., None]
        err = (deq - ref.view(33, n // g, g)).abs()
        # half an e4m3 step (3 mantissa bits; 2^-9 subnormal spacing), with slack for the
        # kernel's f32 butterflies rounding across a midpoint
        bound = ref.view(33, n // g, g).abs() * (1.01 / 16) + s.double()[..., None] * 2.0 ** -9
        assert bool((err <= bound).all()), f"n={n}: FP8 error above e4m3 rounding"
        q2, s2 = dk.hadamard_fp8(x, block128=block, pow2_scales=True)
        assert bool((torch.log2(s2) == torch.log2(s2).round()).all())


def test_hadamard_rejects_bad_shapes():
    torch, dk = need_cuda()
    for bad in (torch.randn(4, 96, device="cuda"), torch.randn(4, 64, device="cuda").double()):
        try:
            dk.hadamard(bad)
        except (dk.DsaError, TypeError):
            continue
        raise AssertionError("expected an error")
