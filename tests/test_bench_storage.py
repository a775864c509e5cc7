"""bench/storage.py measures the state the firmware saves, not a number restated by hand."""

import importlib.util
import pathlib

import host_sim  # noqa: F401  (puts firmware/ on sys.path)
from fsm import persist

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("bench_storage", ROOT / "bench" / "storage.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # main() runs only as a script
    return mod


def test_state_size_is_the_firmwares():
    """Both the CPython and the MicroPython runs save persist.SIZE bytes."""
    b = _bench()
    assert b.STATE_BYTES == persist.SIZE
    assert "data = bytes(%d)" % persist.SIZE in b.MP_SCRIPT
