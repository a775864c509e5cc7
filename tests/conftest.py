"""Test setup: the firmware tree and the MicroPython stand-ins on sys.path."""

import pytest

import host_sim  # noqa: F401  (installs the firmware paths)

# test modules load the portal fixtures as a plugin (pytest_plugins) and import its helpers: rewritten
# once, whichever comes first
pytest.register_assert_rewrite("tests.portal_support")
