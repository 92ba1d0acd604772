"""top-k against torch.sort(descending=True, stable=True) on awkward shapes and dtypes."""

from _common import need_cuda, ref_topk


def _case(torch, rows, stride, dtype, k, seed, ties=True):
    g = torch.Generator(device="cpu").manual_seed(seed)
    if ties:  # few distinct values: the index tie-break decides most of the set
        scores = torch.randint(-50, 50, (rows, stride), generator=g).to(dtype)
    else:
        scores = torch.randn((rows, stride), generator=g).to(dtype)
    lengths = torch.randint(0, stride + 1, (rows,), generator=g, dtype=torch.int32)
    lengths[0] = stride
    if rows > 2:
        lengths[1] = min(k // 2, stride)  # shorter than k: -1 padding
    return scores.cuda(), lengths.cuda()


def test_topk_matches_stable_sort():
    torch, dk = need_cuda()
    shapes = [(1, 131072, 2048), (19, 8192, 2048), (99, 4096, 512), (989, 1000, 64),
              (3, 70001, 4096), (5, 111, 7)]
    for (rows, stride, k) in shapes:
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            for ties in (True, False):
                scores, lengths = _case(torch, rows, stride, dtype, k, rows + stride, ties)
                got = dk.topk(scores, lengths, k)
                torch.testing.assert_close(got.cpu(), ref_topk(torch, scores, lengths, k),
                                           rtol=0, atol=0, msg=f"{rows}x{stride} k={k} {dtype}")


def test_topk_options_and_nan():
    torch, dk = need_cuda()
    scores, lengths = _case(torch, 19, 5000, torch.float32, 100, 7)
    scores[2, 10] = float("nan")
    scores[3, 20] = float("inf")
    scores[4, :] = -0.0
    scores[4, ::2] = 0.0
    starts = torch.randint(0, 6000, (19,), dtype=torch.int32).cuda()
    for tie_large in (False, True):
        for sorted_out in (False, True):
            got = dk.topk(scores, lengths, 100, row_starts=starts,
                          tie_break="large" if tie_large else "small", sorted=sorted_out)
            want = ref_topk(torch, scores, lengths, 100, starts, tie_large, sorted_out)
            torch.testing.assert_close(got.cpu(), want, rtol=0, atol=0)


def test_topk_strided_rows():
    torch, dk = need_cuda()
    big, lengths = _case(torch, 8, 3000, torch.bfloat16, 64, 3)
    view = big[:, :2048]  # row stride 3000, the window still clamps to the stride
    lengths = torch.clamp(lengths, max=2048)
    got = dk.topk(view, lengths, 64)
    torch.testing.assert_close(got.cpu(), ref_topk(torch, view.contiguous(), lengths, 64),
                               rtol=0, atol=0)


def test_topk_ragged_and_paged_transforms():
    torch, dk = need_cuda()
    rows, stride, k, page = 12, 4096, 256, 64
    scores, lengths = _case(torch, rows, stride, torch.float32, k, 11)
    base = ref_topk(torch, scores, lengths, k)
    offsets = torch.arange(rows, dtype=torch.int32).cuda() * 100000
    got = dk.topk(scores, lengths, k, offsets=offsets)
    want = torch.where(base >= 0, base + offsets.cpu()[:, None], base)
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=0)

    num_req, cols = 4, stride // page
    table = torch.randint(0, 10000, (num_req, cols + 3), dtype=torch.int32)
    table[1, 5] = -7  # a negative entry maps to -1
    req = torch.randint(0, num_req, (rows,), dtype=torch.int32)
    got = dk.topk(scores, lengths, k, page_table=table.cuda(), page_size=page,
                  request_of_row=req.cuda(), page_table_cols=cols)
    entry = table[req[:, None].long(), (base.clamp(min=0) // page).long()]
    mapped = torch.where(entry >= 0, entry * page + base % page, -1)
    want = torch.where(base >= 0, mapped, base)
    torch.testing.assert_close(got.cpu(), want.to(torch.int32), rtol=0, atol=0)

    cu = torch.tensor([0, 3, 3, 8, rows], dtype=torch.int32)
    got = dk.topk(scores, lengths, k, page_table=table.cuda(), page_size=page,
                  cu_seqlens_q=cu.cuda(), page_table_cols=cols)
    req_cu = torch.bucketize(torch.arange(rows), cu[1:], right=True).to(torch.int32)
    entry = table[req_cu[:, None].long(), (base.clamp(min=0) // page).long()]
    mapped = torch.where(entry >= 0, entry * page + base % page, -1)
    want = torch.where(base >= 0, mapped, base)
    torch.testing.assert_close(got.cpu(), want.to(torch.int32), rtol=0, atol=0)


def test_topk_rejects_bad_tensors():
    torch, dk = need_cuda()
    scores, lengths = _case(torch, 4, 100, torch.float32, 8, 1)
    for call, exc in [
        (lambda: dk.topk(scores.cpu(), lengths, 8), ValueError),
        (lambda: dk.topk(scores.double(), lengths, 8), TypeError),
        (lambda: dk.topk(scores, lengths.long(), 8), TypeError),
        (lambda: dk.topk(scores, lengths[:3], 8), ValueError),
        (lambda: dk.topk(scores.t(), lengths, 8), ValueError),
        (lambda: dk.topk(scores, lengths, 0), dk.DsaError),
        (lambda: dk.topk(scores, lengths, 5000), dk.DsaError),
    ]:
        try:
            call()
        except exc:
            continue
        raise AssertionError(f"expected {exc.__name__}")
    try:
        dk.topk(scores, lengths, 0)
    except dk.DsaError as e:
        assert e.status_name == "DSA_STATUS_INVALID_ARGUMENT" and "k = 0" in str(e), e
