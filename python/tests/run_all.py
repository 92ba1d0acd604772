"""Run the Python tests: with pytest when it is installed, else with a minimal runner that
calls every test_* function and prints pytest-like summary lines ('N passed, N failed')."""

import importlib
import sys
import traceback
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))


def main() -> int:
    try:
        import pytest
    except ImportError:
        pytest = None
    if pytest is not None and "--plain" not in sys.argv:
        return pytest.main([str(here), "-q", *[a for a in sys.argv[1:] if a != "--plain"]])
    import _common
    from _common import Skipped

    _common.PLAIN = True

    passed = failed = skipped = 0
    for path in sorted(here.glob("test_*.py")):
        module = importlib.import_module(path.stem)
        for name in sorted(n for n in dir(module) if n.startswith("test_")):
            try:
                getattr(module, name)()
            except Skipped as e:
                skipped += 1
                print(f"SKIP {path.stem}::{name}: {e}")
            except Exception:  # noqa: BLE001 - report every failure and go on
                failed += 1
                print(f"FAIL {path.stem}::{name}")
                traceback.print_exc()
            else:
                passed += 1
                print(f"ok   {path.stem}::{name}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
