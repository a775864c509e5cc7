"""The sync endpoint's work: authenticate the handset, take its report, acks and log chunk, answer with the
desired state, open commands and the log acknowledgement, all in one transaction, then sign the answer.

The protocol steps are pure methods of SyncService; two stores run them against the database:
`SyncService.handle` (a blocking DB-API connection: SQLite, or PostgreSQL through psycopg) and `PgFastPath`
(PostgreSQL through an asyncpg pool, in three round trips plus commit, for throughput). Both talk to the
driver directly: SQLAlchemy's statement building costs more than the database work on this path.
"""

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy.orm import Session

from companion.app.core import logchain, timebase, wire
from companion.app.core.config import Settings
from companion.app.core.keyring import Keyring, PurposeKeys
from companion.app.core.problems import Problem
from companion.app.schemas import SyncRequest

_NONCE = re.compile(r"^[0-9a-f]{16,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_RC_STATUS = {wire.RC_APPLIED: "applied", wire.RC_STALE: "refused", wire.RC_REFUSED: "refused",
              wire.RC_EXPIRED: "expired"}
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


_COLUMNS = ", ".join(_Row._fields)


class SyncResult:
    """The signed answer: body bytes and signature header."""

    def __init__(self, body: bytes, signature: str):
        self.body = body
        self.signature = signature


