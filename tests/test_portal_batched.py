"""The dashboard's reads on PostgreSQL, coalesced (portal/batched.py): the requests that wait for a connection
are read by one statement, and each gets its own session's rows and nothing else, whatever else is in its
batch (the same session twice, unknown, expired and disabled sessions, other drivers); a failed read fails its
own batch only; a request cancelled while it waits, or while its batch is read, costs nobody else their
answer. Through HTTP, many drivers at once each see their own dashboard (both backends)."""

import asyncio
import datetime as dt
import gc
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import update

from companion.app.accounts import secrets
from companion.app.accounts.models import User, WebSession
from companion.app.portal import batched, reads

pytest_plugins = ["tests.portal_support"]


def _drivers(world, n):
    """n drivers, each signed in once: (email, name, token hash, user id), names all different."""
    from companion.app.accounts import services as accounts

    out = []
    for i in range(n):
        name = "Driver %d <b>%s</b>" % (i, "x" * i)
        d = world.driver(devices=1 + i % 3, name=name)
        with world.session() as s:
            user = s.get(User, d["user_id"])
            token, _ = accounts.start_session(s, world.ctx, user)
            s.commit()
        out.append((d["email"], name, secrets.token_hash(token), d["user_id"]))
    return out


def _pg_only(world):
    if world.app.state.portal_reads is None:
        pytest.skip("the dashboard's asyncpg reads are PostgreSQL's")


def _as_sqlalchemy_reads_it(world, token_hash):
    """The rows of the one-session statement through SQLAlchemy (the reference)."""
    with world.app.state.db.engine.connect() as conn:
        params = {"h": token_hash, "now_ts": reads._now_ts()}
        return [tuple(r) for r in conn.execute(reads.BY_SESSION, params).all()]


def _batch_read(world, hashes):
    """by_sessions_asyncpg on a connection of its own."""
    import asyncpg  # type: ignore[import-untyped]

    async def run():
        conn = await asyncpg.connect(world.app.state.settings.plain_postgres_url)
        try:
            return await reads.by_sessions_asyncpg(conn, hashes)
        finally:
            await conn.close()

    return asyncio.run(run())


def _reader(world, size):
    return batched.DashboardReads(world.app.state.settings.plain_postgres_url, size)


