"""The sync wire format and the client's core on both interpreters: request signing, a companion-signed
answer (built here with the same wire module), command checks, and the state machine applying a clear once."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import hashlib

from fsm import records
from fsm.machine import Interlock
from interlock import crypto, wire
from storage.memory import MemoryLog, MemoryState
from sync.client import SyncClient

SECRET = hashlib.sha256(b"sync wire conformance").digest()
DEVICE = 4242
WALL = 91000000


class Board:
    """Board verbs that do nothing (the state machine only needs somewhere to send them)."""

    def __getattr__(self, name):
        return self._nothing

    def _nothing(self, *args):
        return 0


class Recorder:
    """A transport that is never called: the script drives the pure core itself."""


def answer(key, nonce, doc):
    """A companion answer: (status, headers, body) signed for the request that carried nonce."""
    body = wire.encode(doc).encode()
    return 200, {wire.H_SIG: wire.sign_response(key, DEVICE, nonce, 200, body)}, body


def command(key, cid, seq, kind, arg, expires, device=DEVICE):
    """A companion command with its MAC."""
    return {"id": cid, "device_id": device, "seq": seq, "kind": kind, "arg": arg, "expires": expires,
            "mac": wire.command_mac(key, device, cid, seq, kind, arg, expires)}


def main():
    """Print every step so the two interpreters can be compared byte for byte."""
    sync_key = crypto.derive(SECRET, crypto.LABEL_SYNC)
    h = wire.sign_request(sync_key, DEVICE, WALL, "00112233445566778899aabb", b'{"v":1}')
    for k in sorted(h):
        print("header", k, h[k])
    print("encode", wire.encode({"b": [1, True, None, "x\"y"], "a": {"z": -5, "c": False}}))
    print("canon", wire.canon_arg({"version": 3, "fail_brac": 20, "warn_brac": 10}), wire.canon_arg(77))
    c = command(sync_key, 5, 9, wire.KIND_CLEAR, 33, WALL + 100)
    print("command ok", wire.check_command(sync_key, DEVICE, c))
    bad = dict(c)
    bad["arg"] = 34
    print("altered arg", wire.check_command(sync_key, DEVICE, bad))
    print("other device", wire.check_command(sync_key, DEVICE + 1, c))
    print("missing mac", wire.check_command(sync_key, DEVICE, {"id": 1}))

    log = MemoryLog()
    im = Interlock(Board(), log, MemoryState())
    im.boot(0, WALL)
    im.provision(0, DEVICE, SECRET)
    client = SyncClient(im, Recorder(), seed=77)
    print("due", client.due(0))
    method, path, headers, body = client.build(0)
    print("request", method, path, headers[wire.H_SIG], len(body))
    doc = wire.decode(body)
    print("log first", doc["log"]["first"], "records", len(doc["log"]["data"]) * 3 // 4 // 40)
    nonce = headers[wire.H_NONCE]
    # a forged answer (wrong key) is refused and logged
    st, hd, bd = answer(crypto.derive(SECRET, crypto.LABEL_TECH), nonce, {"nonce": nonce})
    print("forged", client.handle_response(10, st, hd, bd), log.read(log.next_seq() - 1))
    print("backoff", client.wait_ms(10) > 0, client.failures)
    # a good answer with the desired state, a policy and one clear for a lockout that is not current
    method, path, headers, body = client.build(20000)
    nonce = headers[wire.H_NONCE]
    doc = {"v": 1, "device_id": DEVICE, "nonce": nonce, "time": WALL + 5, "more": False,
           "log_ack": 3, "log_hash": "", "log_error": "",
           "desired": {"version": 4, "payment_due_day": 1100, "service_due_day": 1110,
                       "inspection_due_day": 0, "expected_module": 0, "policy": None},
           "commands": [command(sync_key, 1, 1, wire.KIND_SERVICE, 7, WALL + 3600),
                        command(sync_key, 2, 2, wire.KIND_CLEAR, 99, WALL - 10),
                        command(sync_key, 3, 3, wire.KIND_CLEAR, 99, WALL + 3600, DEVICE + 1)]}
    st, hd, bd = answer(sync_key, nonce, doc)
    print("good", client.handle_response(20001, st, hd, bd))
    print("acked", log.acked(), "desired", im.desired_version, "payment", im.payment_due,
          "last seq", im.last_command_seq, "acks", client.acks)
    # the same answer again: bound to the old nonce, refused
    client.build(30000)
    print("replayed", client.handle_response(30001, st, hd, bd))
    for seq in range(4, log.next_seq()):
        r = log.read(seq)
        print("record", r[0], records.NAMES.get(r[2], r[2]), r[3], r[4], r[5])


main()
