# isort: skip_file
"""Service-port bench: log-download payload throughput against the 115200-baud line limit, and the time to
download a year of log.

Run: .venv/bin/python -m bench.service_port   (writes bench/results/service_port.txt)

Two ways, both reported:
  computed  bytes on the wire per payload byte for each answer size (SMP header, CBOR map, length, CRC,
            base64, line markers and newlines, and the client's request in between), at 10 bits a byte;
  measured  the technician CLI's download (smpclient over pyserial) from the simulated handset on a
            pseudo-terminal whose both directions are paced to 115200 baud by host_sim.pty_port.
Line limits at 115200 baud, 8N1: 11,520 bytes/s raw; 8,640 payload bytes/s once base64 takes its 4/3
(the ceiling TOOLS.md calls "the line-rate limit with base64"). The target (>= 0.7) is against 8,640.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import host_sim  # noqa: E402,F401,I001  (firmware on sys.path before the firmware imports below)
from fsm import records  # noqa: E402
from service import cbor, frame  # noqa: E402
from service.fsgroup import chunk_size  # noqa: E402
from service.server import BUF_SIZE  # noqa: E402
from smpclient.requests.file_management import FileDownload  # noqa: E402
from interlock import record  # noqa: E402

from host_sim.pty_port import SimServicePort, flash_sim  # noqa: E402
from technician import client as tc  # noqa: E402
from technician.token import mint  # noqa: E402

BAUD = 115200
RAW = BAUD / 10  # bytes/s on the line
B64 = RAW * 3 / 4  # payload bytes/s if every line byte were base64 of payload
YEAR_RECORDS = 4 * 25 * 365  # ~4 drives a day, ~25 records each
OUT = ROOT / "bench" / "results" / "service_port.txt"


class _Stub:
    limit = 0


def computed(buf_size: int, file_size: int) -> tuple[float, float, float]:
    """(fraction of B64, fraction of RAW, seconds) to download file_size bytes with answers of buf_size."""
    stub = _Stub()
    stub.limit = buf_size - 4
    n = chunk_size(stub)
    wire = 0
    off = 0
    while off < file_size:
        take = min(n, file_size - off)
        req = FileDownload(off=off, name="/log/events.bin").BYTES
        # answer: header 8 + map{"off", "data", "len" on the first}: measured by encoding a real one
        body = {"off": off, "data": bytes(take)}
        if off == 0:
            body["len"] = file_size
        rsp_len = 8 + len(cbor.encode(body))
        assert rsp_len <= buf_size - 4
        wire += frame.wire_size(len(req)) + frame.wire_size(rsp_len)
        off += take
    secs = wire / RAW
    return file_size / secs / B64, file_size / secs / RAW, secs


def measured(records_n: int, baud: int | None) -> tuple[int, float, bool]:
    """(bytes, seconds, chain ok) for the CLI's download of a log of records_n records over the pty."""
    sim, log = flash_sim()
    for i in range(records_n):
        sim.fsm.record(records.RESULT, i % 40, records.PASS, 1)
    tok = mint(sim.fsm.keys()[2], sim.fsm.device_id, 1, sim.fsm.wall + 3600)
    with SimServicePort(sim, log, baud=baud) as port:
        async def go() -> tuple[bytes, float]:
            client = tc.make_client(port=port.path, timeout=2.5)
            await client.connect()
            try:
                await tc.login(client, tok)
                t0 = time.perf_counter()
                data = await tc.download(client, tc.LOG_FILE)
                return data, time.perf_counter() - t0
            finally:
                await client.disconnect()

        data, secs = asyncio.run(go())
    return len(data), secs, tc.check_log(data).ok


