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

    from companion.app.core.pgpool import FairSlots

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

    from companion.app.core.pgpool import FairSlots

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


def test_the_asyncpg_paths_pool_keeps_every_slot_through_cancels_errors_and_lost_connections(monkeypatch):
    """AsyncpgStore.connection under a storm: 600 requests on a pool of 4, each cancelled at a random point
    (waiting for a slot, connecting, holding the connection) or failing (a refused request, a bug, a connection
    lost, a connect refused). Afterwards every slot is back (a connection or None, none twice), nothing waits,
    every connection not kept was terminated, and a burst of twice the pool's size is served."""
    import asyncio
    import random

    import asyncpg

    from companion.app.core.problems import Problem
    from companion.app.sync.asyncpg_store import AsyncpgStore

    rng = random.Random(11)
    made = []

    class Conn:
        def __init__(self):
            self.closed = False
            self.terminated = False

        def is_closed(self):
            return self.closed or self.terminated

        def terminate(self):
            self.terminated = True

        async def close(self):
            self.closed = True

    async def connect(_dsn):
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        if rng.random() < 0.1:
            raise OSError("refused")
        made.append(Conn())
        return made[-1]

    monkeypatch.setattr(asyncpg, "connect", connect)

    async def request(store, fate):
        async with store.connection() as conn:
            assert not conn.is_closed()
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            if fate == "problem":
                raise Problem(409, "replay", "seen")
            if fate == "bug":
                raise RuntimeError("bug")
            if fate == "lost":
                conn.closed = True

    async def run():
        store = AsyncpgStore(None, "postgresql://x", 4)  # type: ignore[arg-type]
        await store.start()
        tasks = []
        for _ in range(600):
            fate = rng.choice(["ok", "ok", "problem", "bug", "lost"])
            tasks.append(asyncio.create_task(request(store, fate)))
            if rng.random() < 0.5:
                await asyncio.sleep(0)
            if rng.random() < 0.3:
                rng.choice(tasks).cancel()
        done, pending = await asyncio.wait(tasks, timeout=120)  # a liveness bound: all of it runs at once
        assert not pending, "requests stranded waiting for a slot"
        assert store.opened == 4
        free = list(store.idle.free)  # type: ignore[union-attr]
        assert len(free) == 4 and not store.idle.waiters  # type: ignore[union-attr]
        kept = [c for c in free if c is not None]
        assert len(set(map(id, kept))) == len(kept) and not any(c.is_closed() for c in kept)
        assert all(c.terminated for c in made if c not in kept)
        monkeypatch.setattr(rng, "random", lambda: 0.5)  # connects succeed from here on
        burst = [asyncio.create_task(request(store, "ok")) for _ in range(8)]
        done, pending = await asyncio.wait(burst, timeout=120)
        assert not pending and all(t.exception() is None for t in done)
        await store.close()
        assert all(c.is_closed() for c in made)

    asyncio.run(run())
