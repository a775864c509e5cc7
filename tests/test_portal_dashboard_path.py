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
    """With SYNC_ASYNCPG off (no asyncpg pool) the dashboard reads through SQLAlchemy, on PostgreSQL in the
    loop's thread pool: the same page."""
    d = world.driver(devices=1, installment_cents=5555)
    with world.browser(d["email"]) as c:
        fast = c.get("/portal/dashboard").text
        kept = getattr(world.app.state, "pg_sync", None)
        world.app.state.pg_sync = None
        try:
            plain = c.get("/portal/dashboard").text
        finally:
            world.app.state.pg_sync = kept
    assert plain == fast and "$55.55" in plain and 'id="dev-%d"' % d["devices"][0] in plain
