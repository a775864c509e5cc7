"""Helpers of the service tests (centers, appointments, records, documents): set-up through the real services."""

import datetime as dt
from zoneinfo import ZoneInfo

ALL_WEEK = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def make_center(world, name="Center", zip_code="85004", capacity=1, hours=None, phone="+1 602 555 0100",
                services=("calibration", "inspection", "installation", "removal", "vehicle-swap"), slot=30):
    """A center through the service layer; returns its id."""
    from companion.app.service import centers

    with world.session() as s:
        c = centers.create_center(s, None, name, "1 Main St", zip_code, hours or ALL_WEEK, list(services), capacity,
                                  slot, phone)
        s.commit()
        return c.id


def local_slot(tz, days_ahead, hhmm="10:00"):
    """(date text, time text, UTC seconds) of a local wall time days ahead in tz."""
    day = dt.datetime.now(ZoneInfo(tz)).date() + dt.timedelta(days=days_ahead)
    h, m = map(int, hhmm.split(":"))
    wall = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=ZoneInfo(tz))
    return day.isoformat(), hhmm, int(wall.timestamp())


def driver_user(world, user_id):
    """The User row of a driver (detached, for service calls)."""
    from companion.app.accounts.models import User

    with world.session() as s:
        u = s.get(User, user_id)
        s.expunge(u)
        return u


def bypass_violation(sim):
    """On a SyncedSim: the engine started without a test (a bypass): the real firmware logs BYPASS and a
    VIOLATION with cause VIO_BYPASS; then the log is uploaded."""
    sim.sim.run(60000)
    sim.sim.world.key(True)
    sim.sim.wake()
    sim.sim.run(2000)
    sim.sim.world.crank(bypass=True)
    sim.sim.wake()
    sim.sim.run(5000)
    sim.settle()


def set_program(world, account_id, state, ends_on=None):
    """The account's state (and end date) through the service layer."""
    from companion.app.records import authority

    with world.session() as s:
        authority.set_program(s, _staff(s), account_id, state, ends_on)
        s.commit()


def _staff(s):
    from companion.app.accounts.models import User

    u = User(email="ops-%s@example.org" % __import__("uuid").uuid4().hex[:8], role="staff", name="", active=True,
             phone="", address="", vehicles=[], email_prefs={}, language="en")
    s.add(u)
    s.flush()
    return u


def authority_for(world, *account_ids):
    """An authority user (claimed, with the test password) assigned to the accounts; returns its email."""
    import uuid

    from companion.app.accounts import services as accounts
    from companion.app.accounts import staff
    from companion.app.records import authority
    from tests.portal_client import PASSWORD

    email = "court-%s@example.org" % uuid.uuid4().hex[:8]
    with world.session() as s:
        inv = staff.invite_authority(s, world.ctx, None, email, "County Court")
        for aid in account_ids:
            authority.assign(s, _staff(s), inv.user.id, aid)
        s.commit()
        accounts.claim(s, world.ctx, inv.claim_url.rsplit("/", 1)[1], PASSWORD)
        s.commit()
    return email
