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
                                    "DsaLayerNormParams", "DsaLayerNormSizes")]


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
