"""The BLE service port's link (firmware/service/ble.py) on both interpreters: a request cut at every byte and
at the MTU, two requests in one write, answers cut into notifications at MTU - 3, an oversize request, the
session bound to the connection and ended with it, and when an idle connection is to be disconnected (near the
tick counter's wrap too)."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import binascii
import struct

from interlock import timebase
from service import cbor
from service.ble import IDLE_MS, LOGIN_MS, MAX_MTU, MIN_MTU, Link
from service.server import Service


class Handset:
    """The service surface of the state machine, reduced (as bench/mp/service_alloc.py)."""

    login_wait_line = 0
    login_wait_net = 0
    device_id = 7
    secret = bytes(32)
    wall = 90000000

    def token_wall(self, now):
        return self.wall

    def set_login_waits(self, line, net):
        self.login_wait_line = line
        self.login_wait_net = net

    def keys(self):
        return (b"", b"", b"k" * 32)

    def record(self, rtype, a=0, b=0, c=0):
        return 1

    def status(self):
        return {"wall": self.wall}


class Log:
    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        return 1

    def next_seq(self):
        return 1


def request(op, group, cmd, body, seq):
    payload = cbor.encode(body)
    return struct.pack(">BBHHBB", 8 | op, 0, len(payload), group, seq, cmd) + payload


def show(tag, answers, link):
    for a in answers:
        parts = link.chunks(a)
        print(tag, len(a), "bytes in", len(parts), "notifications of at most", max(len(p) for p in parts),
              binascii.hexlify(bytes(a[:8])).decode(), sorted(cbor.decode(bytes(a[8:]))))


def main():
    n = [0]

    def entropy(k):
        n[0] += 1
        return bytes((n[0] + i) & 255 for i in range(k))

    svc = Service(Handset(), Log(), entropy)
    echo = request(2, 0, 0, {"d": "x" * 300}, 1)
    for mtu in (MIN_MTU, 100, MAX_MTU, 600):
        link = Link(svc, "peer-%d" % mtu, mtu)
        got = []
        size = link.chunk_size()
        for i in range(0, len(echo), size):
            got += link.written(1000, echo[i:i + size])
        show("mtu %d (carries %d)" % (mtu, size), got, link)
    link = Link(svc, "bytewise", MIN_MTU)
    got = []
    for i in range(len(echo)):
        got += link.written(1000, echo[i:i + 1])
    show("one byte a write", got, link)
    show("two in one write", link.written(1000, request(0, 100, 0, {}, 2) + request(0, 0, 6, {}, 3)), link)
    show("oversize", link.written(1000, struct.pack(">BBHHBB", 8, 0, 5000, 0, 4, 0)) +
         link.written(1000, bytes(5000)), link)
    session = svc.session_for("bytewise")
    print("session before the link drops", session is not None and session.peer == "bytewise")
    link.closed()
    print("session after", svc.session_for("bytewise"))
    # idle: without a session LOGIN_MS from the connection, however much it writes; with one (a session slot
    # with a technician in it), IDLE_MS from the last write; ticks just before the wrap
    t0 = timebase.TICKS_PERIOD - 1000
    link = Link(svc, "idle", MAX_MTU, t0)
    for dt in (0, 20000, 40000, LOGIN_MS - 1):
        link.written(timebase.add(t0, dt), request(2, 0, 0, {"d": "x"}, 5))
        print("no session, written at", dt, "idle", link.idle(timebase.add(t0, dt)))
    print("no session at", LOGIN_MS, "idle", link.idle(timebase.add(t0, LOGIN_MS)))
    t1 = timebase.add(t0, LOGIN_MS)
    link.written(t1, request(2, 0, 0, {"d": "x"}, 6))
    svc.session_for("idle").tech_id = 17  # as a login leaves it (the link only asks whether one is open)
    for dt in (IDLE_MS - 1, IDLE_MS):
        print("session, quiet for", dt, "idle", link.idle(timebase.add(t1, dt)))


main()
