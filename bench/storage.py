"""Storage: bytes per record, records written per second on MicroPython beside CPython, flash write amplification.

Command: .venv/bin/python -m bench.storage   (writes bench/results/storage.txt)

- bytes per record: the record encoding plus its share of the segment header, as stored in the segment file.
- records/s: FlashLog.append (encode, CRC, SHA-256 chain, commit) on
    MicroPython 1.27 (WebAssembly, under Node) with drivers.flash.VfsFlash on its in-memory filesystem,
    CPython with the same VfsFlash on a temporary directory, and
    CPython with host_sim.flash.LfsFlash: real littlefs on the simulated NOR flash (Python block device).
  Also the encode+chain step alone, and heap bytes allocated per append on MicroPython.
- write amplification: flash bytes programmed and blocks erased per record, counted by the simulated chip, with
  the board's littlefs geometry (block 4096, prog 32, cache 128) and the default 101-record segments.
"""

import os
import pathlib
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# isort: off
import host_sim  # noqa: E402,F401  (puts firmware/ on sys.path: must come first)
from host_sim.flash import BLOCK_SIZE, LfsFlash  # noqa: E402
from drivers.flash import VfsFlash  # noqa: E402
from fsm import persist  # noqa: E402
from interlock import record  # noqa: E402
from storage.log import FlashLog  # noqa: E402
from storage.state import FileState  # noqa: E402
# isort: on

N = 3000
STATE_BYTES = persist.SIZE  # the saved state the firmware writes
RECORDS_PER_DAY = 103  # tests/test_storage_budget.py: 4 drives of 25 records, 3 daily
SAVES_PER_DAY = 200  # state saves on events (edges, results, lockouts, drives) on a typical day
STAMPS_PER_DAY = 1440  # heartbeats (alive_s = 60 s), written as an 8-byte stamp, not a state save
FREE_BLOCKS = 80  # free blocks of the 2 MiB partition when the log holds a full year

# Run on MicroPython: prints "name value" lines.
MP_SCRIPT = """
import gc, os, time
from drivers.flash import VfsFlash
from interlock import record
from storage.log import FlashLog
from storage.state import FileState
N = __N__
try:
    os.mkdir('/bench_fs')
except OSError:
    pass
fl = VfsFlash('/bench_fs')
log = FlashLog(fl, retention=0)
t0 = time.ticks_ms()
for i in range(N):
    log.append(1000 + i, 8, i, -i, i * 3, 0)
dt = time.ticks_diff(time.ticks_ms(), t0)
print('append_per_s', N * 1000 // max(dt, 1))
h = record.GENESIS
buf = bytearray(40)
t0 = time.ticks_ms()
for i in range(N):
    record.encode_into(buf, 0, h, i, 1000, 8, i, -i, 3, 0)
    h = record.chain(h, buf)
dt = time.ticks_diff(time.ticks_ms(), t0)
print('encode_chain_per_s', N * 1000 // max(dt, 1))
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for i in range(200):
    log.append(5000 + i, 8, i, 0, 0, 0)
a1 = gc.mem_alloc()
gc.enable()
print('alloc_per_append', (a1 - a0) // 200)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for i in range(200):
    record.encode_into(buf, 0, h, i, 1000, 8, i, -i, 3, 0)
a1 = gc.mem_alloc()
gc.enable()
print('alloc_per_encode_into', (a1 - a0) // 200)
st = FileState(fl)
data = bytes(__STATE__)
t0 = time.ticks_ms()
for i in range(300):
    st.save(data)
dt = time.ticks_diff(time.ticks_ms(), t0)
print('state_save_per_s', 300 * 1000 // max(dt, 1))
print('verify_ok', log.verify()[0])
""".replace("__N__", str(N)).replace("__STATE__", str(STATE_BYTES))


