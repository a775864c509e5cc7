"""The dashboard's short path (portal/reads.py: one statement, a front route, asyncpg on PostgreSQL) answers as
the other pages do for every kind of visitor: signed out, unknown or expired session, disabled user, temporary
password, staff (404), authority (its landing page), a driver with no device; and the page and the JSON API
show the same dashboard. Both backends."""

import datetime as dt

from sqlalchemy import update

from companion.app.accounts import secrets
from companion.app.accounts.models import User, WebSession
from tests.portal_client import PASSWORD, sign_in

pytest_plugins = ["tests.portal_support"]


def test_signed_out_unknown_and_overlong_sessions_go_to_sign_in(world):
    with world.browser() as c:
        assert c.get("/portal/dashboard").headers["location"] == "/portal/sign-in"
        c.cookies.set("portal_session", "not-a-session", path="/portal")
        assert c.get("/portal/dashboard").headers["location"] == "/portal/sign-in"
        c.cookies.set("portal_session", "x" * 101, path="/portal")
        assert c.get("/portal/dashboard").headers["location"] == "/portal/sign-in"


def test_an_expired_session_and_a_disabled_user_go_to_sign_in(world):
    d = world.driver()
    with world.browser(d["email"]) as c:
        assert c.get("/portal/dashboard").status_code == 200
        token_hash = secrets.token_hash(c.cookies["portal_session"])
        with world.session() as s:
            s.execute(update(WebSession).where(WebSession.token_hash == token_hash)
                      .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
            s.commit()
        assert c.get("/portal/dashboard").headers["location"] == "/portal/sign-in"
    with world.browser(d["email"]) as c:
        assert c.get("/portal/dashboard").status_code == 200
        with world.session() as s:
            s.execute(update(User).where(User.id == d["user_id"]).values(active=False))
            s.commit()
        assert c.get("/portal/dashboard").headers["location"] == "/portal/sign-in"


def test_a_temporary_password_must_be_changed_first(world):
    d = world.driver(claim=False)
    with world.browser() as c:
        sign_in(c, d["customer_id"], d["temporary"])
        assert c.get("/portal/dashboard").headers["location"] == "/portal/password"


def test_staff_get_404_and_the_page_has_security_headers(world):
    _uid, email = world.staff()
    with world.browser(email) as c:
        r = c.get("/portal/dashboard")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"


def test_a_driver_without_devices_and_the_api_agree_with_the_page(world):
    d = world.driver(devices=0, installment_cents=4321)
    with world.browser(d["email"]) as c:
        page = c.get("/portal/dashboard")
        assert page.status_code == 200 and "no-store" == page.headers["cache-control"]
        assert "No device is linked to your account yet." in page.text and "$43.21" in page.text
        assert c.head("/portal/dashboard").status_code == 200
    d2 = world.driver(devices=2)
    token = world.api_token(d2["email"], PASSWORD)["access_token"]
    api = world.office.call("GET", "/portal/dashboard", headers={"Authorization": "Bearer " + token})
    assert [c["id"] for c in api["cards"]] == d2["devices"]
    assert api["unread"] >= 0 and api["amount_due_cents"] == 9000
    with world.browser(d2["email"]) as c:
        page = c.get("/portal/dashboard").text
    assert all('id="dev-%d"' % i in page for i in d2["devices"])


def test_the_dashboard_without_the_asyncpg_pool(world):
    """Without the dashboard's asyncpg pool (SYNC_ASYNCPG off) the dashboard reads through SQLAlchemy, on
    PostgreSQL in the loop's thread pool: the same page."""
    d = world.driver(devices=1, installment_cents=5555)
    with world.browser(d["email"]) as c:
        fast = c.get("/portal/dashboard").text
        kept = getattr(world.app.state, "portal_reads", None)
        world.app.state.portal_reads = None
        try:
            plain = c.get("/portal/dashboard").text
        finally:
            world.app.state.portal_reads = kept
    assert plain == fast and "$55.55" in plain and 'id="dev-%d"' % d["devices"][0] in plain


def _everything(world, d, card_year=2020):
    """Auto-pay on with a card (expired by the next due date), a program end date, a booked inspection after a
    past one and a later one, and a request without a center (not a visit)."""
    from companion.app.billing.models import DeviceAutopay, PaymentMethod
    from companion.app.service.models import Appointment, Program
    from tests.service_support import make_center

    cid = make_center(world, "Dash Center", "85004")
    now = int(dt.datetime.now(dt.UTC).timestamp())
    with world.session() as s:
        card = PaymentMethod(account_id=d["account_id"], gateway="sandbox", token="tok_dash", brand="visa",
                             last4="4242", exp_month=1, exp_year=card_year, primary=True)
        s.add(card)
        s.flush()
        for hid in (h["device_id"] for h in d["handsets"]):  # auto-pay is per device
            s.add(DeviceAutopay(handset_id=hid, account_id=d["account_id"], autopay=True, method_id=card.id,
                                last_decline="Your card was declined."))
        s.add(Program(account_id=d["account_id"], jurisdiction="AZ", ends_on=dt.date(2031, 5, 6)))
        for kind, status, center, ts in (("inspection", "booked", cid, now - 3600),
                                         ("calibration", "booked", cid, now + 9 * 86400),
                                         ("inspection", "booked", cid, now + 4 * 86400),
                                         ("installation", "requested", None, None)):
            s.add(Appointment(account_id=d["account_id"], center_id=center, kind=kind, status=status,
                              starts_ts=ts, note=""))
        s.commit()
        return s.query(Appointment.id).filter(Appointment.account_id == d["account_id"],
                                             Appointment.starts_ts == now + 4 * 86400).scalar()


def test_the_whole_dashboard_is_one_statement(world):
    """Session, user, account, unread count, every device, billing's lines (auto-pay, its card's expiry, the
    last decline), the program's end and the next booked visit with its center: one SQL statement per page,
    through SQLAlchemy and (on PostgreSQL) through the asyncpg pool alike."""
    from companion import testing

    d = world.driver(devices=2)
    visit = _everything(world, d)
    with world.browser(d["email"]) as c:
        assert c.get("/portal/dashboard").status_code == 200  # connections opened, statements prepared
        pages = []
        kept = getattr(world.app.state, "portal_reads", None)
        for pg in ([kept, None] if kept is not None else [None]):
            world.app.state.portal_reads = pg
            try:
                with testing.statements_of(world.app) as seen:
                    r = c.get("/portal/dashboard")
            finally:
                world.app.state.portal_reads = kept
            assert r.status_code == 200
            assert len(seen) == 1, seen
            pages.append(r.text)
    page = pages[0]
    assert all(p == page for p in pages)
    assert all('id="dev-%d"' % i in page for i in d["devices"])
    assert 'id="next-autopay"' in page and "expires before the next due date" in page
    assert "Your card was declined." in page
    assert "Your program ends on 2031-05-06." in page
    assert 'href="/portal/appointments/%d"' % visit in page and "Dash Center" in page


def test_a_dashboard_without_billing_program_or_visit(world):
    """No plan, no program, no visit: the page says so, still one statement."""
    from companion import testing

    d = world.driver(devices=1)
    with world.browser(d["email"]) as c:
        c.get("/portal/dashboard")
        with testing.statements_of(world.app) as seen:
            page = c.get("/portal/dashboard").text
    assert len(seen) == 1
    assert 'id="next-autopay"' not in page and "Your program" not in page
    assert 'href="/portal/centers"' in page


def _plan_nodes(plan):
    """Every node of a PostgreSQL EXPLAIN (FORMAT JSON) plan."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from _plan_nodes(child)


def test_the_statement_reads_one_account_not_all(world):
    """The statement starts from the session (or the user) and reaches everything else through an index: among
    many accounts it reads one user row and one account row. PostgreSQL keeps the written join order of more
    than join_collapse_limit tables, and with the session joined to an already nested join it read every
    account (and ran the next-visit subquery for each) before filtering by session."""
    from companion.app.portal import reads

    for _ in range(12):  # other accounts, each with booked visits
        _everything(world, world.driver(devices=1))
    d = world.driver(devices=1)
    _everything(world, d)
    with world.browser(d["email"]) as c:
        token_hash = secrets.token_hash(c.cookies["portal_session"])
    db = world.app.state.db
    with db.engine.connect() as conn:
        for statement, params in ((reads.BY_SESSION, {"h": token_hash}), (reads.BY_USER, {"uid": d["user_id"]})):
            compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": False})
            values = {**compiled.params, **params, "now_ts": 0}
            if db.settings.is_sqlite:
                plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                                               tuple(values[n] for n in compiled.positiontup))]
                scans = [p for p in plan if p.startswith("SCAN ") and p.split()[1] in ("users", "accounts")]
                assert not scans, plan
            else:
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + str(compiled), values).scalar()
                read = {}
                for node in _plan_nodes(plan[0]["Plan"]):
                    if node.get("Relation Name") in ("users", "accounts", "account_devices", "programs",
                                                     "appointments"):
                        name = node["Relation Name"]
                        rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                        read[name] = read.get(name, 0) + rows * node["Actual Loops"]
                # the next visit: this account's booked visits (two after now_ts=0... three), no other's
                assert read.pop("appointments", 0) <= 4, read
                assert read and all(n <= 1 for n in read.values()), read


def _same_rows(fast, plain):
    assert len(fast) == len(plain)
    for f, p in zip(fast, plain, strict=True):
        assert f._fields == tuple(p._fields)
        for name in f._fields:
            a, b = getattr(f, name), getattr(p, name)
            assert (a, type(a)) == (b, type(b)), name


def test_the_fast_paths_rows_are_sqlalchemys_rows(world):
    """The page reads the statement outside SQLAlchemy: on SQLite through the driver with SQLAlchemy's own
    conversions (reads._OnSqliteDriver), on PostgreSQL through asyncpg (reads.by_session_asyncpg). For a
    driver with everything (two devices, auto-pay with a card, a decline, a program end, a booked visit, a
    handset's report) and one with nothing, every column of every row has the same value and type as through
    SQLAlchemy."""
    import asyncio

    from companion.app.portal import reads

    db = world.app.state.db
    full = world.driver(devices=2)
    _everything(world, full)
    with world.session() as s:  # a handset's report (a JSON column) on the first device
        from companion.app.models import Handset

        s.execute(update(Handset).where(Handset.id == full["handsets"][0]["device_id"])
                  .values(reported={"state": "OFF", "lockout": True, "lock_cause": 5, "temp_lock_until": 0},
                          last_sync_at=dt.datetime.now(dt.UTC)))
        s.commit()
    bare = world.driver(devices=0)
    for d in (full, bare):
        with world.browser(d["email"]) as c:
            token_hash = secrets.token_hash(c.cookies["portal_session"])
        with db.engine.connect() as conn:
            plain = conn.execute(reads.BY_SESSION, {"h": token_hash, "now_ts": 0}).all()
            assert len(plain) == max(len(d["devices"]), 1)
            assert isinstance(plain[0].reported, dict) == (d is full)
            if db.settings.is_sqlite:
                for statement, params in ((reads.BY_SESSION, {"h": token_hash}),
                                          (reads.BY_USER, {"uid": d["user_id"]})):
                    fast = reads._rows(conn, statement, {**params, "now_ts": 0})
                    assert not isinstance(fast[0], type(plain[0]))  # the driver's path was taken
                    _same_rows(fast, conn.execute(statement, {**params, "now_ts": 0}).all())
                continue
        import asyncpg

        async def read(token_hash=token_hash):
            conn = await asyncpg.connect(db.settings.plain_postgres_url)
            try:
                found = await reads.by_session_asyncpg(conn, token_hash)
            finally:
                await conn.close()
            return found.rows

        kept = reads._now_ts
        reads._now_ts = lambda: 0
        try:
            fast = asyncio.run(read())
        finally:
            reads._now_ts = kept
        _same_rows(fast, plain)
