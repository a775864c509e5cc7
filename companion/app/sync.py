"""The sync endpoint's work: authenticate the handset, take its report, acks and log chunk, answer with the
desired state, open commands and the log acknowledgement, all in one transaction, then sign the answer."""

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from companion.app.core import logchain, timebase, wire
from companion.app.core.config import Settings
from companion.app.core.keyring import Keyring
from companion.app.core.problems import Problem
from companion.app.models import Command, Handset, SyncNonce
from companion.app.schemas import SyncRequest

_NONCE = re.compile(r"^[0-9a-f]{16,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_OPEN = ("queued", "delivered")
_RC_STATUS = {wire.RC_APPLIED: "applied", wire.RC_STALE: "refused", wire.RC_REFUSED: "refused",
              wire.RC_EXPIRED: "expired"}
_H = Handset.__table__
_PRUNE_EVERY = 1000


class _Row(NamedTuple):
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


class _Sql:
    """The hot path's statements in the driver's parameter style (sqlite3 "?", psycopg "%s")."""

    def __init__(self, sqlite: bool):
        p = "?" if sqlite else "%s"
        self.select = ("SELECT " + ", ".join(_Row._fields) + " FROM handsets WHERE id = " + p
                       + ("" if sqlite else " FOR UPDATE"))
        self.nonce = ("INSERT INTO sync_nonces (handset_id, nonce, ts) VALUES (" + ", ".join([p] * 3)
                      + ") ON CONFLICT DO NOTHING RETURNING ts")
        self.log = ("INSERT INTO log_records (handset_id, seq, wall, rtype, a, b, c, photo, raw) VALUES ("
                    + ", ".join([p] * 9) + ") ON CONFLICT DO NOTHING")
        self.open = ("SELECT id, seq, kind, arg, expires FROM commands WHERE handset_id = " + p
                     + " AND status IN ('queued', 'delivered') ORDER BY seq")
        self.update = ("UPDATE handsets SET reported = " + p + ", reported_version = " + p
                       + ", last_command_seq = " + p + ", lockout_id = " + p + ", syncs = syncs + 1, last_sync_at = "
                       + p + ", log_seq = " + p + ", log_hash = " + p + ", log_error = " + p + " WHERE id = " + p)


class SyncResult:
    """The signed answer: status, body bytes and signature header."""

    def __init__(self, body: bytes, signature: str):
        self.body = body
        self.signature = signature


def _header_int(headers: Mapping[str, str], name: str, lo: int, hi: int) -> int:
    raw = headers.get(name)
    if raw is None or not raw.isdigit() or len(raw) > 12:
        raise Problem(401, "unauthenticated", "missing or malformed " + name + " header")
    value = int(raw)
    if not lo <= value <= hi:
        raise Problem(401, "unauthenticated", name + " out of range")
    return value


class SyncService:
    """Handles one sync request at a time per handset (the handset row is locked for the transaction)."""

    def __init__(self, settings: Settings, keyring: Keyring):
        self.settings = settings
        self.keyring = keyring
        self._sql = _Sql(settings.is_sqlite)
        self._requests = 0

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
        body_digest = wire.digest(body)
        claimed = headers.get(wire.H_DIGEST)
        if claimed is not None and claimed.lower() != body_digest:
            raise Problem(401, "unauthenticated", "body digest does not match the body")
        return device_id, ts, nonce, sig

    def handle(self, session: Session, headers: Mapping[str, str], body: bytes) -> SyncResult:
        """Process one request (raises Problem on anything wrong; nothing is committed then)."""
        st = self.settings
        device_id, ts, nonce, sig = self.authenticate_headers(headers, body)
        sql = self._sql
        # the hot path talks to the driver directly (SQLAlchemy's statement building costs more than the
        # database work here); the rare paths below use the ORM on the same connection and transaction
        cur = session.connection().connection.cursor()
        cur.execute(sql.select, (device_id,))
        found = cur.fetchone()
        row = _Row(*found) if found is not None else None
        if row is None:
            raise Problem(401, "unauthenticated", "unknown device or bad signature")
        try:
            pk = self.keyring.purpose(row.id, row.key_id, row.secret_nonce, row.secret_ct)
        except Exception as exc:  # a row we cannot decrypt: the handset cannot be served, but no 500
            raise Problem(401, "unauthenticated", "the handset's key is not available") from exc
        want = wire.request_mac(pk.sync, "POST", wire.PATH, device_id, ts, nonce, wire.digest(body))
        if not wire.equal(want, sig):
            raise Problem(401, "unauthenticated", "unknown device or bad signature")
        now = timebase.device_now()
        if abs(ts - now) > st.SYNC_WINDOW_S:
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
        # replay: the nonce is new (checked before any other write so a replay changes nothing)
        cur.execute(sql.nonce, (device_id, nonce, ts))
        fresh = cur.fetchone()
        if fresh is None:
            raise Problem(409, "replay", "this request was seen before")
        self._requests += 1
        if self._requests % _PRUNE_EVERY == 0:
            session.execute(delete(SyncNonce).where(SyncNonce.ts < now - st.NONCE_KEEP_S))
        # command acknowledgements
        if req.acks:
            self._acks(session, device_id, req.acks)
        # log upload
        log_ack, log_hash, log_error = row.log_seq, row.log_hash, row.log_error
        if req.log is not None:
            log_ack, log_hash, log_error = self._log(cur, device_id, row.log_seq, row.log_hash,
                                                     req.log.first, req.log.data)
        # open commands
        cur.execute(sql.open, (device_id,))
        open_rows = cur.fetchall()
        commands, more = [], False
        if open_rows:
            commands, more = self._commands(session, device_id, open_rows, req.last_command_seq, now,
                                            pk.sync)
        # reported state
        status = req.status
        lockout_id = status.get("lockout_id")
        if not status.get("lockout") or not isinstance(lockout_id, int) or not 0 <= lockout_id < 2**32:
            lockout_id = 0
        stamp = dt.datetime.now(dt.UTC)
        cur.execute(sql.update, (json.dumps(status), req.desired_version, req.last_command_seq, lockout_id,
                                 stamp.strftime("%Y-%m-%d %H:%M:%S.%f") if st.is_sqlite else stamp,
                                 log_ack, log_hash, log_error, device_id))
        desired = None
        if req.desired_version < row.desired_version:
            policy = json.loads(row.policy) if isinstance(row.policy, str) else row.policy
            desired = {"version": row.desired_version, "payment_due_day": row.payment_due_day,
                       "service_due_day": row.service_due_day, "inspection_due_day": row.inspection_due_day,
                       "expected_module": row.expected_module, "policy": policy or None}
        session.commit()
        out = {"v": 1, "device_id": device_id, "nonce": nonce, "time": now, "desired": desired,
               "commands": commands, "more": more, "log_ack": log_ack, "log_hash": log_hash or "",
               "log_error": log_error}
        payload = wire.encode(out)
        return SyncResult(payload, wire.response_mac(pk.sync, device_id, nonce, 200, payload))

    def _acks(self, session: Session, device_id: int, acks: list[tuple[int, int]]) -> None:
        now = dt.datetime.now(dt.UTC)
        for seq, rc in acks:
            status = _RC_STATUS.get(rc, "refused")
            session.execute(
                update(Command).where(Command.handset_id == device_id, Command.seq == seq,
                                      Command.status.in_(_OPEN))
                .values(status=status, rc=rc, acked_at=now))

    def _log(self, cur: Any, device_id: int, head: int, head_hash: str, first: int,
                   data_b64: str) -> tuple[int, str, str]:
        """Store the new, chain-verified records of a chunk; (highest contiguous seq, its hash, error)."""
        try:
            data = base64.b64decode(data_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Problem(422, "invalid", "log data is not base64") from exc
        size = logchain.SIZE
        if len(data) % size:
            raise Problem(422, "invalid", "log data is not a whole number of records")
        count = len(data) // size
        if count > self.settings.MAX_LOG_CHUNK:
            raise Problem(413, "too-large", f"log chunk holds more than {self.settings.MAX_LOG_CHUNK} records")
        if first > head + 1:
            return head, head_hash, "gap"  # out of order: the handset resends from our ack
        skip = head + 1 - first
        if skip >= count:
            return head, head_hash, ""  # a retry of records already stored: nothing to do
        new = data[skip * size:]
        prev = bytes.fromhex(head_hash) if head_hash else logchain.GENESIS
        ok, last_seq, last_hash, good, why = logchain.verify_chunk(new, prev, head + 1)
        if good:
            rows = []
            for i in range(good):
                seq, wall, rtype, a, b, c, photo = logchain.decode(new, i)
                rows.append((device_id, seq, wall, rtype, a, b, c, photo, new[i * size:(i + 1) * size]))
            cur.executemany(self._sql.log, rows)
            return last_seq, logchain.hexhash(last_hash), "" if ok else why
        return head, head_hash, "" if ok else why

    def _commands(self, session: Session, device_id: int, rows: list[Any], applied_seq: int, now: int,
                  key: bytes) -> tuple[list[dict[str, Any]], bool]:
        """The open commands (rows) the handset has not applied, oldest first, each with its MAC; marks them
        delivered and marks expired ones expired."""
        out: list[dict[str, Any]] = []
        expired: list[int] = []
        send: list[int] = []
        limit = self.settings.MAX_COMMANDS_PER_RESPONSE
        more = False
        for cid, seq, kind, arg, expires in rows:
            if isinstance(arg, str):
                arg = json.loads(arg)  # SQLite hands JSON back as text
            if expires <= now:
                expired.append(cid)
            elif seq > applied_seq:
                if len(out) >= limit:
                    more = True
                    continue
                send.append(cid)
                out.append({"id": cid, "device_id": device_id, "seq": seq, "kind": kind, "arg": arg,
                            "expires": expires,
                            "mac": wire.command_mac(key, device_id, cid, seq, kind, arg, expires)})
        stamp = dt.datetime.now(dt.UTC)
        if expired:
            session.execute(update(Command).where(Command.id.in_(expired)).values(status="expired"))
        if send:
            session.execute(update(Command).where(Command.id.in_(send))
                                  .values(status="delivered", deliveries=Command.deliveries + 1,
                                          delivered_at=stamp))
        return out, more