def test_waiting_requests_are_read_together_each_with_its_own_rows(world):
    _pg_only(world)
    people = _drivers(world, 9)
    expired = _drivers(world, 1)[0]
    disabled = _drivers(world, 1)[0]
    with world.session() as s:
        s.execute(update(WebSession).where(WebSession.token_hash == expired[2])
                  .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        s.execute(update(User).where(User.id == disabled[3]).values(active=False))
        s.commit()
    asked = [p[2] for p in people] + [people[3][2], "0" * 64, expired[2], disabled[2], people[0][2]]
    expected = {p[2]: _as_sqlalchemy_reads_it(world, p[2]) for p in people}

    async def run():
        reader = _reader(world, 1)  # one connection: everything asked while the first read runs waits
        await reader.start()
        try:
            answers = await asyncio.gather(*(reader.signed_in(h) for h in asked))
        finally:
            await reader.close()
        return reader, answers

    reader, answers = asyncio.run(run())
    assert reader.largest == len(asked) - 1  # the first alone, all the others in one statement
    for h, found in zip(asked, answers, strict=True):
        if h in expected:
            email = next(p[0] for p in people if p[2] == h)
            assert found is not None and found.user.email == email
            assert [tuple(r) for r in found.rows] == expected[h]
            assert {r.user_id for r in found.rows} == {found.user.id}
        else:
            assert found is None, h


def test_the_batch_statement_answers_in_the_order_asked(world):
    """by_sessions_asyncpg: the answers in the order of the hashes, however the sessions' rows sort."""
    _pg_only(world)
    people = _drivers(world, 4)
    hashes = [p[2] for p in reversed(people)] + ["f" * 64, people[1][2]]

    found = _batch_read(world, hashes)
    assert [f.user.email if f else None for f in found] == \
        [p[0] for p in reversed(people)] + [None, people[1][0]]
    assert [tuple(r) for r in found[0].rows] == _as_sqlalchemy_reads_it(world, hashes[0])


def test_a_failed_read_fails_its_batch_only(world, monkeypatch):
    import asyncpg  # type: ignore[import-untyped]

    _pg_only(world)
    people = _drivers(world, 5)
    plain = reads.by_sessions_asyncpg
    failures = [asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle")]

    async def failing_once(conn, hashes):
        if failures:
            raise failures.pop()
        return await plain(conn, hashes)

    monkeypatch.setattr(reads, "by_sessions_asyncpg", failing_once)

    async def run():
        reader = _reader(world, 1)
        await reader.start()
        try:
            first = await asyncio.gather(*(reader.signed_in(p[2]) for p in people), return_exceptions=True)
            again = await asyncio.gather(*(reader.signed_in(p[2]) for p in people))
            return reader, first, again
        finally:
            await reader.close()

    reader, first, again = asyncio.run(run())
    assert first[0].user.email == people[0][0]  # read alone before the others queued
    assert all(isinstance(e, asyncpg.exceptions.ConnectionDoesNotExistError) for e in first[1:])
    assert [f.user.email for f in again] == [p[0] for p in people]
    assert reader.pool.opened == 1 and not reader.running and not reader.queue


def test_a_cancelled_request_costs_nobody_else_their_answer(world, monkeypatch):
    _pg_only(world)
    people = _drivers(world, 6)
    plain_one, plain_many = reads.by_session_asyncpg, reads.by_sessions_asyncpg
    gate = {}

    async def held_one(conn, h):
        await gate["open"].wait()
        return await plain_one(conn, h)

    async def held_many(conn, hashes):
        gate["batch"].set()
        await gate["go on"].wait()
        return await plain_many(conn, hashes)

    monkeypatch.setattr(reads, "by_session_asyncpg", held_one)
    monkeypatch.setattr(reads, "by_sessions_asyncpg", held_many)

    async def run():
        gate["open"], gate["batch"], gate["go on"] = asyncio.Event(), asyncio.Event(), asyncio.Event()
        reader = _reader(world, 1)
        await reader.start()
        try:
            first = asyncio.create_task(reader.signed_in(people[0][2]))  # its read holds the connection
            await asyncio.sleep(0.05)
            queued = [asyncio.create_task(reader.signed_in(p[2])) for p in people[1:]]
            await asyncio.sleep(0)
            queued[0].cancel()  # cancelled while it waits for a connection
            first.cancel()  # cancelled while its own read runs: the read goes on for the others
            await asyncio.sleep(0)
            gate["open"].set()
            await asyncio.wait_for(gate["batch"].wait(), 30)
            queued[1].cancel()  # cancelled while its batch is read
            gate["go on"].set()
            done = await asyncio.gather(*queued, return_exceptions=True)
            assert first.cancelled()
            return reader, done
        finally:
            await reader.close()

    reader, done = asyncio.run(run())
    assert isinstance(done[0], asyncio.CancelledError) and isinstance(done[1], asyncio.CancelledError)
    assert [f.user.email for f in done[2:]] == [p[0] for p in people[3:]]
    assert reader.largest == 4  # the request cancelled while it waited was not read
    assert not reader.running and not reader.queue


def test_closing_cancels_the_reads_under_way_and_refuses_new_ones(world, monkeypatch):
    _pg_only(world)
    people = _drivers(world, 2)
    never = asyncio.Event

    async def stuck(conn, h):
        await never().wait()

    monkeypatch.setattr(reads, "by_session_asyncpg", stuck)

    async def run():
        reader = _reader(world, 1)
        await reader.start()
        waiting = [asyncio.create_task(reader.signed_in(p[2])) for p in people]
        await asyncio.sleep(0.05)
        await asyncio.wait_for(reader.close(), 30)
        results = await asyncio.gather(*waiting, return_exceptions=True)
        with pytest.raises(ConnectionError):
            await reader.signed_in(people[0][2])
        return reader, results

    reader, results = asyncio.run(run())
    assert all(isinstance(r, asyncio.CancelledError) for r in results)  # one being read, one waiting
    assert not reader.running and not reader.queue


def test_many_drivers_at_once_each_see_their_own_dashboard(world):
    """Through HTTP, 24 drivers asking at once (three times each): every page greets its own driver and
    shows that driver's devices only."""
    import html

    people = _drivers(world, 8)
    browsers = {}
    for email, name, _h, _uid in people:
        c = world.browser(email)
        browsers[email] = (c, name)
    try:
        devices = {}
        for email, (c, _name) in browsers.items():
            page = c.get("/portal/dashboard").text
            devices[email] = re.findall(r'id="dev-(\d+)"', page)

        def ask(email):
            c, _name = browsers[email]
            r = c.get("/portal/dashboard")
            return email, r.status_code, r.text

        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(ask, [p[0] for p in people] * 3))
        for email, status, page in answers:
            name = browsers[email][1]
            assert status == 200
            assert "Hello, " + html.escape(name) in page
            assert re.findall(r'id="dev-(\d+)"', page) == devices[email]
            assert not any(html.escape(other[1]) in page for other in people if other[0] != email)
    finally:
        for c, _name in browsers.values():
            c.close()


def test_closing_before_a_batch_ran_answers_its_requests(world):
    """close() just after a request made its batch's task, before that task first ran (a task cancelled then
    never runs its code): the request gets CancelledError rather than waiting forever, and the task is not
    kept in `running`."""
    _pg_only(world)
    people = _drivers(world, 1)

    async def run():
        reader = _reader(world, 1)
        await reader.start()
        asked = asyncio.create_task(reader.signed_in(people[0][2]))
        await asyncio.sleep(0)  # the request queued and made its batch's task, which has not run yet
        assert len(reader.running) == 1 and not reader.queue
        await reader.close()  # in this task, at once (wait_for would run it in a task of its own, later)
        done, _ = await asyncio.wait([asked], timeout=30)  # a liveness bound, not a timing
        if not done:
            asked.cancel()
        return reader, asked, done

    reader, asked, done = asyncio.run(run())
    assert asked in done and asked.cancelled()
    assert not reader.running and not reader.queue


def _admin(sql, *args):
    import psycopg

    from companion import testing

    with psycopg.connect(testing.PG_ADMIN_URL, autocommit=True) as admin:
        cur = admin.execute(sql, args)
        return cur.fetchall() if cur.description else None


def test_a_database_refusing_connections_is_503_for_the_whole_batch_then_recovers(world):
    """Through HTTP: PostgreSQL refuses new connections (the database closed to connections, SQLSTATE 55000, as
    psycopg's OperationalError answers 503 on the other pages) and the dashboard's connections were dropped:
    every dashboard asked, alone or in a batch, is 503 with Retry-After; once the database takes connections
    again every dashboard is 200."""
    _pg_only(world)
    people = _drivers(world, 4)
    browsers = [world.browser(p[0]) for p in people]
    name = world.app.state.settings.plain_postgres_url.rsplit("/", 1)[1]
    try:
        for c in browsers:
            assert c.get("/portal/dashboard").status_code == 200
        _admin("ALTER DATABASE %s ALLOW_CONNECTIONS false" % name)
        try:
            _admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                   " AND application_name = 'portal-dashboard'", name)
            for c in browsers:  # one at a time: each idle connection (dropped) and each new one refused
                r = c.get("/portal/dashboard")
                assert (r.status_code, r.headers.get("retry-after")) == (503, "1"), r.text
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda c: c.get("/portal/dashboard"), browsers * 4))
            assert [(r.status_code, r.headers.get("retry-after")) for r in answers] == [(503, "1")] * 16
        finally:
            _admin("ALTER DATABASE %s ALLOW_CONNECTIONS true" % name)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda c: c.get("/portal/dashboard"), browsers * 4))
        assert [r.status_code for r in answers] == [200] * 16
        assert not world.app.state.portal_reads.queue
    finally:
        for c in browsers:
            c.close()


