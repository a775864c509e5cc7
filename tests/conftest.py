"""Test setup: the firmware tree and the MicroPython stand-ins on sys.path."""

import host_sim  # noqa: F401  (installs the firmware paths)
