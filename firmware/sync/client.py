"""The handset's sync client: a pure core (`due`, `build`, `handle_response`) and an asyncio task (`run`).

The handset starts every exchange. Each request carries the reported state, the acknowledgements of commands
already handled, and the next chunk of unacknowledged log records. A response counts only if its signature
verifies against the nonce of the request in flight; then the desired state is applied (if newer), each
command is checked (MAC, device, expiry) and handed to the state machine, which applies a sequence number at
most once. Failures back off exponentially with jitter from the firmware's own PRNG, forever: the handset
enforces and logs with no network for as long as it takes, and transport failures are not logged (an
offline month must not fill the log); authentication failures are.

Wiring (one client per boot, beside the runtime loop):
    client = SyncClient(runtime.fsm, SimcomModem(uart, "http://companion.example"))
    asyncio.create_task(client.run())     # watches the state for key-off; client.key_off(now) also works
"""

import binascii

from micropython import const

from fsm import authority, records
from fsm.prng import Prng
from interlock import record, timebase, wire

PERIOD_MS = const(1800000)  # periodic sync: every 30 min (and at key-off)
RETRY_MIN_MS = const(10000)
RETRY_MAX_MS = const(1800000)
SOON_MS = const(200)  # follow-up when more log, acks or commands wait
CHUNK = const(32)  # records per request (the companion accepts up to 64)
CLOCK_TOLERANCE_S = const(60)  # correct the clock from the signed server time beyond this
MAX_ACKS = const(32)
TIMEOUT_MS = const(60000)  # an answer later than this is not used: a held-back answer must not set the clock

# outcomes of handle_response
OK = const(0)
FAILED = const(1)  # no usable answer: transport error or an unauthenticated error status
REFUSED = const(2)  # an answer that failed authentication (logged)
SKEW = const(3)  # the companion says our timestamp is off: retry soon with its time

_KINDS = {
    wire.KIND_CLEAR: authority.CMD_CLEAR,
    wire.KIND_SERVICE: authority.CMD_SERVICE_EXTEND,
    wire.KIND_TIME: authority.CMD_TIME_SET,
    wire.KIND_POLICY: authority.CMD_POLICY,
}
_RC = {authority.APPLIED: wire.RC_APPLIED, authority.STALE: wire.RC_STALE,
       authority.REFUSED: wire.RC_REFUSED}


def _b64(data):
    """Base64 text of data without the trailing newline."""
    out = binascii.b2a_base64(data)
    if out and out[-1] == 10:
        out = out[:-1]
    return out.decode()


