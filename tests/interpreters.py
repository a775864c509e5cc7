"""Running a Python script on CPython and on real MicroPython (the WebAssembly port under Node)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tools" / "mpy" / "run.mjs"
MPY_PACKAGE = ROOT / "tools" / "mpy" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def node():
    """Path of node, or None."""
    return shutil.which("node")


def micropython_available():
    """True when Node and the MicroPython package are installed."""
    return node() is not None and MPY_PACKAGE.exists()


def run_cpython(script, *args, timeout=600):
    """stdout of script on CPython with the repo root on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    out = subprocess.run([sys.executable, str(script), *map(str, args)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError("CPython run failed:\n" + out.stderr[-3000:])
    return out.stdout


def run_micropython(script, *args, heap=None, timeout=900):
    """stdout of script on MicroPython (paths relative to the repo root)."""
    cmd = [node(), str(RUNNER)]
    if heap:
        cmd += ["--heap", str(heap)]
    cmd += [str(script), *map(str, args)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError("MicroPython run failed:\n" + out.stderr[-3000:] + out.stdout[-2000:])
    return out.stdout
