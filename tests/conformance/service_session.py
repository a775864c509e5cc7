"""A whole technician session through the service port's SMP server (framing in and out, CBOR, HMAC login,
access rules, FS download, refusals) on a small stand-in handset: identical wire bytes on both interpreters."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import binascii
import struct

from fsm import authority, records
from interlock import crypto, token
from service import cbor, frame
from service.server import Service


class Handset:
    """The state machine's service surface, reduced to what this script needs."""

    def __init__(self):
        self.device_id = 4242
        self.secret = bytes(range(32))
        self.wall = 90000000
        self.log = Log()
        self.locked = True
        self.token_lead = 0
        self.login_wait_line = 0
        self.login_wait_net = 0
        self.wait_saves = 0

    def keys(self):
        return (b"", b"", crypto.derive(self.secret, crypto.LABEL_TECH))

    def record(self, rtype, a=0, b=0, c=0):
        return self.log.append(self.wall, rtype, a, b, c)

    def technician(self, now, tech_id, action, a=0, b=0, c=0):
        if action == authority.TECH_CLEAR and self.locked:
            self.locked = False
            self.record(records.CLEAR, records.LOCK_VIOLATION, records.SRC_TECH, tech_id)
            return authority.APPLIED
        return authority.REFUSED

    def set_time(self, now, wall, source):
        # as the state machine keeps its token clock: a technician's set back leaves a lead, never less than 0
        lead = self.token_lead - (wall - self.wall) if source == records.SRC_TECH else 0
        self.token_lead = lead if lead > 0 else 0
        self.record(records.CLOCK, 1, wall - self.wall, source)
        self.wall = wall

    def token_wall(self, now):
        return self.wall + self.token_lead

    def set_login_waits(self, line, net):
        if line != self.login_wait_line or net != self.login_wait_net:
            self.login_wait_line = line
            self.login_wait_net = net
            self.wait_saves += 1

    def status(self):
        return {"lockout": self.locked, "wall": self.wall, "log_next_seq": self.log.next_seq(),
                "display": ["VIOLATION", "LOCKOUT"]}


class Log:
    """Records as 12-byte rows; the export is their concatenation."""

    def __init__(self):
        self.rows = bytearray()

    def append(self, wall, rtype, a, b, c):
        self.rows.extend(struct.pack(">IHhhh", wall, rtype, a, b, c & 0x7FFF))
        return len(self.rows) // 12

    def next_seq(self):
        return len(self.rows) // 12 + 1

    def export_size(self):
        return len(self.rows)

    def export_read(self, off, n):
        return bytes(self.rows[off:off + n])


_n = [0]


def entropy(n):
    _n[0] += 1
    return bytes((_n[0] * 7 + i) & 0xFF for i in range(n))


def packet(op, group, cmd, body, seq):
    payload = cbor.encode(body)
    return struct.pack(">BBHHBB", 8 | op, 0, len(payload), group, seq, cmd) + payload


def exchange(svc, now, pkt, label):
    """Send one framed request; print and return the decoded response body."""
    lines = svc.feed(now, b"".join(frame.encode(pkt)))
    out = []
    frame.Decoder(4096).feed(b"".join(lines), out)
    wire = b"".join(lines)
    print(label, len(lines), len(wire), binascii.hexlify(wire[:48]).decode())
    if not out:
        print("  (no answer)")
        return None
    body = cbor.decode(out[0][1][8:])
    print("  ", binascii.hexlify(out[0][1][:8]).decode(), sorted(body) if isinstance(body, dict) else body)
    return body


def ask(svc, now, peer, op, group, cmd, body, seq):
    """One unframed request from a packet-transport peer; the decoded answer body."""
    rsp = svc.handle(now, packet(op, group, cmd, body, seq), peer)
    return None if rsp is None else cbor.decode(rsp[8:])


