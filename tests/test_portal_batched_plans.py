"""The batch statement's plan at scale (PostgreSQL): on the dashboard's connections (plan_cache_mode=
force_generic_plan) BY_SESSIONS and BY_SESSION run as generic plans. Among a few thousand drivers, each with
two devices, auto-pay, a card, a program and booked visits, the generic plan of a batch reads, per session
asked, one user row and one account row (and that account's own devices, visits and program), never all of
them."""

import asyncio
import json

import pytest

from companion.app.accounts import secrets
from companion.app.portal import reads
from tests.test_portal_dashboard_path import _everything, _plan_nodes

pytest_plugins = ["tests.portal_support"]

CLONES = 3000
BASE = 1_000_000  # the clones' ids: BASE * k + n for the n-th clone (k apart per table where needed)


def _clone(conn, table, where, subst):
    """Copy the rows of `table` matching `where` once per n in 1..CLONES, with columns replaced by `subst` (SQL
    in terms of the template row and n; None: left to its default)."""
    cols = [r[0] for r in conn.exec_driver_sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %(t)s ORDER BY ordinal_position",
        {"t": table})]
    kept = [c for c in cols if subst.get(c, "") is not None]
    values = [subst.get(c) or "t.%s" % c for c in kept]
    conn.exec_driver_sql('INSERT INTO %s (%s) SELECT %s FROM %s t, generate_series(1, %d) n WHERE %s'
                         % (table, ", ".join('"%s"' % c for c in kept), ", ".join(values), table, CLONES, where))


def _history(world, d):
    """The driver's notifications (two unread), and per device a delivered reset (its fee booked with the
    command) and two paid installments: rows the statement's subqueries look up by index."""
    now = "now()"
    with world.app.state.db.engine.begin() as conn:
        for i, read in enumerate((False, True, False)):
            conn.exec_driver_sql("INSERT INTO notifications (user_id, kind, params, link, dedupe, read, created_at)"
                                 " VALUES (%d, 'note', '{}', '', 'n%d', %s, %s)" % (d["user_id"], i, read, now))
        for h in d["handsets"]:
            hid = h["device_id"]
            cid = conn.exec_driver_sql(
                "INSERT INTO commands (handset_id, seq, kind, arg, status, expires, deliveries, created_at)"
                " VALUES (%d, 900, 'reset', '{}', 'acked', 0, 1, %s) RETURNING id" % (hid, now)).scalar()
            conn.exec_driver_sql(
                "INSERT INTO ledger_entries (account_id, side, kind, method, amount_cents, handset_id, command_id,"
                " note, created_at) VALUES (%d, 'debit', 'reset_fee', 'card', 2500, %d, %d, '', %s)"
                % (d["account_id"], hid, cid, now))
            for _ in range(2):
                conn.exec_driver_sql(
                    "INSERT INTO ledger_entries (account_id, side, kind, method, amount_cents, handset_id, note,"
                    " created_at) VALUES (%d, 'credit', 'payment', 'card', 9000, %d, '', %s)"
                    % (d["account_id"], hid, now))


def _seed(world, d, token_hash):
    """CLONES copies of the driver d (account, user, session, devices, handsets, auto-pay, card, program, visits,
    a notification), by SQL; returns the clones' token hashes."""
    acc, uid = d["account_id"], d["user_id"]
    hids = ",".join(str(h["device_id"]) for h in d["handsets"])
    ids = "%d + n" % BASE
    with world.app.state.db.engine.begin() as conn:
        _clone(conn, "accounts", "t.id = %d" % acc, {"id": ids})
        _clone(conn, "users", "t.id = %d" % uid, {"id": ids, "account_id": ids, "email": "n || t.email",
                                                  "customer_id": None})
        _clone(conn, "web_sessions", "t.token_hash = '%s'" % token_hash,
               {"id": None, "user_id": ids, "token_hash": "md5(n::text) || md5(n::text || 'x')"})
        # each handset k of the template as BASE * (k + 2) + n
        conn.exec_driver_sql("CREATE TEMP TABLE hmap AS SELECT id AS old, row_number() OVER (ORDER BY id) + 1 AS k"
                             " FROM handsets WHERE id IN (%s)" % hids)
        hnew = "(SELECT k FROM hmap WHERE old = t.{c}) * %d + n" % BASE
        _clone(conn, "handsets", "t.id IN (%s)" % hids,
               {"id": hnew.format(c="id"), "account_id": ids, "serial": "t.serial || '-' || n"})
        _clone(conn, "account_devices", "t.account_id = %d" % acc,
               {"id": None, "account_id": ids, "handset_id": hnew.format(c="handset_id")})
        _clone(conn, "payment_methods", "t.account_id = %d" % acc, {"id": "%d + n" % (9 * BASE), "account_id": ids})
        _clone(conn, "device_autopay", "t.account_id = %d" % acc,
               {"handset_id": hnew.format(c="handset_id"), "account_id": ids, "method_id": "%d + n" % (9 * BASE)})
        _clone(conn, "programs", "t.account_id = %d" % acc, {"account_id": ids})
        _clone(conn, "appointments", "t.account_id = %d" % acc, {"id": None, "account_id": ids})
        _clone(conn, "notifications", "t.user_id = %d" % uid, {"id": None, "user_id": ids})
        # each command k of the template's handsets as BASE * (k + 5) + n
        conn.exec_driver_sql("CREATE TEMP TABLE cmap AS SELECT id AS old, row_number() OVER (ORDER BY id) + 4 AS k"
                             " FROM commands WHERE handset_id IN (%s)" % hids)
        cnew = "(SELECT k FROM cmap WHERE old = t.{c}) * %d + n" % BASE
        _clone(conn, "commands", "t.handset_id IN (%s)" % hids,
               {"id": cnew.format(c="id"), "handset_id": hnew.format(c="handset_id")})
        _clone(conn, "ledger_entries", "t.account_id = %d" % acc,
               {"id": None, "account_id": ids, "handset_id": hnew.format(c="handset_id"),
                "command_id": "CASE WHEN t.command_id IS NULL THEN NULL ELSE %s END" % cnew.format(c="command_id")})
    with world.app.state.db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        return [h for (h,) in conn.exec_driver_sql(
            "SELECT token_hash FROM web_sessions WHERE user_id > %d ORDER BY user_id" % BASE)]


