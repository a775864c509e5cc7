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