def test_staff_authority_deviceless_many_devices_and_odd_hashes_in_one_batch(world):
    """One batch statement with a staff user's session, an authority's, a driver with no device and one with
    six, and hashes no session has (empty, quotes and SQL, non-ASCII, overlong): each answer is exactly what
    the one-session statement reads for that hash through SQLAlchemy (None for the unknown ones)."""
    from sqlalchemy import select

    from companion.app.accounts import services as accounts
    from tests.service_support import authority_for

    _pg_only(world)
    none, six = world.driver(devices=0), world.driver(devices=6)
    _uid, staff_email = world.staff()
    court = authority_for(world, six["account_id"])
    hashes = {}
    with world.session() as s:
        for key, email in (("none", none["email"]), ("six", six["email"]), ("staff", staff_email),
                           ("court", court)):
            user = s.scalar(select(User).where(User.email == email))
            token, _ = accounts.start_session(s, world.ctx, user)
            hashes[key] = secrets.token_hash(token)
        s.commit()
    odd = ["", "'; DELETE FROM users; --", "é" * 64, "h" * 500, hashes["six"].upper(), hashes["six"] + " "]
    asked = [hashes["six"], *odd[:3], hashes["staff"], hashes["none"], *odd[3:], hashes["court"], hashes["six"]]

    found = _batch_read(world, asked)
    for h, mine in zip(asked, found, strict=True):
        expected = _as_sqlalchemy_reads_it(world, h)
        if h in odd:
            assert mine is None and expected == [], h
        else:
            assert mine is not None and [tuple(r) for r in mine.rows] == expected, h
    by = dict(zip(asked, found, strict=True))
    assert len(by[hashes["six"]].rows) == 6 and len(by[hashes["none"]].rows) == 1
    assert by[hashes["staff"]].user.email == staff_email and by[hashes["court"]].user.email == court
    assert by[hashes["staff"]].rows[0].account_row is None and by[hashes["court"]].rows[0].account_row is None


