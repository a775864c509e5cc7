"""Host simulator: the handset firmware on simulated drivers, a physical model of breath and fuel cell, a
virtual clock that wraps like MicroPython's tick counter."""

from host_sim import paths

paths.install()
