"""The blocking store of the sync exchange: one DB-API connection (SQLite, or PostgreSQL through psycopg), the
protocol's steps (protocol.py) and their writes in one transaction. It talks to the driver directly:
SQLAlchemy's statement building costs more than the database work on this path."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from companion.app.core import logchain, timebase
from companion.app.core.problems import Problem
from companion.app.sync.protocol import COLUMNS, DESIRED, HandsetRow, SyncResult, SyncService


class DbApiStore:
    """The sync exchange on the session's own DB-API connection."""

    def __init__(self, service: SyncService):
        self.service = service
        self.settings = service.settings
        self._sql = _Sql(service.settings.is_sqlite)


    def handle(self, session: Session, headers: Mapping[str, str], body: bytes) -> SyncResult:
        """Process one request on the session's connection (raises Problem; nothing is committed then)."""
        svc = self.service
        device_id, ts, nonce, sig = svc.authenticate_headers(headers, body)
        sql = self._sql
        cur = session.connection().connection.cursor()
        cur.execute(sql.select, (device_id,))
        found = cur.fetchone()
        plan = svc.plan(found, device_id, ts, nonce, sig, body, timebase.device_now())
        # replay: the nonce is new (the first write, so a replay changes nothing)
        cur.execute(sql.nonce, (device_id, nonce, ts))
        if cur.fetchone() is None:
            raise Problem(409, "replay", "this request was seen before")
        if svc.prune_due():
            cur.execute(sql.prune, (plan.now - self.settings.NONCE_KEEP_S,))
        stamp = dt.datetime.now(dt.UTC)
        when: Any = stamp.strftime("%Y-%m-%d %H:%M:%S.%f") if self.settings.is_sqlite else stamp
        for seq, status, rc in plan.acks:
            cur.execute(sql.ack, (status, rc, when, device_id, seq))
        if plan.overlap is not None:
            first, sent = plan.overlap
            cur.execute(sql.stored, (device_id, first, first + len(sent) // logchain.SIZE - 1))
            tamper = svc.tampering(plan, list(cur.fetchall()))
            if tamper is not None:
                cur.execute(sql.tamper, (device_id, *tamper, when))
        if plan.log_rows:
            cur.executemany(sql.log, plan.log_rows)
        cur.execute(sql.open, (device_id,))
        commands, send, expired, more = svc.commands(plan, list(cur.fetchall()))
        for cid in expired:
            cur.execute(sql.expire, (cid,))
        for cid in send:
            cur.execute(sql.deliver, (when, cid))
        req = plan.req
        o = plan.order  # the report is written only when newer than the stored one (protocol.report_order)
        cur.execute(sql.update, (o, plan.reported, o, req.desired_version, o, req.last_command_seq, o,
                                 plan.lockout_id, o, when, plan.log_ack, plan.log_hash, plan.log_error, device_id,
                                 plan.head[0]))
        if cur.rowcount != 1:
            # the log head moved since it was read (SQLite: another worker process stored an exchange of this
            # handset in between; nothing of this one is committed): the handset retries
            raise Problem(409, "busy", "another exchange of this handset is in progress; retry")
        session.commit()
        row = HandsetRow(*tuple(found or ()))
        return svc.answer(plan, [getattr(row, name) for name in DESIRED], commands, more)



class _Sql:
    """The statements in a driver's parameter style (sqlite3 "?", psycopg "%s", asyncpg "$n")."""

    def __init__(self, sqlite: bool):
        p = "?" if sqlite else "%s"
        self.select = "SELECT " + COLUMNS + " FROM handsets WHERE id = " + p + ("" if sqlite else " FOR UPDATE")
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
        newer = "CASE WHEN reported_order <= " + p + " THEN " + p + " ELSE "
        self.update = ("UPDATE handsets SET reported = " + newer + "reported END, reported_version = " + newer
                       + "reported_version END, last_command_seq = " + newer + "last_command_seq END, lockout_id = "
                       + newer + "lockout_id END, reported_order = " + ("MAX" if sqlite else "GREATEST")
                       + "(reported_order, " + p + "), syncs = syncs + 1, last_sync_at = " + p + ", log_seq = " + p
                       + ", log_hash = " + p + ", log_error = " + p + " WHERE id = " + p + " AND log_seq = " + p)



def statements(sqlite: bool) -> dict[str, str]:
    """Every statement of this store by name, in the driver's parameter style (for the schema test)."""
    return dict(vars(_Sql(sqlite)))