def login_pacing() -> list[str]:
    """Wrong login answers the port checks per second: unpaced (the wait after each failure skipped, i.e. the
    server's own speed, what a brute force got before the back-off) and paced (an attacker answering every
    100 ms for 10 simulated minutes, the server's waits in force)."""
    import os

    from interlock import timebase
    from service import cbor as _cbor
    from service.server import BACKOFF_MAX_MS, Service
    from technician import protocol as p

    sim, log = flash_sim()
    fsm = sim.fsm
    bad = mint(fsm.keys()[2], fsm.device_id + 1, 1, fsm.wall + 3600)  # another handset's token: a wrong MAC

    def attempt(svc: Service, now: int) -> int:
        nonce = _cbor.decode(svc.handle(now, p.Challenge().BYTES)[8:])["nonce"]
        rsp = _cbor.decode(svc.handle(now, p.Login(tech_id=bad.tech_id, expires=bad.expires,
                                                      mac=bad.answer(nonce)).BYTES)[8:])
        return rsp["rc"] if "rc" in rsp else rsp["err"]["rc"]

    svc = Service(fsm, log, os.urandom)
    now = sim.ticks()
    n = 3000
    t0 = time.perf_counter()
    for _ in range(n):
        assert attempt(svc, now) == p.InterlockErr.BAD_TOKEN
        now = timebase.add(now, BACKOFF_MAX_MS)  # past the wait: every answer is checked
    unpaced = n / (time.perf_counter() - t0)
    svc = Service(fsm, log, os.urandom)  # a new server, as after a reboot: the saved wait level carries over
    checked = 0
    for _ in range(10 * 60 * 10):
        if attempt(svc, now) == p.InterlockErr.BAD_TOKEN:
            checked += 1
        now = timebase.add(now, 100)
    return [f"failed-login pacing (in process, CPython; {n} wrong answers, then 10 simulated minutes at one "
            "answer per 100 ms):",
            f"  unpaced (no wait, the server's own speed): {unpaced:.0f} wrong answers checked per second",
            f"  paced (1 s after a failure, doubling to {BACKOFF_MAX_MS // 1000} s; a new server, as after a reboot, "
            f"starts at the saved level): {checked} checked in 10 min = {checked / 600:.3f} per second "
            f"({checked * 6} an hour)"]


def micropython_alloc() -> list[str]:
    """bench/mp/service_alloc.py on real MicroPython (WebAssembly port): heap bytes per answer."""
    import shutil
    import subprocess

    if shutil.which("node") is None:
        return ["MicroPython: skipped (node is not installed)"]
    out = subprocess.run(["node", "tools/mpy/run.mjs", "bench/mp/service_alloc.py"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return ["MicroPython: run failed: " + out.stderr.strip()[-300:]]
    vals = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    answers = vals["answers"].split()
    n, wire, ms = int(answers[0]), int(answers[2]), int(answers[4])
    return ["MicroPython 1.27 (WebAssembly port), download of 3650 records through take()/next_line():",
            f"  heap allocated per download answer (max, gc disabled): {vals['answer_alloc_bytes_max']} B "
            f"(about 2 KB of it is the chunk read from the log); per echo: {vals['echo_alloc_bytes']} B",
            f"  heap allocated by 200 polls of the timers with a session open (the task's every turn): "
            f"{vals['poll_alloc_bytes']} B",
            f"  {n} answers, {wire} wire bytes in {ms} ms = {ms / n:.1f} ms per answer on this interpreter "
            f"(the line needs {wire / n / RAW * 1000:.0f} ms per answer at {BAUD} baud)"]


def main() -> None:
    lines = [f"command: .venv/bin/python -m bench.service_port   ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             f"line: {BAUD} baud 8N1 = {RAW:.0f} B/s raw, {B64:.0f} payload B/s base64 limit; "
             f"buf_size (MCUmgr params) = {BUF_SIZE}",
             f"record size {record.SIZE} B; a year ~ {YEAR_RECORDS} records = "
             f"{record.HEADER_SIZE + YEAR_RECORDS * record.SIZE} B of export", ""]
    year = record.HEADER_SIZE + YEAR_RECORDS * record.SIZE
    lines.append("computed (wire bytes per payload byte, request + answer per chunk, no latency):")
    lines.append("  buf_size  chunk  of base64 limit  of raw line  year download")
    for bs in (256, 512, 1024, 2048, 4096):
        stub = _Stub()
        stub.limit = bs - 4
        f64, fraw, secs = computed(bs, year)
        mark = "  <- firmware" if bs == BUF_SIZE else ""
        lines.append(f"  {bs:8d}  {chunk_size(stub):5d}  {f64:15.3f}  {fraw:11.3f}  {secs / 60:6.1f} min{mark}")
    lines.append("")
    n = YEAR_RECORDS // 10
    size, secs, ok = measured(n, BAUD)
    rate = size / secs
    lines.append(f"measured at {BAUD} baud (pty paced both ways), technician CLI download of {n} records "
                 f"({size} B): {secs:.1f} s = {rate:.0f} B/s = {rate / B64:.3f} of the base64 limit, "
                 f"{rate / RAW:.3f} of raw; chain ok: {ok}")
    lines.append(f"  -> a year of log ({year} B) at that rate: {year / rate / 60:.1f} min")
    size, secs, ok = measured(YEAR_RECORDS, None)
    lines.append(f"measured unpaced (pty at memory speed), a whole year ({size} B): {secs:.1f} s = "
                 f"{size / secs / 1000:.0f} kB/s; chain ok: {ok}  (the server keeps up with the line "
                 f"{size / secs / B64:.0f}x over)")
    lines.append("")
    lines.extend(login_pacing())
    lines.append("")
    lines.extend(micropython_alloc())
    text = "\n".join(lines) + "\n"
    print(text, end="")
    OUT.write_text(text)


if __name__ == "__main__":
    main()