class Plan:
    """What one verified request changes: filled by SyncService.plan, written by a store."""

    def __init__(self, device_id: int, head: tuple[int, str, str], req: SyncRequest, keys: PurposeKeys,
                 now: int, nonce: str):
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
        if not status.get("lockout") or not isinstance(lockout_id, int) or not 0 <= lockout_id < 2**32:
            lockout_id = 0
        self.lockout_id = lockout_id
        self.reported = json.dumps(status)
        self.acks = [(seq, _RC_STATUS.get(rc, "refused"), rc) for seq, rc in req.acks]


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
        self._sql = _Sql(settings.is_sqlite)
        self.requests = 0

    # -- pure steps -------------------------------------------------------------------------------

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

    def keys_of(self, row: _Row) -> PurposeKeys:
        """The handset's purpose keys from its row (401 when they cannot be had: never a 500)."""
        try:
            return self.keyring.purpose(row.id, row.key_id, bytes(row.secret_nonce), bytes(row.secret_ct))
        except Exception as exc:
            raise Problem(401, "unauthenticated", "the handset's key is not available") from exc

    def plan(self, found: Any, device_id: int, ts: int, nonce: str, sig: str, body: bytes) -> Plan:
        """Verify the request against the handset row; the plan of its writes (raises Problem)."""
        if found is None:
            raise Problem(401, "unauthenticated", "unknown device or bad signature")
        row = _Row(*found)
        return self.verify(self.keys_of(row), (row.log_seq, row.log_hash, row.log_error), device_id, ts, nonce,
                           sig, body)

    def verify(self, pk: PurposeKeys, head: tuple[int, str, str], device_id: int, ts: int, nonce: str,
               sig: str, body: bytes) -> Plan:
        """Check signature, clock window and body with the handset's keys; the plan against its log head."""
        want = wire.request_mac(pk.sync, "POST", wire.PATH, device_id, ts, nonce, wire.digest(body))
        if not wire.equal(want, sig):
            raise Problem(401, "unauthenticated", "unknown device or bad signature")
        now = timebase.device_now()
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
        plan = Plan(device_id, head, req, pk, now, nonce)
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
        out = {"v": 1, "device_id": plan.device_id, "nonce": plan.nonce, "time": plan.now, "desired": desired,
               "commands": commands, "more": more, "log_ack": plan.log_ack, "log_hash": plan.log_hash or "",
               "log_error": plan.log_error}
        payload = wire.encode(out)
        return SyncResult(payload, wire.response_mac(plan.keys.sync, plan.device_id, plan.nonce, 200, payload))

    def prune_due(self) -> bool:
        """True once every so many requests: time to forget nonces older than the window allows."""
        self.requests += 1
        return self.requests % _PRUNE_EVERY == 0

    # -- the blocking store (SQLite; PostgreSQL through psycopg) ----------------------------------

    def handle(self, session: Session, headers: Mapping[str, str], body: bytes) -> SyncResult:
        """Process one request on the session's connection (raises Problem; nothing is committed then)."""
        device_id, ts, nonce, sig = self.authenticate_headers(headers, body)
        sql = self._sql
        cur = session.connection().connection.cursor()
        cur.execute(sql.select, (device_id,))
        found = cur.fetchone()
        plan = self.plan(found, device_id, ts, nonce, sig, body)
        # replay: the nonce is new (the first write, so a replay changes nothing)
        cur.execute(sql.nonce, (device_id, nonce, ts))
        if cur.fetchone() is None:
            raise Problem(409, "replay", "this request was seen before")
        if self.prune_due():
            cur.execute(sql.prune, (plan.now - self.settings.NONCE_KEEP_S,))
        stamp = dt.datetime.now(dt.UTC)
        when: Any = stamp.strftime("%Y-%m-%d %H:%M:%S.%f") if self.settings.is_sqlite else stamp
        for seq, status, rc in plan.acks:
            cur.execute(sql.ack, (status, rc, when, device_id, seq))
        if plan.overlap is not None:
            first, sent = plan.overlap
            cur.execute(sql.stored, (device_id, first, first + len(sent) // logchain.SIZE - 1))
            tamper = self.tampering(plan, list(cur.fetchall()))
            if tamper is not None:
                cur.execute(sql.tamper, (device_id, *tamper, when))
        if plan.log_rows:
            cur.executemany(sql.log, plan.log_rows)
        cur.execute(sql.open, (device_id,))
        commands, send, expired, more = self.commands(plan, list(cur.fetchall()))
        for cid in expired:
            cur.execute(sql.expire, (cid,))
        for cid in send:
            cur.execute(sql.deliver, (when, cid))
        req = plan.req
        cur.execute(sql.update, (plan.reported, req.desired_version, req.last_command_seq, plan.lockout_id,
                                 when, plan.log_ack, plan.log_hash, plan.log_error, device_id, plan.head[0]))
        if cur.rowcount != 1:
            # the log head moved since it was read (SQLite: another worker process stored an exchange of this
            # handset in between; nothing of this one is committed): the handset retries
            raise Problem(409, "busy", "another exchange of this handset is in progress; retry")
        session.commit()
        row = _Row(*tuple(found or ()))
        return self.answer(plan, [getattr(row, name) for name in DESIRED], commands, more)


class _Sql:
    """The statements in a driver's parameter style (sqlite3 "?", psycopg "%s", asyncpg "$n")."""

    def __init__(self, sqlite: bool):
        p = "?" if sqlite else "%s"
        self.select = "SELECT " + _COLUMNS + " FROM handsets WHERE id = " + p + ("" if sqlite else " FOR UPDATE")
        self.nonce = ("INSERT INTO sync_nonces (handset_id, nonce, ts) VALUES (" + ", ".join([p] * 3)
                      + ") ON CONFLICT DO NOTHING RETURNING ts")
        self.prune = "DELETE FROM sync_nonces WHERE ts < " + p
        self.ack = ("UPDATE commands SET status = " + p + ", rc = " + p + ", acked_at = " + p
                    + " WHERE handset_id = " + p + " AND seq = " + p + " AND status IN ('queued', 'delivered')")
        self.log = ("INSERT INTO log_records (handset_id, seq, wall, rtype, a, b, c, photo, raw) VALUES ("
                    + ", ".join([p] * 9) + ") ON CONFLICT DO NOTHING")
        self.open = ("SELECT id, seq, kind, arg, expires FROM commands WHERE handset_id = " + p
                     + " AND status IN ('queued', 'delivered') ORDER BY seq")
        self.expire = "UPDATE commands SET status = 'expired' WHERE id = " + p
        self.stored = ("SELECT seq, raw FROM log_records WHERE handset_id = " + p + " AND seq BETWEEN " + p
                       + " AND " + p)
        self.tamper = ("INSERT INTO log_tampering (handset_id, first_seq, records, raw, created_at) VALUES ("
                       + ", ".join([p] * 5) + ")")
        self.deliver = ("UPDATE commands SET status = 'delivered', deliveries = deliveries + 1, delivered_at = "
                        + p + " WHERE id = " + p)
        self.update = ("UPDATE handsets SET reported = " + p + ", reported_version = " + p
                       + ", last_command_seq = " + p + ", lockout_id = " + p + ", syncs = syncs + 1, last_sync_at = "
                       + p + ", log_seq = " + p + ", log_hash = " + p + ", log_error = " + p + " WHERE id = " + p
                       + " AND log_seq = " + p)


# asyncpg: the handset row and the nonce in one round trip; the log rows, the report and the open commands
# in a second; then commit
_PG_FIRST = (
    "WITH n AS (INSERT INTO sync_nonces (handset_id, nonce, ts) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING "
    "RETURNING 1) SELECT " + _COLUMNS + ", (SELECT count(*) FROM n) AS fresh FROM handsets WHERE id = $1 "
    "FOR UPDATE")
_PG_SECOND = (
    "WITH l AS (INSERT INTO log_records (handset_id, seq, wall, rtype, a, b, c, photo, raw) "
    "SELECT $1, s, w, t, a, b, c, p, r FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::bigint[], "
    "$6::bigint[], $7::bigint[], $8::bigint[], $9::bytea[]) AS x(s, w, t, a, b, c, p, r) "
    "ON CONFLICT DO NOTHING), "
    "u AS (UPDATE handsets SET reported = $10::json, reported_version = $11, last_command_seq = $12, "
    "lockout_id = $13, syncs = syncs + 1, last_sync_at = $14, log_seq = $15, log_hash = $16, log_error = $17 "
    "WHERE id = $1) "
    "SELECT id, seq, kind, arg, expires FROM commands WHERE handset_id = $1 AND status IN ('queued', 'delivered') "
    "ORDER BY seq")
# the common case (no acknowledgements to record), in ONE round trip without an explicit transaction, when
# this process already knows the handset's keys (its secret never changes) and its log head: take the nonce
# only if the log head is still the one the chunk was verified against; then store the report (returning the
# desired state as it is now) and the records; answer with the open commands
_PG_ROW = "SELECT " + _COLUMNS + " FROM handsets WHERE id = $1"
_PG_ONE = (
    "WITH h AS (SELECT 1 FROM handsets WHERE id = $1 AND log_seq = $20), "
    "n AS (INSERT INTO sync_nonces (handset_id, nonce, ts) SELECT $1, $18, $19 WHERE EXISTS (SELECT 1 FROM h) "
    "ON CONFLICT DO NOTHING RETURNING 1), "
    "u AS (UPDATE handsets SET reported = $10::json, reported_version = $11, last_command_seq = $12, "
    "lockout_id = $13, syncs = syncs + 1, last_sync_at = $14, log_seq = $15, log_hash = $16, log_error = $17 "
    "WHERE id = $1 AND log_seq = $20 AND EXISTS (SELECT 1 FROM n) RETURNING " + ", ".join(DESIRED) + "), "
    "l AS (INSERT INTO log_records (handset_id, seq, wall, rtype, a, b, c, photo, raw) "
    "SELECT $1, s, w, t, a, b, c, p, r FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::bigint[], "
    "$6::bigint[], $7::bigint[], $8::bigint[], $9::bytea[]) AS x(s, w, t, a, b, c, p, r) "
    "WHERE EXISTS (SELECT 1 FROM u) ON CONFLICT DO NOTHING) "
    "SELECT (SELECT count(*) FROM h) AS head_ok, (SELECT count(*) FROM n) AS fresh, u.*, "
    "c.id, c.seq, c.kind, c.arg, c.expires FROM (SELECT 1) AS one LEFT JOIN u ON true "
    "LEFT JOIN commands c ON c.handset_id = $1 AND c.status IN ('queued', 'delivered') ORDER BY c.seq")
_PG_ACK = ("UPDATE commands SET status = $1, rc = $2, acked_at = $3 WHERE handset_id = $4 AND seq = $5 "
           "AND status IN ('queued', 'delivered')")
_PG_EXPIRE = "UPDATE commands SET status = 'expired' WHERE id = ANY($1::int[])"
_PG_DELIVER = ("UPDATE commands SET status = 'delivered', deliveries = deliveries + 1, delivered_at = $1 "
               "WHERE id = ANY($2::int[])")


class PgFastPath:
    """The sync exchange on PostgreSQL through an asyncpg pool (no thread hop, prepared statements)."""

    def __init__(self, service: SyncService, dsn: str, size: int):
        self.service = service
        self.dsn = dsn
        self.size = size
        self.idle: asyncio.Queue[Any] | None = None
        self.opened = 0
        self.closing = False
        self.keys: dict[int, PurposeKeys] = {}  # a handset's secret never changes (rotation re-encrypts it)
        self.heads: dict[int, tuple[int, str, str]] = {}  # last log head this process wrote or read

    async def start(self) -> None:
        """Get ready to connect (connections open on first use, up to `size`)."""
        self.idle = asyncio.Queue()
        self.opened = 0

    async def close(self) -> None:
        """Close the idle connections (busy ones close when their request ends)."""
        self.closing = True
        while self.idle is not None and not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                await conn.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection of this path's own small pool (a queue: cheaper than asyncpg's pool per request);
        a connection that saw an unexpected error is dropped rather than reused."""
        import asyncpg  # type: ignore[import-untyped]

        assert self.idle is not None
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            conn = None  # a free slot: connect below
        else:
            conn = await self.idle.get()  # a connection, or None for a slot whose connection was dropped
        if conn is None:
            try:
                conn = await asyncpg.connect(self.dsn)
            except BaseException:
                self.idle.put_nowait(None)  # keep the slot for the next request
                raise
        healthy = False
        try:
            yield conn
            healthy = True
        except Problem:
            healthy = True  # a refused request: the transaction (if any) was rolled back cleanly
            raise
        finally:
            if healthy and not conn.is_closed() and not self.closing:
                self.idle.put_nowait(conn)
            else:
                conn.terminate()
                self.idle.put_nowait(None)

    async def handle(self, headers: Mapping[str, str], body: bytes) -> SyncResult:
        """Process one request (raises Problem; nothing is committed then)."""
        svc = self.service
        device_id, ts, nonce, sig = svc.authenticate_headers(headers, body)
        async with self.connection() as conn:
            pk = self.keys.get(device_id)
            head = self.heads.get(device_id)
            if pk is None or head is None:
                found = await conn.fetchrow(_PG_ROW, device_id)
                if found is None:
                    raise Problem(401, "unauthenticated", "unknown device or bad signature")
                row = _Row(*found)
                pk = svc.keys_of(row)
                head = (row.log_seq, row.log_hash, row.log_error)
            plan = svc.verify(pk, head, device_id, ts, nonce, sig, body)
            self.keys[device_id] = pk  # only after the request proved the device holds the key
            if plan.acks or plan.overlap is not None:
                return await self._transaction(conn, device_id, ts, nonce, sig, body)
            cols = self._columns(plan)
            req = plan.req
            stamp = dt.datetime.now(dt.UTC)
            rows = await conn.fetch(_PG_ONE, device_id, *cols, plan.reported, req.desired_version,
                                    req.last_command_seq, plan.lockout_id, stamp, plan.log_ack, plan.log_hash,
                                    plan.log_error, nonce, ts, head[0])
            first = rows[0]
            if not first["head_ok"]:
                # another process (or exchange) moved the log head: take the locked path with a fresh row
                self.heads.pop(device_id, None)
                return await self._transaction(conn, device_id, ts, nonce, sig, body)
            if not first["fresh"]:
                raise Problem(409, "replay", "this request was seen before")
            if first["desired_version"] is None:
                self.heads.pop(device_id, None)
                raise Problem(409, "busy", "another exchange of this handset is in progress; retry")
            self.heads[device_id] = (plan.log_ack, plan.log_hash, plan.log_error)
            open_rows = [tuple(r)[8:] for r in rows if r["id"] is not None]
            commands, send, expired, more = svc.commands(plan, open_rows)
            if expired:
                await conn.execute(_PG_EXPIRE, expired)
            if send:
                await conn.execute(_PG_DELIVER, stamp, send)
            if svc.prune_due():
                await conn.execute("DELETE FROM sync_nonces WHERE ts < $1", plan.now - svc.settings.NONCE_KEEP_S)
        return svc.answer(plan, [first[name] for name in DESIRED], commands, more)

    @staticmethod
    def _columns(plan: Plan) -> list[list[Any]]:
        cols: list[list[Any]] = [[], [], [], [], [], [], [], []]
        for r in plan.log_rows:
            for i in range(8):
                cols[i].append(r[i + 1])
        return cols

    async def _transaction(self, conn: Any, device_id: int, ts: int, nonce: str, sig: str,
                           body: bytes) -> SyncResult:
        """The exchange with acknowledgements: one transaction with the handset row locked."""
        svc = self.service
        async with conn.transaction():
            found = await conn.fetchrow(_PG_FIRST, device_id, nonce, ts)
            plan = svc.plan(tuple(found)[:-1] if found is not None else None, device_id, ts, nonce, sig, body)
            if not found["fresh"]:
                raise Problem(409, "replay", "this request was seen before")
            stamp = dt.datetime.now(dt.UTC)
            for seq, status, rc in plan.acks:
                await conn.execute(_PG_ACK, status, rc, stamp, device_id, seq)
            if plan.overlap is not None:
                first, sent = plan.overlap
                stored = await conn.fetch("SELECT seq, raw FROM log_records WHERE handset_id = $1 AND seq "
                                          "BETWEEN $2 AND $3", device_id, first, first + len(sent) // logchain.SIZE - 1)
                tamper = svc.tampering(plan, [tuple(r) for r in stored])
                if tamper is not None:
                    await conn.execute("INSERT INTO log_tampering (handset_id, first_seq, records, raw, created_at) "
                                       "VALUES ($1, $2, $3, $4, $5)", device_id, *tamper, stamp)
            cols = self._columns(plan)
            req = plan.req
            rows = await conn.fetch(_PG_SECOND, device_id, *cols, plan.reported, req.desired_version,
                                    req.last_command_seq, plan.lockout_id, stamp, plan.log_ack, plan.log_hash,
                                    plan.log_error)
            commands, send, expired, more = svc.commands(plan, [tuple(r) for r in rows])
            if expired:
                await conn.execute(_PG_EXPIRE, expired)
            if send:
                await conn.execute(_PG_DELIVER, stamp, send)
        self.heads[device_id] = (plan.log_ack, plan.log_hash, plan.log_error)
        row = _Row(*tuple(found)[:-1])
        return svc.answer(plan, [getattr(row, name) for name in DESIRED], commands, more)
