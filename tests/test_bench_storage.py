"""bench/storage.py measures the state the firmware saves, not a number restated by hand."""

import importlib

import host_sim  # noqa: F401  (puts firmware/ on sys.path)
from fsm import persist


def _bench():
    return importlib.import_module("bench.storage")  # main() runs only as a script


def test_state_size_is_the_firmwares():
    """Both the CPython and the MicroPython runs save persist.SIZE bytes."""
    b = _bench()
    assert b.STATE_BYTES == persist.SIZE
    assert "data = bytes(%d)" % persist.SIZE in b.MP_SCRIPT
