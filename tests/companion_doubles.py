"""Test doubles of the companion, sync and end-to-end tests: a wire-level handset and a simulated handset
with its sync client (product-quality helpers, documented like the rest)."""

import host_sim  # noqa: F401  (firmware on sys.path)
from storage.memory import MemoryLog


class WireHandset:
    """A handset reduced to its wire behaviour (firmware wire format and record codec, no state machine):
    signs requests, keeps an encoded, chained log, checks answers."""

    def __init__(self, device_id, secret_hex):
        import os

        from interlock import crypto, record

        self.device_id = device_id
        self.secret = bytes.fromhex(secret_hex)
        self.key = crypto.derive(self.secret, crypto.LABEL_SYNC)
        self.record = record
        self.encoded = [b""]  # index = seq
        self.hashes = [record.GENESIS]
        self._os = os

    def append(self, n, rtype=4, wall=91000000):
        """Log n more records."""
        for _ in range(n):
            seq = len(self.encoded)
            enc = self.record.encode(self.hashes[-1], seq, wall + seq, rtype, seq, -seq, 7, 0)
            self.encoded.append(enc)
            self.hashes.append(self.record.chain(self.hashes[-1], enc))

    def chunk(self, first, last):
        """The log part of a request for records first..last."""
        import base64

        data = b"".join(self.encoded[first:last + 1])
        return {"first": first, "data": base64.b64encode(data).decode()}

    def request(self, status=None, log=None, acks=(), desired_version=0, last_command_seq=0, ts=None,
                nonce=None, body=None):
        """(headers, body) of a signed sync request."""
        from companion.app.core import timebase
        from interlock import wire

        if body is None:
            doc = {"v": 1, "device_id": self.device_id, "status": status or {"state": "OFF", "lockout": False},
                   "desired_version": desired_version, "last_command_seq": last_command_seq,
                   "acks": [list(a) for a in acks], "log": log}
            body = wire.encode(doc).encode()
        nonce = nonce or self._os.urandom(8).hex()
        ts = timebase.device_now() if ts is None else ts
        return wire.sign_request(self.key, self.device_id, ts, nonce, body), body

    def sync(self, client, expect=200, **kw):
        """Send one request; returns (response, decoded answer or problem). Checks the answer's signature."""
        from interlock import wire

        headers, body = self.request(**kw)
        r = client.post("/api/v1/sync", content=body, headers=headers)
        assert r.status_code == expect, r.text
        if expect == 200:
            assert wire.verify_response(self.key, self.device_id, headers[wire.H_NONCE], 200,
                                        {k.lower(): v for k, v in r.headers.items()}, r.content)
        return r, r.json()


class KeepingLog(MemoryLog):
    """The simulator's in-memory log that also keeps a copy of every record ever appended."""

    def __init__(self):
        super().__init__()
        self.all = []

    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        """Commit one record and keep a copy."""
        seq = super().append(wall, rtype, a, b, c, photo)
        self.all.append((seq, wall, rtype, a, b, c, photo))
        return seq


class SyncedSim:
    """A simulated handset (real firmware, host_sim) provisioned by the companion, with its sync client
    talking through a MemoryModem (faults and tampering injectable) to `handler` (default: real HTTP)."""

    def __init__(self, office_or_url, handset, handler=None, start_wall=None, seed=3, chunk=32):
        from companion.app.core import timebase
        from host_sim.handset import SimHandset
        from host_sim.http_modem import MemoryModem, http_handler

        url = office_or_url if isinstance(office_or_url, str) else office_or_url.http.base_url
        url = str(url).replace("/api/v1", "").rstrip("/")
        self.device_id = handset["device_id"]
        self.secret = bytes.fromhex(handset["secret"])
        wall = timebase.device_now() if start_wall is None else start_wall
        self.flash = KeepingLog()
        self.logged = self.flash.all  # every committed record, kept because the log frees acknowledged ones
        self.sim = SimHandset(device_id=self.device_id, provision=False, start_wall=wall, seed=seed,
                              log=self.flash)
        self.sim.fsm.provision(self.sim.ticks(), self.device_id, self.secret)
        self.modem = MemoryModem(handler or http_handler(url))
        self.seed = seed
        self.chunk = chunk
        self._client = None
        self._for = None

    @property
    def client(self):
        """The sync client of the current boot (a new boot gets a new client, as on a board)."""
        from sync.client import SyncClient

        if self._for is not self.sim.fsm:
            self._for = self.sim.fsm
            self._client = SyncClient(self.sim.fsm, self.modem, seed=self.seed, chunk=self.chunk)
        return self._client

    @property
    def fsm(self):
        """The running state machine."""
        return self.sim.fsm

    def sync(self):
        """One exchange now; the client's outcome."""
        from host_sim.http_modem import sync_now

        return sync_now(self.client, self.modem, self.sim.ticks())

    def settle(self, limit=200):
        """Sync, letting simulated time pass (through backoff after failures), until a sync succeeded and the
        client has nothing more to send soon."""
        outcomes = []
        for _ in range(limit):
            outcomes.append(self.sync())
            wait = self.client.wait_ms(self.sim.ticks())
            if outcomes[-1] == 0 and wait > 5000:  # sync.client.OK and nothing more to send soon
                return outcomes
            self.sim.run(max(wait, 50))
        raise AssertionError("sync did not settle: " + repr(outcomes[-10:]))

    def violation_lockout(self):
        """Three power cuts longer than the limit: three violations, an immediate violation lockout."""
        for _ in range(3):
            self.sim.power_cut()
            self.sim.run(17 * 60 * 1000)
            self.sim.power_on()
            self.sim.run(1000)
        assert self.fsm.vlock, "no violation lockout"
        return self.fsm.lockout_id

    def records(self, rtype=None):
        """Every record the handset logged this far (from the trace), optionally of one type."""
        return [r for r in self.logged if rtype is None or r[2] == rtype]
