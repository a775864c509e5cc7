"""MicroPython: heap bytes allocated by the service port per log-download answer and per small request,
and the time per answer on this interpreter. Run by bench/service_port.py under node (tools/mpy/run.mjs)."""

import gc
import struct
import time

from fsm import authority, records
from interlock import crypto, token
from service import cbor, frame
from service.server import Service


class Log:
    """Export of N 40-byte records held in one buffer (the flash log reads them from its segments)."""

    def __init__(self, n):
        self.rows = bytearray(40 + 40 * n)

    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        return 1

    def next_seq(self):
        return 1

    def export_size(self):
        return len(self.rows)

    def export_read(self, off, n):
        return bytes(memoryview(self.rows)[off:off + n])


class Handset:
    """The service surface of the state machine, reduced."""

    login_wait_line = 0
    login_wait_net = 0

    def __init__(self, log):
        self.device_id = 7
        self.secret = bytes(32)
        self.wall = 90000000
        self.log = log
        self._k = crypto.derive(self.secret, crypto.LABEL_TECH)

    def token_wall(self, now):
        return self.wall

    def set_login_waits(self, line, net):
        self.login_wait_line = line
        self.login_wait_net = net

    def keys(self):
        return (b"", b"", self._k)

    def record(self, rtype, a=0, b=0, c=0):
        return 1

    def status(self):
        return {"wall": self.wall}


def request(op, group, cmd, body, seq):
    payload = cbor.encode(body)
    pkt = struct.pack(">BBHHBB", 8 | op, 0, len(payload), group, seq, cmd) + payload
    return b"".join(frame.encode(pkt))


def main():
    log = Log(3650)
    h = Handset(log)
    n = [0]

    def entropy(k):
        n[0] += 1
        return bytes((n[0] + i) & 255 for i in range(k))

    svc = Service(h, log, entropy)
    now = 1000
    out = []
    d = frame.Decoder(4096)
    d.feed(b"".join(svc.feed(now, request(0, 100, 0, {}, 1))), out)
    nonce = cbor.decode(out[-1][1][8:])["nonce"]
    key = token.token_key(h._k, 7, 3, h.wall + 3600)
    svc.feed(now, request(2, 100, 0, {"tech_id": 3, "expires": h.wall + 3600, "mac": token.answer(key, nonce)}, 2))
    assert svc.session_for().tech_id == 3
    reqs = [request(0, 8, 0, {"off": off, "name": "/log/events.bin"}, 3 + i % 200)
            for i, off in enumerate(range(0, log.export_size(), 2004))]
    echo = request(2, 0, 0, {"d": "ping"}, 9)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for _ in range(20):
        svc.take(echo)
        while svc.next_line(now) is not None:
            pass
    a1 = gc.mem_alloc()
    gc.enable()
    gc.collect()
    # the service task's every turn: the timers with a live session (the per-tick path: nothing allocated)
    gc.disable()
    p0 = gc.mem_alloc()
    for i in range(200):
        svc.poll(now + i * 5)
    p1 = gc.mem_alloc()
    gc.enable()
    gc.collect()
    total = 0
    worst = 0
    t0 = time.ticks_ms()
    for r in reqs:
        gc.collect()
        gc.disable()
        b0 = gc.mem_alloc()
        svc.take(r)
        sent = 0
        while True:
            line = svc.next_line(now)
            if line is None:
                break
            sent += len(line)  # the task writes each line to the UART here
        used = gc.mem_alloc() - b0
        gc.enable()
        total += sent
        worst = max(worst, used)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    print("echo_alloc_bytes", (a1 - a0) // 20)
    print("poll_alloc_bytes", p1 - p0)
    print("answer_alloc_bytes_max", worst)
    print("answers", len(reqs), "wire_bytes", total, "ms", ms)
    _ = authority, records


main()
