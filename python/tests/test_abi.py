"""The ctypes mirror of the C ABI matches the header (struct sizes and field offsets, checked
with the system C compiler), and the library's error path works. Needs no torch and no GPU."""

import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import skip

ROOT = Path(__file__).resolve().parents[2]
HEADER_DIR = ROOT / "ffi" / "include"


def _lib_module():
    """dsa_kernels._lib loaded on its own (the package's __init__ imports torch)."""
    path = ROOT / "python" / "dsa_kernels" / "_lib.py"
    spec = importlib.util.spec_from_file_location("dsa_kernels_lib_only", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _structs(m):
    return [getattr(m, n) for n in ("DsaDeviceInfo", "DsaTopkConfig", "DsaTopkArgs",
                                    "DsaHadamardParams", "DsaHadamardSizes",
                                    "DsaLayerNormParams", "DsaLayerNormSizes", "DsaIndexerConfig",
                                    "DsaIndexerPrefillShape", "DsaIndexerDecodeShape",
                                    "DsaIndexerPlanInfo", "DsaIndexerTokens",
                                    "DsaIndexerPrefillArgs", "DsaIndexerDecodeArgs")]


def test_struct_layouts_match_the_header():
    m = _lib_module()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not (HEADER_DIR / "dsa_kernels.h").is_file():
        skip("no C compiler or header")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "dsa_kernels.h"',
             "int main(void) {"]
    for s in _structs(m):
        n = s.__name__
        lines.append(f'printf("{n} %zu\\n", sizeof({n}));')
        for f, _ in s._fields_:
            lines.append(f'printf("{n}.{f} %zu\\n", offsetof({n}, {f}));')
    lines.append("return 0; }")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "probe.c", Path(tmp) / "probe"
        src.write_text("\n".join(lines))
        subprocess.run([cc, "-std=c11", "-I", str(HEADER_DIR), str(src), "-o", str(exe)],
                       check=True)
        got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    want = []
    for s in _structs(m):
        want.append(f"{s.__name__} {__import__('ctypes').sizeof(s)}")
        want += [f"{s.__name__}.{f} {getattr(s, f).offset}" for f, _ in s._fields_]
    assert got.split("\n")[:-1] == want, got


def test_library_loads_and_reports_errors():
    m = _lib_module()
    try:
        lib = m.load()
    except OSError as e:
        skip(str(e))
    import ctypes

    assert lib.dsa_abi_version() == m.ABI_VERSION
    cfg = m.DsaTopkConfig(k=0)
    info = m.DsaDeviceInfo(-1, 132, 9, 0, 227 * 1024, 50 << 20, 0)
    plan = ctypes.c_void_p()
    status = lib.dsa_topk_plan_create_for(ctypes.byref(cfg), 1, 8, ctypes.byref(info),
                                          ctypes.byref(plan))
    try:
        m.check(status)
    except m.DsaError as e:
        assert e.status == m.INVALID_ARGUMENT and "k = 0 is out of range" in str(e)
    else:
        raise AssertionError("k = 0 must fail")
    cfg.k = 16
    m.check(lib.dsa_topk_plan_create_for(ctypes.byref(cfg), 1, 1 << 20, ctypes.byref(info),
                                         ctypes.byref(plan)))
    shape = (ctypes.c_int64 * 2)()
    m.check(lib.dsa_topk_plan_output_shape(plan, shape))
    assert list(shape) == [1, 16]
    m.check(lib.dsa_topk_plan_destroy(plan))


def test_indexer_plans_on_the_host():
    m = _lib_module()
    try:
        lib = m.load()
    except OSError as e:
        skip(str(e))
    import ctypes

    cfg = m.DsaIndexerConfig()
    m.check(lib.dsa_indexer_config_default(ctypes.byref(cfg)))
    assert (cfg.heads, cfg.dim, cfg.rope_dim, cfg.page_size, cfg.k) == (64, 128, 64, 64, 2048)
    assert cfg.input_dtype == m.BF16 and abs(cfg.eps - 1e-6) < 1e-12
    info = m.DsaDeviceInfo(-1, 132, 9, 0, 227 * 1024, 50 << 20, 0)
    shape = m.DsaIndexerDecodeShape(batch=7, stride=5000, bt_stride=100, max_positions=8192,
                                    cache_pages=600)
    plan = ctypes.c_void_p()
    m.check(lib.dsa_indexer_decode_plan_create_for(ctypes.byref(cfg), ctypes.byref(shape),
                                                   ctypes.byref(info), ctypes.byref(plan)))
    pi = m.DsaIndexerPlanInfo()
    m.check(lib.dsa_indexer_plan_info(plan, ctypes.byref(pi)))
    assert list(pi.logits_shape) == [7, 5000] and list(pi.indices_shape) == [7, 2048]
    assert pi.bt_cols == 79 and pi.kind == 1 and pi.workspace_bytes >= 7 * 64 * 132
    ws = ctypes.c_size_t()
    m.check(lib.dsa_indexer_plan_workspace_bytes(plan, ctypes.byref(ws)))
    assert ws.value == pi.workspace_bytes
    m.check(lib.dsa_indexer_plan_destroy(plan))
    pshape = m.DsaIndexerPrefillShape(tokens=19, num_keys=300, stride=0, max_positions=4096,
                                      cache_pages=8)
    cfg.dim = 96
    status = lib.dsa_indexer_prefill_plan_create_for(ctypes.byref(cfg), ctypes.byref(pshape),
                                                     ctypes.byref(info), ctypes.byref(plan))
    try:
        m.check(status)
    except m.DsaError as e:
        assert e.status == m.INVALID_ARGUMENT and "dim 96" in str(e), e
    else:
        raise AssertionError("dim 96 must fail")
    cfg.dim = 128
    m.check(lib.dsa_indexer_prefill_plan_create_for(ctypes.byref(cfg), ctypes.byref(pshape),
                                                    ctypes.byref(info), ctypes.byref(plan)))
    m.check(lib.dsa_indexer_plan_info(plan, ctypes.byref(pi)))
    assert list(pi.logits_shape) == [19, 300] and pi.kind == 0
    m.check(lib.dsa_indexer_plan_destroy(plan))
