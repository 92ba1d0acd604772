"""LayerNorm / RMSNorm against F.layer_norm and a float64 RMSNorm."""

from _common import need_cuda, tol


def test_layer_norm_matches_torch():
    torch, dk = need_cuda()
    F = torch.nn.functional
    for dim in (1, 111, 128, 1024, 7168, 16384):
        for rows in (1, 19, 989):
            for dtype in (torch.float32, torch.bfloat16, torch.float16):
                x = (torch.randn((rows, dim), device="cuda") * 3 + 1).to(dtype)
                w = torch.randn(dim, device="cuda").to(dtype)
                b = torch.randn(dim, device="cuda").to(dtype)
                for out_dtype in (None, torch.float32):
                    y = dk.layer_norm(x, w, b, eps=1e-5, out_dtype=out_dtype)
                    ref = F.layer_norm(x.float(), (dim,), w.float(), b.float(), 1e-5)
                    rtol, atol = tol(torch, y.dtype)
                    torch.testing.assert_close(y.float(), ref, rtol=rtol, atol=atol * 4,
                                               msg=f"dim={dim} rows={rows} {dtype}->{y.dtype}")


def test_rms_norm_and_optional_affine():
    torch, dk = need_cuda()
    x = torch.randn((19, 7168), device="cuda", dtype=torch.bfloat16)
    w = torch.randn(7168, device="cuda", dtype=torch.bfloat16)
    y = dk.rms_norm(x, w, eps=1e-6, out_dtype=torch.float32)
    xd = x.double()
    ref = xd / torch.sqrt((xd * xd).mean(-1, keepdim=True) + 1e-6) * w.double()
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-4)
    y = dk.layer_norm(x, out_dtype=torch.float32)
    ref = torch.nn.functional.layer_norm(x.float(), (7168,), eps=1e-5)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)


def test_layer_norm_strided_and_batched():
    torch, dk = need_cuda()
    big = torch.randn((9, 200), device="cuda")
    y = dk.layer_norm(big[:, :128])  # row stride 200
    torch.testing.assert_close(y, torch.nn.functional.layer_norm(big[:, :128], (128,)),
                               rtol=1e-4, atol=1e-4)
    x = torch.randn((2, 3, 128), device="cuda", dtype=torch.float16)
    y = dk.layer_norm(x)
    assert y.shape == x.shape and y.dtype == x.dtype


def test_layer_norm_rejects_bad_weights():
    torch, dk = need_cuda()
    x = torch.randn((4, 128), device="cuda", dtype=torch.bfloat16)
    for w in (torch.randn(128, device="cuda"), torch.randn(64, device="cuda").bfloat16()):
        try:
            dk.layer_norm(x, w)
        except ValueError:
            continue
        raise AssertionError("expected ValueError")
    try:
        dk.layer_norm(x, eps=-1.0)
    except dk.DsaError as e:
        assert "eps" in str(e)
    else:
        raise AssertionError("expected DsaError")
