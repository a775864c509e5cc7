"""Test setup: the firmware tree and the MicroPython stand-ins on sys.path."""

import pytest
from hypothesis import settings

import host_sim  # noqa: F401  (installs the firmware paths)

# test modules load the portal fixtures as a plugin (pytest_plugins) and import its helpers: rewritten
# once, whichever comes first
pytest.register_assert_rewrite("tests.portal_support")

# no Hypothesis deadline: a busy machine (or mutation testing's call trampolines) makes examples slow, and a
# test's verdict must not depend on its speed (speed is measured in bench/)
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")
