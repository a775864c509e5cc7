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