def peers(h, now):
    """Two UDP-like peers: sessions are per peer; failed logins pace the port; a clock set back ends nothing
    early and extends nothing; a refusal flood is counted."""
    svc = Service(h, h.log, entropy, buf_size=256)
    a, b = ("10.0.0.1", 1337), ("10.0.0.2", 1337)
    tech_key = h.keys()[2]
    expires = h.wall + 600
    key = token.token_key(tech_key, h.device_id, 9, expires)
    nonce = ask(svc, now, a, 0, 100, 0, {}, 1)["nonce"]
    print("a login", sorted(ask(svc, now, a, 2, 100, 0, {"tech_id": 9, "expires": expires,
                                                          "mac": token.answer(key, nonce)}, 2).items()))
    print("b status", ask(svc, now, b, 0, 100, 1, {}, 3))
    nonce = ask(svc, now, b, 0, 100, 0, {}, 4)["nonce"]
    print("b bad", ask(svc, now, b, 2, 100, 0, {"tech_id": 9, "expires": expires, "mac": bytes(32)}, 5))
    print("a status", sorted(ask(svc, now + 5, a, 0, 100, 1, {}, 6)))
    nonce = ask(svc, now + 10, b, 0, 100, 0, {}, 7)["nonce"]
    print("b held", ask(svc, now + 10, b, 2, 100, 0, {"tech_id": 9, "expires": expires,
                                                       "mac": token.answer(key, nonce)}, 8))
    print("a clock back", ask(svc, now + 20, a, 2, 100, 7, {"wall": h.wall - 1000}, 9), h.wall)
    t = now + 20
    for i in range(12):
        t += 50000
        body = ask(svc, t, a, 0, 100, 1, {}, 10 + i)
        print("a after", (t - now) // 1000, "s", sorted(body))
    for i in range(20):
        ask(svc, t, b, 0, 100, 7, {}, 30 + i)
    svc.poll(t + 61000)
    print("sessions", [(s.used, s.tech_id) for s in svc.sessions])
    print("waits", h.login_wait_line, h.login_wait_net, h.wait_saves, svc.login_held(t, a), svc.login_held(t))
    print("token clock", h.token_lead, svc.token_wall(t))


def main():
    """Run a session: denied request, login, status, clear, download, logout, a replay and garbage."""
    h = Handset()
    svc = Service(h, h.log, entropy, buf_size=256)
    now = 0x3FFFF000  # just before the tick counter wraps
    exchange(svc, now, packet(0, 0, 6, {}, 1), "params")
    exchange(svc, now, packet(2, 0, 0, {"d": "hi"}, 2), "echo")
    exchange(svc, now, packet(0, 100, 1, {}, 3), "status-denied")
    challenge = exchange(svc, now, packet(0, 100, 0, {}, 4), "challenge")
    tech_key = h.keys()[2]
    expires = h.wall + 3600
    key = token.token_key(tech_key, h.device_id, 9, expires)
    answer = {"tech_id": 9, "expires": expires, "mac": token.answer(key, challenge["nonce"])}
    exchange(svc, now + 10, packet(2, 100, 0, answer, 5), "login")
    print("  tech", svc.session_for().tech_id)
    exchange(svc, now + 20, packet(0, 100, 1, {}, 6), "status")
    print("  ", exchange(svc, now + 21, packet(0, 0, 4, {}, 60), "datetime"))
    exchange(svc, now + 22, packet(2, 0, 4, {"datetime": "2026-11-07T17:30:05.25+01:00"}, 61), "set-datetime")
    print("   wall", h.wall)
    exchange(svc, now + 23, packet(2, 0, 4, {"datetime": "2026-02-29T00:00:00"}, 62), "bad-datetime")
    print("  ", exchange(svc, now + 24, packet(0, 0, 7, {"format": "s"}, 63), "info"))
    exchange(svc, now + 30, packet(2, 100, 5, {}, 7), "clear")
    exchange(svc, now + 40, packet(2, 100, 5, {}, 8), "clear-again")
    got = bytearray()
    seq = 9
    while True:
        body = exchange(svc, now + 50, packet(0, 8, 0, {"off": len(got), "name": "/log/events.bin"}, seq), "dl")
        seq += 1
        got += body["data"]
        if len(got) >= h.log.export_size() or not body["data"]:
            break
    print("download", len(got), got == bytes(h.log.rows))
    body = exchange(svc, now + 60, packet(0, 8, 0, {"off": 0, "name": "/state.json"}, seq), "state")
    print("  ", body["data"].decode())
    exchange(svc, now + 70, packet(2, 100, 9, {}, seq + 1), "logout")
    exchange(svc, now + 80, packet(2, 100, 0, answer, seq + 2), "replay")
    exchange(svc, now + 90, packet(2, 0, 0, {"d": "x" * 400}, seq + 3), "oversize")
    print("garbage", svc.feed(now, b"\x06\x09AAAA\n\x04\x14!!\n" + bytes(range(256))), svc.errors)
    peers(h, now + 100)
    for i in range(1, h.log.next_seq()):
        print("log", binascii.hexlify(h.log.rows[(i - 1) * 12:i * 12]).decode())


main()
