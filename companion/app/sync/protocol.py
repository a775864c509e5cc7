"""The sync protocol's steps, pure: no database and no clock (the stores pass `now` in).

Authenticate the handset's headers, verify its signature, clock window and body against its keys, plan the
writes of its report, acknowledgements and log chunk, choose the commands to send, and sign the answer. The
stores (dbapi_store.py, asyncpg_store.py) run these steps against the database in one transaction each.
"""

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from companion.app.core import logchain, wire
from companion.app.core.config import Settings
from companion.app.core.keyring import Keyring, PurposeKeys
from companion.app.core.problems import Problem
from companion.app.schemas import SyncRequest

_NONCE = re.compile(r"^[0-9a-f]{16,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_RC_STATUS = {wire.RC_APPLIED: "applied", wire.RC_STALE: "refused", wire.RC_REFUSED: "refused",
              wire.RC_EXPIRED: "expired"}
_PRUNE_EVERY = 1000


class HandsetRow(NamedTuple):
    """The columns of one handset that the exchange reads."""

    id: int
    key_id: str
    secret_nonce: bytes
    secret_ct: bytes
    desired_version: int
    payment_due_day: int
    service_due_day: int
    inspection_due_day: int
    expected_module: int
    policy: Any
    log_seq: int
    log_hash: str
    log_error: str


# the handsets columns a store reads, in HandsetRow's order
COLUMNS = ", ".join(HandsetRow._fields)


class SyncResult:
    """The signed answer: body bytes and signature header."""

    def __init__(self, body: bytes, signature: str):
        self.body = body
        self.signature = signature


class Plan:
    """What one verified request changes: filled by SyncService.plan, written by a store."""

    def __init__(self, device_id: int, head: tuple[int, str, str], req: SyncRequest, keys: PurposeKeys,
                 now: int, nonce: str, ts: int = 0):
        self.device_id = device_id
        self.head = head  # (log seq, log hash, log error) the chunk is checked against
        self.req = req
        self.keys = keys
        self.now = now
        self.nonce = nonce
        self.log_rows: list[tuple[Any, ...]] = []
        self.overlap: tuple[int, bytes] | None = None  # (first seq, records) of a chunk that repeats stored ones
        self.log_ack, self.log_hash, self.log_error = head
        status = req.status
        lockout_id = status.get("lockout_id")
        if not status.get("lockout") or type(lockout_id) is not int or not 0 <= lockout_id < 2**32:  # not bool
            lockout_id = 0
        self.lockout_id = lockout_id
        self.reported = json.dumps(status)
        self.order = report_order(status, ts)
        self.acks = [(seq, _RC_STATUS.get(rc, "refused"), rc) for seq, rc in req.acks]


def report_order(status: Mapping[str, Any], ts: int) -> int:
    """Where a request's report stands among the handset's: (log_next_seq << 32) + device timestamp.

    A store writes a report (reported, reported_version, last_command_seq, lockout_id) only when its order is
    not below the stored reported_order, in the same UPDATE (so of two exchanges at once the newer report wins
    whichever commits last): a signed request held back by a man in the middle and delivered after a newer one
    keeps its log records and gets its answer, but cannot roll the report (and an old lockout id) back.
    The handset's log only grows and it logs every answer it takes and every change of its state, so its
    log_next_seq orders its reports even when its clock was set back in between; the timestamp orders reports
    with the same log_next_seq. Equal orders: the later arrival is written (the same log position in the same
    second: nothing the handset logged lies between them; and clients that leave log_next_seq out, ordered by
    their timestamp alone, may report twice in one second). ts < 2**32 (the header's bound) and n is capped
    below 2**31, so the order fits a signed 64-bit column."""
    n = status.get("log_next_seq")
    if type(n) is not int or n < 0:  # not bool
        n = 0
    return (min(n, 2**31 - 1) << 32) + ts


# the desired-state columns, in the order answer() takes them
DESIRED = ("desired_version", "payment_due_day", "service_due_day", "inspection_due_day", "expected_module",
           "policy")


