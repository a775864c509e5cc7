"""Run one scenario file and print its report; the same script runs on CPython and on MicroPython."""

import sys

try:
    import host_sim  # noqa: F401  (CPython: puts firmware/ and the stand-ins on sys.path)
except ImportError:
    pass

from host_sim import scenario  # noqa: E402

for path in sys.argv[1:]:
    sc = scenario.run_file(path)
    for line in scenario.report(sc):
        print(line)