def test_a_hash_postgresql_cannot_take_fails_no_other_request_of_its_batch(world):
    """A token hash PostgreSQL cannot take as text (a NUL character, a lone surrogate) is no session's hash
    (those are secrets.token_hash's 64 hex digits): it is answered None, and the requests batched with it get
    their own dashboards rather than its error."""
    _pg_only(world)
    people = _drivers(world, 3)
    asked = [people[0][2], people[1][2], "\x00" * 64, "\ud800", people[2][2]]

    async def run():
        reader = _reader(world, 1)
        await reader.start()
        try:
            return await asyncio.gather(*(reader.signed_in(h) for h in asked), return_exceptions=True)
        finally:
            await reader.close()

    found = asyncio.run(run())
    assert [f.user.email if isinstance(f, reads.SignedIn) else f for f in found] == \
        [people[0][0], people[1][0], None, None, people[2][0]]


def test_requests_cancellations_failures_and_closing_at_random_points(world, monkeypatch):
    """Rounds of requests arriving at random, some cancelled at random points (queued, or their batch under
    way), reads that fail now and then (a dropped connection, before or after the statement), 1 to 3
    connections, and in some rounds close() at a random point: every request ends, with its own session's user
    (None for an unknown hash), the failure of its read, or CancelledError when it was cancelled or the reads
    closed (ConnectionError when it came after close() began); nothing is left queued or running, every idle
    connection is closed at the end, and the loop reports nothing (no future's exception never retrieved, no
    task destroyed while pending). asyncpg's own
    "unexpected connection_lost() call" future, left when a connect is cancelled during its SSL request
    (MagicStack/asyncpg#1211, #1310), is not this module's and is left out."""
    import random

    import asyncpg  # type: ignore[import-untyped]

    _pg_only(world)
    people = _drivers(world, 5)
    owner = {p[2]: p[0] for p in people}
    hashes = [p[2] for p in people] + ["0" * 64]
    plain_one, plain_many = reads.by_session_asyncpg, reads.by_sessions_asyncpg
    rnd = random.Random()

    async def jitter():
        for _ in range(rnd.randrange(4)):
            await asyncio.sleep(0)
        if rnd.random() < 0.1:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("dropped")

    async def one(conn, h):
        await jitter()
        found = await plain_one(conn, h)
        await jitter()
        return found

    async def many(conn, hs):
        await jitter()
        found = await plain_many(conn, hs)
        await jitter()
        return found

    monkeypatch.setattr(reads, "by_session_asyncpg", one)
    monkeypatch.setattr(reads, "by_sessions_asyncpg", many)

    async def a_round(seed):
        rnd.seed(seed)
        reported = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        reader = _reader(world, rnd.choice([1, 2, 3]))
        await reader.start()
        asked, cancelled = [], set()
        close_at = rnd.randrange(60) if rnd.random() < 0.3 else None
        closer = None
        for step in range(60):
            if step == close_at:
                if rnd.random() < 0.5:
                    await reader.close()
                else:
                    closer = asyncio.ensure_future(reader.close())
                break
            for _ in range(rnd.randrange(4)):
                h = rnd.choice(hashes)
                asked.append((h, asyncio.create_task(reader.signed_in(h))))
            if asked and rnd.random() < 0.3:
                task = rnd.choice(asked)[1]
                task.cancel()
                cancelled.add(task)
            for _ in range(rnd.randrange(3)):
                await asyncio.sleep(0)
            if rnd.random() < 0.1:
                await asyncio.sleep(0.002)
        if asked:
            _done, pending = await asyncio.wait([t for _, t in asked], timeout=30)  # a liveness bound
            assert not pending, (seed, pending)
        if closer is not None:
            await closer
        elif close_at is None:
            await reader.close()
        for h, task in asked:
            if task.cancelled():
                assert task in cancelled or close_at is not None, seed
            elif isinstance(task.exception(), ConnectionError):  # it first ran once close() had begun
                assert close_at is not None, seed
            elif task.exception() is not None:
                assert isinstance(task.exception(), asyncpg.exceptions.ConnectionDoesNotExistError), seed
            else:
                found = task.result()
                assert (found.user.email if found else None) == owner.get(h), seed
        assert not reader.running and not reader.queue, seed
        assert all(c is None or c.is_closed() for c in reader.pool.idle.free), seed
        gc.collect()
        await asyncio.sleep(0)
        return [c for c in reported if "unexpected connection_lost" not in str(c.get("exception"))]

    for seed in range(80):
        assert asyncio.run(a_round(seed)) == [], seed