def _header_int(headers: Mapping[str, str], name: str, lo: int, hi: int) -> int:
    raw = headers.get(name)
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise Problem(401, "unauthenticated", "missing or malformed " + name + " header")
    value = int(raw)
    if not lo <= value <= hi:
        raise Problem(401, "unauthenticated", name + " out of range")
    return value


class SyncService:
    """The protocol: header checks, signature, clock window, body, log chunk, commands, the signed answer."""

    def __init__(self, settings: Settings, keyring: Keyring):
        self.settings = settings
        self.keyring = keyring
        self.requests = 0

    def authenticate_headers(self, headers: Mapping[str, str], body: bytes) -> tuple[int, int, str, str]:
        """(device id, timestamp, nonce, signature) from well-formed headers whose digest matches body."""
        device_id = _header_int(headers, wire.H_DEVICE, 1, 2**31 - 1)
        ts = _header_int(headers, wire.H_TIME, 0, 2**32 - 1)
        nonce = headers.get(wire.H_NONCE, "")
        sig = headers.get(wire.H_SIG, "").lower()
        if not _NONCE.match(nonce):
            raise Problem(401, "unauthenticated", "missing or malformed nonce (16-64 lowercase hex digits)")
        if not _HEX64.match(sig):
            raise Problem(401, "unauthenticated", "missing or malformed signature")
        claimed = headers.get(wire.H_DIGEST)
        if claimed is not None and claimed.lower() != wire.digest(body):
            raise Problem(401, "unauthenticated", "body digest does not match the body")
        return device_id, ts, nonce, sig

    def keys_of(self, row: HandsetRow) -> PurposeKeys:
        """The handset's purpose keys from its row (401 when they cannot be had: never a 500)."""
        try:
            return self.keyring.purpose(row.id, row.key_id, bytes(row.secret_nonce), bytes(row.secret_ct))
        except Exception as exc:
            raise Problem(401, "unauthenticated", "the handset's key is not available") from exc

    def plan(self, found: Any, device_id: int, ts: int, nonce: str, sig: str, body: bytes, now: int) -> Plan:
        """Verify the request against the handset row; the plan of its writes (raises Problem)."""
        if found is None:
            raise Problem(401, "unauthenticated", "unknown device or bad signature")
        row = HandsetRow(*found)
        return self.verify(self.keys_of(row), (row.log_seq, row.log_hash, row.log_error), device_id, ts, nonce,
                           sig, body, now)

    def verify(self, pk: PurposeKeys, head: tuple[int, str, str], device_id: int, ts: int, nonce: str,
               sig: str, body: bytes, now: int) -> Plan:
        """Check signature, clock window and body with the handset's keys (now: device time, from the store);
        the plan against its log head."""
        want = wire.request_mac(pk.sync, wire.METHOD, wire.PATH, device_id, ts, nonce, wire.digest(body))
        if not wire.equal(want, sig):
            raise Problem(401, "unauthenticated", "unknown device or bad signature")
        if abs(ts - now) > self.settings.SYNC_WINDOW_S:
            raise Problem(401, "clock-skew", "request timestamp is outside the accepted window",
                          server_time=now)
        try:
            req = SyncRequest.model_validate_json(body)
        except ValidationError as exc:
            raise Problem(422, "invalid", "the sync body does not match the schema",
                          errors=[{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]}
                                  for e in exc.errors()[:5]]) from exc
        if req.device_id != device_id:
            raise Problem(422, "invalid", "body device_id differs from the header")
        plan = Plan(device_id, head, req, pk, now, nonce, ts)
        if req.log is not None:
            self._chunk(plan, req.log.first, req.log.data)
        return plan

    def _chunk(self, plan: Plan, first: int, data_b64: str) -> None:
        """The new, chain-verified records of a chunk, and the log ack after them."""
        try:
            data = base64.b64decode(data_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Problem(422, "invalid", "log data is not base64") from exc
        size = logchain.SIZE
        if len(data) % size:
            raise Problem(422, "invalid", "log data is not a whole number of records")
        count = len(data) // size
        limit = self.settings.MAX_LOG_CHUNK
        if count > limit:
            raise Problem(413, "too-large", f"log chunk holds more than {limit} records")
        head, head_hash = plan.head[0], plan.head[1]
        if first > head + 1:
            plan.log_error = "gap"  # out of order: the handset resends from our ack
            return
        skip = head + 1 - first
        if skip > 0:
            plan.overlap = (first, data[:min(skip, count) * size])  # the stores compare it with what they hold
        if skip >= count:
            plan.log_error = ""  # a retry of records already stored: nothing to do
            return
        new = data[skip * size:]
        prev = bytes.fromhex(head_hash) if head_hash else logchain.GENESIS
        ok, last_seq, last_hash, good, why = logchain.verify_chunk(new, prev, head + 1)
        plan.log_error = "" if ok else why
        if good:
            did = plan.device_id
            for i in range(good):
                seq, wall, rtype, a, b, c, photo = logchain.decode(new, i)
                plan.log_rows.append((did, seq, wall, rtype, a, b, c, photo, new[i * size:(i + 1) * size]))
            plan.log_ack, plan.log_hash = last_seq, logchain.hexhash(last_hash)

    def tampering(self, plan: Plan, stored: list[Any]) -> tuple[int, int, bytes] | None:
        """(first differing seq, how many differ, their bytes as received) when the chunk's repeat of stored
        records differs from them (the stored ones are kept; log_error says "rewrite"), else None."""
        assert plan.overlap is not None
        first, sent = plan.overlap
        size = logchain.SIZE
        have = {int(seq): bytes(raw) for seq, raw in stored}
        bad = [i for i in range(len(sent) // size) if have.get(first + i) != sent[i * size:(i + 1) * size]]
        if not bad:
            return None
        plan.log_error = "rewrite"
        return first + bad[0], len(bad), b"".join(sent[i * size:(i + 1) * size] for i in bad)

    def commands(self, plan: Plan, rows: list[Any]) -> tuple[list[dict[str, Any]], list[int], list[int], bool]:
        """(commands to send with MACs, ids to mark delivered, ids that expired, more waiting)."""
        out: list[dict[str, Any]] = []
        expired: list[int] = []
        send: list[int] = []
        limit = self.settings.MAX_COMMANDS_PER_RESPONSE
        more = False
        did = plan.device_id
        applied_seq = plan.req.last_command_seq
        for cid, seq, kind, arg, expires in rows:
            if isinstance(arg, str):
                arg = json.loads(arg)  # the drivers hand JSON back as text
            if expires <= plan.now:
                expired.append(cid)
            elif seq > applied_seq:
                if len(out) >= limit:
                    more = True
                    continue
                send.append(cid)
                out.append({"id": cid, "device_id": did, "seq": seq, "kind": kind, "arg": arg,
                            "expires": expires,
                            "mac": wire.command_mac(plan.keys.sync, did, cid, seq, kind, arg, expires)})
        return out, send, expired, more

    def answer(self, plan: Plan, desired_row: Any, commands: list[dict[str, Any]], more: bool) -> SyncResult:
        """The signed answer; desired_row holds the DESIRED columns as they are now."""
        version, pay, service, inspection, module, policy = desired_row
        desired = None
        if plan.req.desired_version < version:
            if isinstance(policy, str):
                policy = json.loads(policy)  # the drivers hand JSON back as text
            desired = {"version": version, "payment_due_day": pay, "service_due_day": service,
                       "inspection_due_day": inspection, "expected_module": module, "policy": policy or None}
        out = {"v": wire.VERSION, "device_id": plan.device_id, "nonce": plan.nonce, "time": plan.now, "desired": desired,
               "commands": commands, "more": more, "log_ack": plan.log_ack, "log_hash": plan.log_hash or "",
               "log_error": plan.log_error}
        payload = wire.encode(out)
        return SyncResult(payload, wire.response_mac(plan.keys.sync, plan.device_id, plan.nonce, 200, payload))

    def prune_due(self) -> bool:
        """True once every so many requests: time to forget nonces older than the window allows."""
        self.requests += 1
        return self.requests % _PRUNE_EVERY == 0

    # -- the blocking store (SQLite; PostgreSQL through psycopg) ----------------------------------
