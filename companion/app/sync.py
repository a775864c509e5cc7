"""The sync endpoint's work: authenticate the handset, take its report, acks and log chunk, answer with the
desired state, open commands and the log acknowledgement, all in one transaction, then sign the answer."""

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from companion.app.core import logchain, timebase, wire
from companion.app.core.config import Settings
from companion.app.core.keyring import Keyring
from companion.app.core.problems import Problem
from companion.app.models import Command, Handset, LogRecord, SyncNonce
from companion.app.schemas import SyncRequest

_NONCE = re.compile(r"^[0-9a-f]{16,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_OPEN = ("queued", "delivered")
_RC_STATUS = {wire.RC_APPLIED: "applied", wire.RC_STALE: "refused", wire.RC_REFUSED: "refused",
              wire.RC_EXPIRED: "expired"}
_H = Handset.__table__
_PRUNE_EVERY = 1000


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
        self._insert = sqlite_insert if settings.is_sqlite else pg_insert
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
        q = select(_H).where(_H.c.id == device_id)
        if not st.is_sqlite:
            q = q.with_for_update()
        row = (session.execute(q)).first()
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
        ins = self._insert(SyncNonce).values(handset_id=device_id, nonce=nonce, ts=ts)
        fresh = session.execute(ins.on_conflict_do_nothing().returning(SyncNonce.ts)).first()
        if fresh is None:
            raise Problem(409, "replay", "this request was seen before")
        self._requests += 1
        if self._requests % _PRUNE_EVERY == 0:
            session.execute(delete(SyncNonce).where(SyncNonce.ts < now - st.NONCE_KEEP_S))
        values: dict[str, Any] = {}
        # command acknowledgements
        if req.acks:
            self._acks(session, device_id, req.acks)
        # log upload
        log_ack, log_hash, log_error = row.log_seq, row.log_hash, row.log_error
        if req.log is not None:
            log_ack, log_hash, log_error = self._log(session, device_id, row.log_seq, row.log_hash,
                                                           req.log.first, req.log.data)
            values.update(log_seq=log_ack, log_hash=log_hash, log_error=log_error)
        # open commands
        commands, more = self._commands(session, device_id, req.last_command_seq, now, pk.sync)
        # reported state
        status = req.status
        lockout_id = status.get("lockout_id")
        if not status.get("lockout") or not isinstance(lockout_id, int) or not 0 <= lockout_id < 2**32:
            lockout_id = 0
        values.update(reported=status, reported_version=req.desired_version,
                      last_command_seq=req.last_command_seq, lockout_id=lockout_id,
                      syncs=_H.c.syncs + 1, last_sync_at=dt.datetime.now(dt.UTC))
        session.execute(update(_H).where(_H.c.id == device_id).values(**values))
        desired = None
        if req.desired_version < row.desired_version:
            desired = {"version": row.desired_version, "payment_due_day": row.payment_due_day,
                       "service_due_day": row.service_due_day, "inspection_due_day": row.inspection_due_day,
                       "expected_module": row.expected_module, "policy": row.policy or None}
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

    def _log(self, session: Session, device_id: int, head: int, head_hash: str, first: int,
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
                rows.append({"handset_id": device_id, "seq": seq, "wall": wall, "rtype": rtype, "a": a,
                             "b": b, "c": c, "photo": photo, "raw": new[i * size:(i + 1) * size]})
            session.execute(self._insert(LogRecord).values(rows).on_conflict_do_nothing())
            return last_seq, logchain.hexhash(last_hash), "" if ok else why
        return head, head_hash, "" if ok else why

    def _commands(self, session: Session, device_id: int, applied_seq: int, now: int,
                        key: bytes) -> tuple[list[dict[str, Any]], bool]:
        """The open commands the handset has not applied, oldest first, each with its MAC; marks them
        delivered and marks expired ones expired."""
        rows = (session.execute(
            select(Command.id, Command.seq, Command.kind, Command.arg, Command.expires)
            .where(Command.handset_id == device_id, Command.status.in_(_OPEN))
            .order_by(Command.seq))).all()
        if not rows:
            return [], False
        out: list[dict[str, Any]] = []
        expired: list[int] = []
        send: list[int] = []
        limit = self.settings.MAX_COMMANDS_PER_RESPONSE
        more = False
        for cid, seq, kind, arg, expires in rows:
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