def test_a_request_never_gets_rows_read_before_it_arrived(world, monkeypatch):
    """A read under way has its rows; the driver's name changes (committed); a request for the same session
    that arrives now is not answered from the read under way but by a statement of its own, after: it sees the
    new name, the earlier request the old one."""
    _pg_only(world)
    email, _name, h, uid = _drivers(world, 1)[0]
    plain_one = reads.by_session_asyncpg
    gate = {}

    async def held(conn, token_hash):
        found = await plain_one(conn, token_hash)
        if not gate["go on"].is_set():
            gate["read"].set()
            await gate["go on"].wait()
        return found

    monkeypatch.setattr(reads, "by_session_asyncpg", held)

    async def run():
        gate["read"], gate["go on"] = asyncio.Event(), asyncio.Event()
        reader = _reader(world, 1)
        await reader.start()
        try:
            first = asyncio.create_task(reader.signed_in(h))
            await asyncio.wait_for(gate["read"].wait(), 30)  # its statement has run
            with world.session() as s:
                s.execute(update(User).where(User.id == uid).values(name="Renamed"))
                s.commit()
            later = asyncio.create_task(reader.signed_in(h))
            await asyncio.sleep(0)
            gate["go on"].set()
            return await first, await later
        finally:
            await reader.close()

    first, later = asyncio.run(run())
    assert first.user.email == later.user.email == email
    assert first.user.name != "Renamed" and later.user.name == "Renamed"
