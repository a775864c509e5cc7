"""Service attacked at its edges: one driver cannot take every place of a center's calendar."""

import pytest
from sqlalchemy import func, select

from tests.service_support import driver_user, local_slot, make_center

pytest_plugins = ["tests.portal_support"]


def test_a_driver_books_one_open_visit_of_a_kind_per_device(world):
    """A second calibration for the same device while one is booked is refused (409, no place taken); another
    kind, or the same kind once the first is cancelled, is booked."""
    from companion.app.core.problems import Problem
    from companion.app.service import appointments
    from companion.app.service.models import CenterSlot

    cid = make_center(world, "Hoarded Center", "85004", capacity=1)
    d = world.driver()
    user = driver_user(world, d["user_id"])
    dev = d["devices"][0]
    slots = [local_slot("America/Phoenix", 5, hhmm)[2] for hhmm in ("09:00", "10:00", "11:00")]
    with world.session() as s:
        first = appointments.book(s, world.ctx, user, cid, "calibration", slots[0], dev)
        s.commit()
        with pytest.raises(Problem) as exc:
            appointments.book(s, world.ctx, user, cid, "calibration", slots[1], dev)
        s.rollback()
        assert exc.value.status == 409 and exc.value.kind == "already-booked"
        assert (s.scalar(select(func.coalesce(func.sum(CenterSlot.booked), 0))
                         .where(CenterSlot.center_id == cid)) == 1)
        appointments.book(s, world.ctx, user, cid, "inspection", slots[1], dev)
        appointments.cancel(s, world.ctx, user, first.id)
        appointments.book(s, world.ctx, user, cid, "calibration", slots[2], dev)
        s.commit()


def test_a_visit_cancelled_twice_gives_its_place_back_once(world):
    """Two cancels of one visit from two requests that both read it booked (two clicks): the second is refused
    and the place is given back once, so the slot never holds more than its capacity."""
    from companion.app.core.problems import Problem
    from companion.app.service import appointments
    from companion.app.service.models import CenterSlot

    cid = make_center(world, "Twice Center", "85004", capacity=1)
    _day, _h, ts = local_slot("America/Phoenix", 5, "09:00")
    a, b, c = (driver_user(world, world.driver()["user_id"]) for _ in range(3))
    with world.session() as s:
        appt = appointments.book(s, world.ctx, a, cid, "calibration", ts).id
        s.commit()
    with world.session() as s1, world.session() as s2:
        seen = appointments.get(s2, world.ctx, a, appt)  # the second click read it booked (and holds it)
        assert seen.appt.status == "booked"
        appointments.cancel(s1, world.ctx, a, appt)
        s1.commit()
        appointments.book(s1, world.ctx, b, cid, "calibration", ts)  # the place goes to another driver
        s1.commit()
        with pytest.raises(Problem) as exc:
            appointments.cancel(s2, world.ctx, a, appt)
        s2.rollback()
        assert exc.value.status == 409, exc.value.kind
    with world.session() as s:
        with pytest.raises(Problem) as exc:
            appointments.book(s, world.ctx, c, cid, "calibration", ts)
        s.rollback()
        assert exc.value.kind == "slot-full"
        assert s.get(CenterSlot, (cid, ts)).booked == 1