def micropython():
    """Run MP_SCRIPT on MicroPython and parse its numbers."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(MP_SCRIPT)
        path = f.name
    try:
        proc = subprocess.run(["node", str(ROOT / "tools" / "mpy" / "run.mjs"), path], capture_output=True,
                              text=True, timeout=600, cwd=ROOT)
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise SystemExit("MicroPython run failed:\n" + proc.stderr)
    out = {}
    for line in proc.stdout.split("\n"):
        if line.strip():
            k, v = line.split()
            out[k] = v
    return out


def rate(log, n, wall=1000):
    """Appends per second for n records."""
    t0 = time.perf_counter()
    for i in range(n):
        log.append(wall + i, 8, i, -i, i * 3, 0)
    return n / (time.perf_counter() - t0)


def cpython():
    """CPython numbers: VfsFlash on a temp dir, LfsFlash on the simulated chip, and write amplification."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["vfs_append_per_s"] = rate(FlashLog(VfsFlash(tmp), retention=0), N)
    fl = LfsFlash.fresh(512)
    log = FlashLog(fl, retention=0)
    dev = fl.dev
    p0, e0 = dev.prog_bytes, dev.erases
    out["lfs_append_per_s"] = rate(log, N)
    out["prog_bytes_per_record"] = (dev.prog_bytes - p0) / N
    out["erases_per_record"] = (dev.erases - e0) / N
    out["flash_bytes_per_record"] = ((dev.prog_bytes - p0) + (dev.erases - e0) * BLOCK_SIZE) / N
    h = record.GENESIS
    buf = bytearray(record.SIZE)
    t0 = time.perf_counter()
    for i in range(N):
        record.encode_into(buf, 0, h, i, 1000, 8, i, -i, 3, 0)
        h = record.chain(h, buf)
    out["encode_chain_per_s"] = N / (time.perf_counter() - t0)
    st = FileState(fl)
    p0, e0 = dev.prog_bytes, dev.erases
    for _ in range(100):
        st.save(bytes(STATE_BYTES))
    out["state_flash_bytes_per_save"] = ((dev.prog_bytes - p0) + (dev.erases - e0) * BLOCK_SIZE) / 100
    out["state_erases_per_save"] = (dev.erases - e0) / 100
    p0, e0 = dev.prog_bytes, dev.erases
    for i in range(1000):
        st.stamp(90_000_000 + 60 * i)
    out["stamp_flash_bytes"] = ((dev.prog_bytes - p0) + (dev.erases - e0) * BLOCK_SIZE) / 1000
    out["stamp_erases"] = (dev.erases - e0) / 1000
    out["verify_ok"] = log.verify()[0]
    return out


def main():
    """Measure, print and write bench/results/storage.txt."""
    mp = micropython()
    cp = cpython()
    per_record = record.SIZE + record.HEADER_SIZE / 101
    erases_day = (RECORDS_PER_DAY * cp["erases_per_record"] + SAVES_PER_DAY * cp["state_erases_per_save"]
                  + STAMPS_PER_DAY * cp["stamp_erases"])
    per_block_year = erases_day * 365 / FREE_BLOCKS
    lines = [
        "# storage (event log and state on flash)",
        "# command: .venv/bin/python -m bench.storage",
        "",
        f"bytes per record on flash:            {per_record:.1f}  ({record.SIZE}-byte record + 1/101 of a "
        f"{record.HEADER_SIZE}-byte segment header)",
        "",
        "records appended per second (encode, CRC-32, SHA-256 chain, commit to a file):",
        f"  MicroPython 1.27 (wasm), VfsFlash on its in-memory fs: {int(mp['append_per_s']):8d}",
        f"  CPython, VfsFlash on a tmp directory:                   {cp['vfs_append_per_s']:8.0f}",
        f"  CPython, littlefs on the simulated NOR flash:           {cp['lfs_append_per_s']:8.0f}",
        f"encode+chain only, records per second: MicroPython {int(mp['encode_chain_per_s'])}, "
        f"CPython {cp['encode_chain_per_s']:.0f}",
        f"heap bytes allocated per append on MicroPython: {mp['alloc_per_append']} "
        f"(encode_into alone: {mp['alloc_per_encode_into']})",
        f"state saves per second on MicroPython ({STATE_BYTES}-byte state, temp + rename): {mp['state_save_per_s']}",
        "",
        f"write amplification on littlefs (block 4096, prog 32, cache 128; {N} appends, 101-record segments):",
        f"  bytes programmed per record:  {cp['prog_bytes_per_record']:8.0f}",
        f"  blocks erased per record:     {cp['erases_per_record']:8.3f}",
        f"  flash bytes written per record (programmed + 4096 per erase): {cp['flash_bytes_per_record']:.0f}"
        f"  = {cp['flash_bytes_per_record'] / record.SIZE:.0f}x the {record.SIZE}-byte record",
        f"  flash bytes written per {STATE_BYTES}-byte state save: {cp['state_flash_bytes_per_save']:.0f} "
        f"({cp['state_erases_per_save']:.2f} erases)",
        f"  flash bytes written per heartbeat stamp (8-byte file, inline in littlefs metadata): "
        f"{cp['stamp_flash_bytes']:.0f} ({cp['stamp_erases']:.3f} erases)",
        "  why: littlefs commits an append by copying the file's partly filled last block to a fresh block",
        "  (copy-on-write), so each record costs about half a block of programming plus one erase.",
        f"  wear estimate: {RECORDS_PER_DAY} records + {SAVES_PER_DAY} state saves + {STAMPS_PER_DAY} heartbeat "
        f"stamps a day = {erases_day:.0f} erases a day; over the {FREE_BLOCKS} blocks",
        f"  free when the log holds a full year that is {per_block_year:.0f} erases per block a year "
        f"({100000 / per_block_year:.0f} years to 100,000 cycles).",
        "",
        f"chain verifies after the runs: MicroPython {mp['verify_ok']}, CPython {cp['verify_ok']}",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = ROOT / "bench" / "results" / "storage.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
