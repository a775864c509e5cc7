"""The whole tree is ruff-clean (lint and import order), so style drift fails the build."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    """`ruff check .` reports no problem."""
    ruff = Path(sys.executable).parent / "ruff"
    out = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]


def test_mypy_finds_nothing_in_the_cpython_parts():
    """mypy type-checks the companion, the technician CLI and the simulator (pyproject's [tool.mypy])."""
    mypy = Path(sys.executable).parent / "mypy"
    out = subprocess.run([str(mypy)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
