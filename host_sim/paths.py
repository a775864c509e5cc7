"""Put the firmware tree (and, on CPython, the MicroPython stand-ins) on sys.path, as a board's flash would."""

import sys

_ROOT = __file__.rsplit("/", 2)[0] if __file__.count("/") >= 2 else ".."
FIRMWARE = _ROOT + "/firmware"
STUBS = _ROOT + "/host_sim/stubs"


def install():
    """Make `import fsm`, `import drivers`, `import storage` work on either interpreter."""
    if sys.implementation.name != "micropython" and STUBS not in sys.path:
        sys.path.insert(0, STUBS)
    if FIRMWARE not in sys.path and "/fw" not in sys.path:
        sys.path.insert(0, FIRMWARE)