def _generic_plan(world, statement_many, values):
    """EXPLAIN (ANALYZE, FORMAT JSON) of the statement's generic plan, on a connection opened as the dashboard's
    are (plan_cache_mode=force_generic_plan), the statement prepared as asyncpg prepares it."""
    import asyncpg  # type: ignore[import-untyped]

    sql, order, constants = reads._asyncpg_statement(statement_many)
    args = [{**constants, **values}[name] for name in order]

    async def run():
        conn = await asyncpg.connect(world.app.state.settings.plain_postgres_url,
                                     server_settings={"plan_cache_mode": "force_generic_plan"})
        try:
            await conn.execute("PREPARE dash AS " + sql)
            given = ", ".join([_literal(a) for a in args])
            plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE dash(%s)" % given)
            return json.loads(plan) if isinstance(plan, str) else plan
        finally:
            await conn.close()

    return asyncio.run(run())


def _literal(value):
    """A parameter's value as an SQL literal (EXECUTE takes no parameters of its own)."""
    if isinstance(value, list):
        return "ARRAY[%s]::varchar[]" % ", ".join(_literal(v) for v in value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(int(value))


def _reads(plan):
    """Rows each table's scans read (actual rows and rows filtered away, times loops)."""
    read = {}
    for node in _plan_nodes(plan[0]["Plan"]):
        name = node.get("Relation Name")
        if name:
            rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            read[name] = read.get(name, 0) + rows * node["Actual Loops"]
    return read


def test_a_batch_reads_one_user_and_one_account_per_session_asked(world):
    if world.app.state.portal_reads is None:
        pytest.skip("the batch statement is PostgreSQL's")
    d = world.driver(devices=2)
    _everything(world, d)
    _history(world, d)
    with world.browser(d["email"]) as c:
        token_hash = secrets.token_hash(c.cookies["portal_session"])
    clones = _seed(world, d, token_hash)
    assert len(clones) == CLONES
    now = reads._now_ts()
    for asked in ([token_hash], clones[:8] + ["0" * 64, clones[5]], clones[::47]):
        plan = _generic_plan(world, True, {"hs": asked, "now_ts": now})
        assert "($6)::text" in json.dumps(plan)  # generic: the constants are parameters in the plan
        read = _reads(plan)
        k = len(asked)
        assert read.get("users", 0) <= k and read.get("accounts", 0) <= k, read
        assert read.get("web_sessions", 0) <= k, read
        # per account: 2 devices, 2 auto-pay rows, 1 program; 4 appointments (3 booked) of its own
        assert read.get("account_devices", 0) <= 2 * k and read.get("programs", 0) <= k, read
        assert read.get("appointments", 0) <= 4 * k, read
        # each device's handset, and the account's two for its first (once per device row)
        assert read.get("handsets", 0) <= 6 * k, read
        # its own notifications (3), and per device its own ledger rows (3) and commands (1)
        assert read.get("notifications", 0) <= 2 * 3 * k, read
        assert read.get("ledger_entries", 0) <= 2 * 3 * k and read.get("commands", 0) <= 2 * k, read
    plan = _generic_plan(world, False, {"h": clones[7], "now_ts": now})
    read = _reads(plan)
    assert "($6)::text" in json.dumps(plan)
    assert read.get("users", 0) <= 1 and read.get("accounts", 0) <= 1 and read.get("web_sessions", 0) <= 1, read
