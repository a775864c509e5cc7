"""Staff pages and the portal's migration: staff open an account (the claim email goes out, with customer id
and temporary password shown), link handsets and other devices, invite authority users; bad input is refused
with nothing stored. Alembic has one head and the portal's revision goes down and up again."""

from sqlalchemy import func, select

from tests.portal_client import PASSWORD, csrf_of, sign_in

pytest_plugins = ["tests.portal_support"]


def test_staff_open_an_account_link_devices_and_invite_an_authority(world, mail):
    """The staff pages create a driver who can claim the account, link a handset and a portable monitor to
    it, and invite an authority user who can claim and sign in (read-only landing page)."""
    _sid, staff_email = world.staff()
    hs = world.office.handset(None)
    with world.browser(staff_email) as c:
        page = c.get("/portal/staff")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        r = c.post("/portal/staff/accounts", data={"name": "Pat Lee", "email": "pat.lee@example.org",
                                                   "schedule": "weekly", "first_due": "2030-01-07",
                                                   "installment": "45.50", "language": "es", "csrf": csrf})
        assert r.status_code == 200 and "Customer id C" in r.text
        import re

        account_id = int(re.search(r"Account (\d+) opened", r.text).group(1))
        r = c.post("/portal/staff/links", data={"account_id": str(account_id), "handset_id": str(hs["device_id"]),
                                                "kind": "interlock", "label": "Truck", "csrf": csrf})
        assert r.status_code == 200 and "Truck" in r.text
        r = c.post("/portal/staff/links", data={"account_id": str(account_id), "kind": "portable-monitor",
                                                "label": "Monitor", "csrf": csrf})
        assert r.status_code == 200
        r = c.post("/portal/staff/authorities", data={"name": "Court clerk", "email": "clerk@example.org",
                                                      "csrf": csrf})
        assert r.status_code == 200 and "Invitation sent" in r.text
    assert world.office.handset_view(hs["device_id"])["account_id"] == account_id
    world.deliver()
    assert "Su cuenta del portal" in str(mail.to("pat.lee@example.org")[-1]["Subject"])
    for who in ("pat.lee@example.org", "clerk@example.org"):
        url = mail.link(who, "/portal/claim/")
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        with world.browser() as c:
            page = c.get(path)
            r = c.post(path, data={"password": PASSWORD, "confirm": PASSWORD, "csrf": csrf_of(page.text)})
            assert r.status_code == 303
            dash = c.get("/portal/dashboard", follow_redirects=True).text
            if who.startswith("pat"):
                assert dash.count('class="card device') == 2 and "Truck" in dash
            else:  # an authority's home is its list of drivers (companion/app/records)
                assert "Your drivers" in dash and "No driver is assigned to you yet." in dash
                assert c.get("/portal/devices/1/code").status_code == 404


def test_staff_bad_input_is_refused_and_nothing_is_stored(world):
    """A bad email, a taken email, bad terms, an unknown handset or account: a message, nothing created."""
    from companion.app.accounts.models import DeviceLink, User
    from companion.app.models import Account

    _sid, staff_email = world.staff()
    taken = world.driver()["email"]
    with world.session() as s:
        counts = (s.scalar(select(func.count()).select_from(User)), s.scalar(select(func.count()).select_from(Account)),
                  s.scalar(select(func.count()).select_from(DeviceLink)))
    with world.browser(staff_email) as c:
        csrf = csrf_of(c.get("/portal/staff").text)
        good = {"name": "Pat", "email": "ok-%s@example.org" % csrf[:6], "schedule": "monthly",
                "first_due": "2030-01-01", "installment": "10", "language": "en", "csrf": csrf}
        for bad in ({"email": "not an email"}, {"email": taken}, {"installment": "ten"}, {"schedule": "daily"},
                    {"first_due": "yesterday"}, {"name": "x" * 201}, {"language": "fr"}, {"installment": "-5"}):
            r = c.post("/portal/staff/accounts", data={**good, **bad})
            assert r.status_code in (409, 422), bad
            assert 'class="error"' in r.text
        for bad in ({"account_id": "abc"}, {"account_id": "999999", "handset_id": "1"},
                    {"account_id": "1", "handset_id": "999999"}, {"account_id": "1", "kind": "toaster"}):
            r = c.post("/portal/staff/links", data={"kind": "interlock", "csrf": csrf, **bad})
            assert r.status_code in (404, 409, 422), bad
        r = c.post("/portal/staff/authorities", data={"email": "<b>@x", "name": "n", "csrf": csrf})
        assert r.status_code == 422
    with world.session() as s:
        assert counts == (s.scalar(select(func.count()).select_from(User)),
                          s.scalar(select(func.count()).select_from(Account)),
                          s.scalar(select(func.count()).select_from(DeviceLink)))


def test_staff_sign_in_lands_on_the_staff_page(world):
    """A staff user signing in is sent to the staff area."""
    _sid, staff_email = world.staff()
    with world.browser() as c:
        assert sign_in(c, staff_email).status_code == 303
        assert c.get("/portal/").headers["location"] == "/portal/staff"


def test_one_alembic_head_and_the_portal_revision_goes_down_and_up(portal_backend, tmp_path):
    """`alembic heads` is one revision; downgrading the portal's revision and upgrading again works."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from companion import testing
    from companion.app.core import migrate

    url = portal_backend.DATABASE_URL
    if url.startswith("sqlite"):
        url = "sqlite:///" + str(tmp_path / "mig.db")
        settings = testing.settings_for(url, testing.test_master_keys())
        cfg = migrate.alembic_config(settings)
        heads = ScriptDirectory.from_config(cfg).get_heads()
        assert len(heads) == 1
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "0002")
        command.upgrade(cfg, "head")
    else:
        with testing.fresh_pg_database("pytest_mig") as pg:
            cfg = migrate.alembic_config(testing.settings_for(pg, testing.test_master_keys()))
            assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1
            command.upgrade(cfg, "head")
            command.downgrade(cfg, "0002")
            command.upgrade(cfg, "head")
