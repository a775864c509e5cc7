"""Every table and column the sync stores name in their hand-written SQL exists in models.py and in the migrated
database, on SQLite and on PostgreSQL.

Each statement is prepared, never run, against a database built from the models (`Base.metadata.create_all`)
and against one built by the Alembic migrations: the database refuses a statement that names a table or a
column it does not have.
"""

import contextlib
import re
import sqlite3

import pytest
import sqlalchemy

from companion import testing
from companion.app.core import migrate
from companion.app.models import Base
from companion.app.sync import asyncpg_store, dbapi_store

BUILDS = ("models", "migrations")


def _sqlite(path, build):
    url = "sqlite:///" + str(path)
    if build == "models":
        engine = sqlalchemy.create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
    else:
        migrate.upgrade(testing.settings_for(url, testing.test_master_keys()))
    return sqlite3.connect(str(path))


@contextlib.contextmanager
def _postgres(build):
    import psycopg

    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with testing.fresh_pg_database("pytest_sql") as url:
        if build == "models":
            engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            Base.metadata.create_all(engine)
            engine.dispose()
        else:
            migrate.upgrade(testing.settings_for(url, testing.test_master_keys()))
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn


def _numbered(sql):
    """psycopg's %s placeholders as PostgreSQL's $1, $2, ..."""
    count = iter(range(1, 1000))
    return re.sub(r"%s", lambda _m: "$%d" % next(count), sql)


def _refusals_sqlite(conn, statements):
    out = []
    for name, sql in statements.items():
        try:
            conn.execute("EXPLAIN " + sql, (None,) * sql.count("?"))
        except sqlite3.Error as exc:
            out.append("%s: %s" % (name, exc))
    return out


def _refusals_postgres(conn, statements):
    import psycopg

    out = []
    for name, sql in statements.items():
        try:
            conn.execute("PREPARE sql_check AS " + sql)
            conn.execute("DEALLOCATE sql_check")
        except psycopg.Error as exc:
            out.append("%s: %s" % (name, str(exc).splitlines()[0]))
    return out


def test_the_stores_have_hand_written_sql_to_check():
    """Both stores list their statements (the checks below would pass vacuously on an empty list)."""
    assert len(dbapi_store.statements(sqlite=True)) >= 8
    assert dbapi_store.statements(sqlite=True).keys() == dbapi_store.statements(sqlite=False).keys()
    assert len(asyncpg_store.STATEMENTS) >= 6


@pytest.mark.parametrize("build", BUILDS)
def test_sqlite_knows_every_table_and_column_of_the_dbapi_store(tmp_path, build):
    """SQLite built from the models, and migrated, prepares every statement of the DB-API store."""
    conn = _sqlite(tmp_path / "c.db", build)
    try:
        assert _refusals_sqlite(conn, dbapi_store.statements(sqlite=True)) == []
    finally:
        conn.close()


@pytest.mark.postgres
@pytest.mark.parametrize("build", BUILDS)
def test_postgres_knows_every_table_and_column_of_both_stores(build):
    """PostgreSQL built from the models, and migrated, prepares every statement of the psycopg and asyncpg
    stores."""
    with _postgres(build) as conn:
        psycopg_statements = {k: _numbered(v) for k, v in dbapi_store.statements(sqlite=False).items()}
        assert _refusals_postgres(conn, psycopg_statements) == []
        assert _refusals_postgres(conn, asyncpg_store.STATEMENTS) == []


def test_a_misnamed_column_is_refused(tmp_path):
    """The check itself: a statement naming a column the tables lack is reported."""
    conn = _sqlite(tmp_path / "c.db", "models")
    try:
        found = _refusals_sqlite(conn, {"bad": "UPDATE handsets SET no_such_column = ? WHERE id = ?"})
        assert len(found) == 1 and "no_such_column" in found[0]
    finally:
        conn.close()


# ---- the asyncpg path's pool hands connections out first come, first served ------------------------------
def test_a_connection_put_back_goes_to_the_oldest_waiter_not_to_a_newcomer():
    """One connection, two requests waiting for it: when its holder puts it back and at once asks again (as a
    keep-alive client's next request does), the waiters get it first, in order. With an asyncio.Queue the
    holder took it straight back and the waiters lost turn after turn."""
    import asyncio

    from companion.app.sync.asyncpg_store import FairSlots

    async def run():
        slots = FairSlots()
        slots.put_nowait("conn")
        order = []

        go = asyncio.Event()

        async def request(name, rounds):
            for _ in range(rounds):
                conn = await slots.get()
                order.append(name)
                await go.wait()
                slots.put_nowait(conn)

        holder = asyncio.create_task(request("a", 3))
        await asyncio.sleep(0)  # a holds the connection
        others = [asyncio.create_task(request(n, 1)) for n in ("b", "c")]
        await asyncio.sleep(0)  # b, then c, wait for it
        go.set()
        await asyncio.gather(holder, *others)
        return order

    assert asyncio.run(run()) == ["a", "b", "c", "a", "a"]


def test_a_waiter_cancelled_after_it_was_handed_a_connection_passes_it_on():
    """A request cancelled (its client gone) in the moment between being handed the connection and running
    passes it to the next waiter: no connection is lost, no waiter is stranded."""
    import asyncio

    from companion.app.sync.asyncpg_store import FairSlots

    async def run():
        slots = FairSlots()
        first = asyncio.create_task(slots.get())
        second = asyncio.create_task(slots.get())
        await asyncio.sleep(0)  # both wait
        slots.put_nowait("conn")  # handed to `first`, which has not run yet
        first.cancel()
        got = await asyncio.wait_for(second, 5)
        assert first.cancelled()
        third = asyncio.create_task(slots.get())
        await asyncio.sleep(0)
        third.cancel()  # cancelled while waiting: it leaves the queue
        await asyncio.gather(third, return_exceptions=True)
        slots.put_nowait(got)
        return got, list(slots.free), len(slots.waiters)

    assert asyncio.run(run()) == ("conn", ["conn"], 0)