class SyncClient:
    """Sync with the companion over transport (drivers.modem.Modem) on behalf of the state machine."""

    def __init__(self, interlock, transport, log=None, period_ms=PERIOD_MS, chunk=CHUNK, seed=0,
                 retry_min_ms=RETRY_MIN_MS, retry_max_ms=RETRY_MAX_MS):
        self.im = interlock
        self.transport = transport
        self.log = log if log is not None else interlock.log
        self.period_ms = period_ms
        self.chunk = chunk
        self.retry_min_ms = retry_min_ms
        self.retry_max_ms = retry_max_ms
        self.prng = Prng(seed or (interlock.device_id * 2654435761 + interlock.wall + 1))
        self.acks = []  # [seq, rc] not yet received by the companion
        self.failures = 0
        self.offset = 0  # s added to our timestamps after an (unauthenticated) clock-skew answer
        self.syncs = 0
        self.last_outcome = -1
        self._at = None  # tick of the next sync; None = now
        self._nonce = ""
        self._sent_ms = 0
        self._sent_acks = 0
        self._chain_seq = 0  # chain hash after record _chain_seq, for logs that keep no encoded bytes
        self._chain = record.GENESIS
        self._state = -1

    # -- scheduling -------------------------------------------------------------------------------

    def due(self, now_ms):
        """True when a sync should start now (never while unprovisioned or with a request in flight)."""
        if self._nonce or self.im.secret is None or not self.im.device_id:
            return False
        return self._at is None or timebase.diff(now_ms, self._at) >= 0

    def key_off(self, now_ms):
        """The ignition went off: sync now (the vehicle is parked; a good moment to upload)."""
        self._at = now_ms

    def wait_ms(self, now_ms):
        """Milliseconds until the next sync is due (0 when due now)."""
        if self._at is None:
            return 0
        d = timebase.diff(self._at, now_ms)
        return d if d > 0 else 0

    def _schedule(self, now_ms, delay):
        self._at = timebase.add(now_ms, delay)

    def failed(self, now_ms):
        """The exchange failed (no answer, or an answer we cannot use): back off with jitter."""
        self._nonce = ""
        self.failures += 1
        shift = self.failures - 1 if self.failures < 17 else 16
        delay = self.retry_min_ms << shift
        if delay > self.retry_max_ms:
            delay = self.retry_max_ms
        half = delay // 2
        self._schedule(now_ms, half + self.prng.next() % (half + 1))
        self.last_outcome = FAILED
        return FAILED

    # -- one exchange -----------------------------------------------------------------------------

    def build(self, now_ms):
        """The next request as (method, path, headers, body); None while unprovisioned."""
        im = self.im
        keys = im.keys()
        if keys is None or not im.device_id:
            return None
        nonce = f"{self.prng.next():08x}{self.prng.next():08x}"
        log = None
        first = self.log.acked() + 1
        n = self.log.next_seq() - first
        if n > self.chunk:
            n = self.chunk
        if n > 0:
            data = self._encoded(first, n)
            if data:
                log = {"first": first, "data": _b64(data)}
        acks = self.acks[:MAX_ACKS]
        doc = {
            "v": 1,
            "device_id": im.device_id,
            "status": im.status(),
            "desired_version": im.desired_version,
            "last_command_seq": im.last_command_seq,
            "acks": acks,
            "log": log,
        }
        body = wire.encode(doc).encode()
        self._nonce = nonce
        self._sent_ms = now_ms
        self._sent_acks = len(acks)
        headers = wire.sign_request(keys[0], im.device_id, im.wall + self.offset, nonce, body)
        return wire.METHOD, wire.PATH, headers, body

    def _encoded(self, first, n):
        """n records from first as the companion verifies them (interlock.record encoding, chained)."""
        raw = getattr(self.log, "raw", None)
        if raw is not None:
            return raw(first, n)  # the flash log keeps the encoded, chained bytes
        if self._chain_seq != first - 1:
            return b""  # chain hash unknown until the companion tells us its head (next response)
        out = bytearray()
        h = self._chain
        for seq in range(first, first + n):
            r = self.log.read(seq)
            if r is None:
                break
            enc = record.encode(h, r[0], r[1], r[2], r[3], r[4], r[5], r[6])
            h = record.chain(h, enc)
            out.extend(enc)
        return bytes(out)

    def handle_response(self, now_ms, status, headers, body):
        """Use the companion's answer to the request in flight; returns OK, FAILED, REFUSED or SKEW."""
        im = self.im
        nonce = self._nonce
        keys = im.keys()
        if not nonce or keys is None:
            return self.failed(now_ms)
        if status != 200:
            if status == 401 and self._skew(body):
                self._nonce = ""
                self._schedule(now_ms, SOON_MS)
                self.last_outcome = SKEW
                return SKEW
            return self.failed(now_ms)
        key = keys[0]
        if timebase.diff(now_ms, self._sent_ms) > TIMEOUT_MS:
            im.record(records.SYNC, authority.SYNC_REFUSED, 0, wire.WHY_LATE)
            self.failed(now_ms)
            self.last_outcome = REFUSED
            return REFUSED
        if not wire.verify_response(key, im.device_id, nonce, status, headers, body):
            im.record(records.SYNC, authority.SYNC_REFUSED, 0, wire.WHY_SIGNATURE)
            self.failed(now_ms)
            self.last_outcome = REFUSED
            return REFUSED
        try:
            doc = wire.decode(body)
            ok = doc["nonce"] == nonce and doc["device_id"] == im.device_id
            t = int(doc["time"])
            log_ack = int(doc["log_ack"])
            cmds = doc["commands"]
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            im.record(records.SYNC, authority.SYNC_REFUSED, 0, wire.WHY_MALFORMED)
            self.failed(now_ms)
            self.last_outcome = REFUSED
            return REFUSED
        # authenticated from here on
        self._nonce = ""
        self.offset = 0
        if t - im.wall > CLOCK_TOLERANCE_S or im.wall - t > CLOCK_TOLERANCE_S:
            im.set_time(now_ms, t, records.SRC_REMOTE)
        del self.acks[:self._sent_acks]
        self._log_ack(log_ack, doc.get("log_hash"))
        desired = doc.get("desired")
        if desired:
            self._desired(now_ms, desired)
        for cmd in cmds:
            self._command(now_ms, key, cmd)
        more = bool(doc.get("more")) or bool(self.acks) or self.log.next_seq() - 1 > self.log.acked()
        im.record(records.SYNC, authority.SYNC_OK, len(cmds), self.log.acked())
        self.failures = 0
        self.syncs += 1
        self._schedule(now_ms, SOON_MS if more else self.period_ms)
        self.last_outcome = OK
        return OK

    def _skew(self, body):
        """Take the companion's time from a clock-skew problem (for timestamps only: it is unsigned)."""
        try:
            p = wire.decode(body)
            if str(p.get("type", "")).endswith("/clock-skew"):
                self.offset = int(p["server_time"]) - self.im.wall
                return True
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        return False

    def _log_ack(self, seq, head):
        """Free the log below the companion's highest contiguous seq; remember its chain head."""
        log = self.log
        if log.acked() < seq < log.next_seq():
            log.acknowledge(seq)
        if isinstance(head, str) and len(head) == 64:
            self._chain_seq = seq
            self._chain = binascii.unhexlify(head)
        elif seq == 0:
            self._chain_seq = 0
            self._chain = record.GENESIS

    def _desired(self, now_ms, d):
        """Apply a newer desired-state document and its policy."""
        im = self.im
        try:
            version = int(d["version"])
            if version > im.desired_version:
                im.set_desired(now_ms, version, int(d["payment_due_day"]), int(d["service_due_day"]),
                               int(d["inspection_due_day"]), int(d["expected_module"]))
            policy = d.get("policy")
            if policy and int(policy.get("version", 0)) > im.policy.version:
                im.apply_policy(now_ms, policy, records.SRC_REMOTE)
        except (KeyError, TypeError, ValueError, AttributeError):
            im.record(records.SYNC, authority.SYNC_REFUSED, 0, wire.WHY_MALFORMED)

    def _command(self, now_ms, key, cmd):
        """Check one command and hand it to the state machine; queue its acknowledgement."""
        im = self.im
        try:
            seq = int(cmd["seq"])
        except (KeyError, TypeError, ValueError):
            seq = 0
        if not isinstance(cmd, dict) or not wire.check_command(key, im.device_id, cmd):
            why = wire.WHY_FORGED
            if isinstance(cmd, dict) and cmd.get("device_id") != im.device_id:
                why = wire.WHY_DEVICE
            im.record(records.SYNC, authority.SYNC_REFUSED, seq, why)
            return
        if int(cmd["expires"]) <= im.wall:
            im.record(records.SYNC, authority.SYNC_REFUSED, seq, wire.WHY_EXPIRED)
            self._ack(seq, wire.RC_EXPIRED)
            return
        rc = im.apply_command(now_ms, seq, _KINDS[cmd["kind"]], cmd["arg"])
        self._ack(seq, _RC.get(rc, wire.RC_REFUSED))

    def _ack(self, seq, rc):
        if len(self.acks) >= MAX_ACKS:
            self.acks.pop(0)
        self.acks.append([seq, rc])

    # -- the task ---------------------------------------------------------------------------------

    def watch(self, now_ms):
        """Notice key-off from the state machine's state (the runtime may also call key_off itself)."""
        state = self.im.state
        if state != self._state:
            if self._state > 1 and state == 1:  # fsm.machine.S_OFF: the ignition went off
                self.key_off(now_ms)
            self._state = state

    async def run(self, ticks_ms=None, max_wait_ms=1000, alive=None):
        """Sync forever: at start, at key-off, periodically; back off while offline. alive() (the supervisor's)
        is called every turn, at least every max_wait_ms plus one exchange."""
        import asyncio

        if ticks_ms is None:
            import time

            ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
        while True:
            if alive is not None:
                alive()
            now = ticks_ms()
            self.watch(now)
            if self.due(now):
                req = self.build(now)
                if req is not None:
                    try:
                        st, hd, bd = await self.transport.request(req[0], req[1], req[2], req[3])
                    except Exception:  # noqa: BLE001 -- any transport failure is just "offline"
                        self.failed(ticks_ms())
                    else:
                        self.handle_response(ticks_ms(), st, hd, bd)
            wait = self.wait_ms(ticks_ms())
            await asyncio.sleep((wait if wait < max_wait_ms else max_wait_ms) / 1000)
