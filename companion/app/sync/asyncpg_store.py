"""The fast store of the sync exchange on PostgreSQL: an asyncpg pool of its own (no thread hop, prepared
statements), the protocol's steps (protocol.py) in three round trips plus commit, or one in the common case."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from companion.app.core import logchain, timebase
from companion.app.core.keyring import PurposeKeys
from companion.app.core.pgpool import Pool
from companion.app.core.problems import Problem
from companion.app.sync.protocol import COLUMNS, DESIRED, HandsetRow, Plan, SyncResult, SyncService


def _report(order: str) -> str:
    """The SET of the report ($10-$13) when the request's order (parameter `order`) is not below the stored one
    (protocol.report_order): a request held back and delivered after a newer one cannot roll it back. Decided
    in the UPDATE, on the row as it is when locked, so of two exchanges at once the newer report wins."""
    newer = "CASE WHEN reported_order <= " + order + " THEN "
    return (f"reported = {newer}$10::json ELSE reported END, reported_version = {newer}$11 ELSE reported_version "
            f"END, last_command_seq = {newer}$12 ELSE last_command_seq END, lockout_id = {newer}$13 ELSE lockout_id "
            f"END, reported_order = GREATEST(reported_order, {order})")


# asyncpg: the handset row and the nonce in one round trip; the log rows, the report and the open commands
# in a second; then commit
_PG_FIRST = (
    "WITH n AS (INSERT INTO sync_nonces (handset_id, nonce, ts) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING "
    "RETURNING 1) SELECT " + COLUMNS + ", (SELECT count(*) FROM n) AS fresh FROM handsets WHERE id = $1 "
    "FOR UPDATE")
_PG_SECOND = (
    "WITH l AS (INSERT INTO log_records (handset_id, seq, wall, rtype, a, b, c, photo, raw) "
    "SELECT $1, s, w, t, a, b, c, p, r FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::bigint[], "
    "$6::bigint[], $7::bigint[], $8::bigint[], $9::bytea[]) AS x(s, w, t, a, b, c, p, r) "
    "ON CONFLICT DO NOTHING), "
    "u AS (UPDATE handsets SET " + _report("$18") + ", syncs = syncs + 1, last_sync_at = $14, log_seq = $15, "
    "log_hash = $16, log_error = $17 "
    "WHERE id = $1) "
    "SELECT id, seq, kind, arg, expires FROM commands WHERE handset_id = $1 AND status IN ('queued', 'delivered') "
    "ORDER BY seq")
# the common case (no acknowledgements to record), in ONE round trip without an explicit transaction, when
# this process already knows the handset's keys (its secret never changes) and its log head: take the nonce
# only if the log head is still the one the chunk was verified against; then store the report (returning the
# desired state as it is now) and the records; answer with the open commands
_PG_ROW = "SELECT " + COLUMNS + " FROM handsets WHERE id = $1"
_PG_ONE = (
    "WITH h AS (SELECT 1 FROM handsets WHERE id = $1 AND log_seq = $20), "
    "n AS (INSERT INTO sync_nonces (handset_id, nonce, ts) SELECT $1, $18, $19 WHERE EXISTS (SELECT 1 FROM h) "
    "ON CONFLICT DO NOTHING RETURNING 1), "
    "u AS (UPDATE handsets SET " + _report("$21") + ", syncs = syncs + 1, last_sync_at = $14, log_seq = $15, "
    "log_hash = $16, log_error = $17 "
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
_PG_STORED = "SELECT seq, raw FROM log_records WHERE handset_id = $1 AND seq BETWEEN $2 AND $3"
_PG_TAMPER = ("INSERT INTO log_tampering (handset_id, first_seq, records, raw, created_at) "
              "VALUES ($1, $2, $3, $4, $5)")
_PG_PRUNE = "DELETE FROM sync_nonces WHERE ts < $1"

# every statement of this store by name (for the schema test)
STATEMENTS = {"first": _PG_FIRST, "second": _PG_SECOND, "row": _PG_ROW, "one": _PG_ONE, "ack": _PG_ACK,
              "expire": _PG_EXPIRE, "deliver": _PG_DELIVER, "stored": _PG_STORED, "tamper": _PG_TAMPER,
              "prune": _PG_PRUNE}


class AsyncpgStore(Pool):
    """The sync exchange on PostgreSQL through an asyncpg pool of its own (no thread hop, prepared statements)."""

    def __init__(self, service: SyncService, dsn: str, size: int):
        super().__init__(dsn, size)
        self.service = service
        self.keys: dict[int, PurposeKeys] = {}  # a handset's secret never changes (rotation re-encrypts it)
        self.heads: dict[int, tuple[int, str, str]] = {}  # last log head this process wrote or read

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
                row = HandsetRow(*found)
                pk = svc.keys_of(row)
                head = (row.log_seq, row.log_hash, row.log_error)
            plan = svc.verify(pk, head, device_id, ts, nonce, sig, body, timebase.device_now())
            self.keys[device_id] = pk  # only after the request proved the device holds the key
            if plan.acks or plan.overlap is not None:
                return await self._transaction(conn, device_id, ts, nonce, sig, body)
            cols = self._columns(plan)
            req = plan.req
            stamp = dt.datetime.now(dt.UTC)
            rows = await conn.fetch(_PG_ONE, device_id, *cols, plan.reported, req.desired_version,
                                    req.last_command_seq, plan.lockout_id, stamp, plan.log_ack, plan.log_hash,
                                    plan.log_error, nonce, ts, head[0], plan.order)
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
                await conn.execute(_PG_PRUNE, plan.now - svc.settings.NONCE_KEEP_S)
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
            plan = svc.plan(tuple(found)[:-1] if found is not None else None, device_id, ts, nonce, sig, body,
                            timebase.device_now())
            if not found["fresh"]:
                raise Problem(409, "replay", "this request was seen before")
            stamp = dt.datetime.now(dt.UTC)
            for seq, status, rc in plan.acks:
                await conn.execute(_PG_ACK, status, rc, stamp, device_id, seq)
            if plan.overlap is not None:
                first, sent = plan.overlap
                stored = await conn.fetch(_PG_STORED, device_id, first, first + len(sent) // logchain.SIZE - 1)
                tamper = svc.tampering(plan, [tuple(r) for r in stored])
                if tamper is not None:
                    await conn.execute(_PG_TAMPER, device_id, *tamper, stamp)
            cols = self._columns(plan)
            req = plan.req
            rows = await conn.fetch(_PG_SECOND, device_id, *cols, plan.reported, req.desired_version,
                                    req.last_command_seq, plan.lockout_id, stamp, plan.log_ack, plan.log_hash,
                                    plan.log_error, plan.order)
            commands, send, expired, more = svc.commands(plan, [tuple(r) for r in rows])
            if expired:
                await conn.execute(_PG_EXPIRE, expired)
            if send:
                await conn.execute(_PG_DELIVER, stamp, send)
        self.heads[device_id] = (plan.log_ack, plan.log_hash, plan.log_error)
        row = HandsetRow(*tuple(found)[:-1])
        return svc.answer(plan, [getattr(row, name) for name in DESIRED], commands, more)

