"""Service centers and appointments over HTTP and through the service layer: the ZIP locator with distances,
booking in a free slot, rescheduling (refused inside 24 h with whom to call), staff-approved requests, times in
the center's zone across DST, the next service date from the desired state, reminders through the outbox, and
slot capacity under 20 concurrent bookings on SQLite and PostgreSQL. Both backends."""

import datetime as dt
import re
import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from companion import testing
from tests.portal_client import csrf_of
from tests.service_support import driver_user, local_slot, make_center

pytest_plugins = ["tests.portal_support"]


def test_locator_finds_the_nearest_centers_by_zip_with_distances(world):
    """Phoenix's center is nearer to a Phoenix ZIP than Tucson's, Los Angeles' farthest; miles are shown."""
    far = make_center(world, "LA Center", "90012")
    near = make_center(world, "Phoenix Center", "85004")
    mid = make_center(world, "Tucson Center", "85701")
    d = world.driver()
    with world.browser(d["email"]) as c:
        page = c.get("/portal/centers", params={"zip": "85003"}).text
    names = re.findall(r'<a href="/portal/centers/(\d+)">', page)
    order = [int(x) for x in names]
    assert order.index(near) < order.index(mid) < order.index(far)
    assert "Phoenix, AZ" in page and " miles" in page
    from companion.app.service import centers

    with world.session() as s:
        _origin, found = centers.find(s, "85003", 10)
    by_id = {f.center.id: f.miles for f in found}
    assert by_id[near] < 5 and 100 < by_id[mid] < 125 and 330 < by_id[far] < 380


def test_the_locator_works_signed_out_and_booking_needs_a_driver(world):
    """Help links the locator: anyone finds centers and sees free times; the booking form is a driver's, and a
    signed-out POST books nothing."""
    cid = make_center(world, "Open Center", "85004")
    day, _h, _ts = local_slot("America/Phoenix", 3, "10:00")
    with world.browser() as c:
        assert "/portal/centers" in c.get("/portal/help").text
        page = c.get("/portal/centers", params={"zip": "85004"}).text
        assert "Open Center" in page and " miles" in page
        page = c.get("/portal/centers/%d" % cid, params={"date": day}).text
        assert "10:00" in page and "Sign in to book" in page and 'action="/portal/appointments"' not in page
        r = c.post("/portal/appointments", data={"center_id": cid, "kind": "calibration", "date": day,
                                                 "time": "10:00", "csrf": "x" * 30})
        assert r.status_code == 303 and r.headers["location"] == "/portal/sign-in"


@pytest.mark.parametrize("zip_code,status,words", [("00000", 422, "no such US ZIP code"),
                                                   ("8500", 422, "5 digits"), ("abcde", 422, "5 digits")])
def test_locator_refuses_zip_codes_that_do_not_exist(world, zip_code, status, words):
    """Malformed or unknown ZIP codes: 422 and the form again, nothing found."""
    d = world.driver()
    with world.browser(d["email"]) as c:
        r = c.get("/portal/centers", params={"zip": zip_code})
    assert r.status_code == status
    assert 'class="error"' in r.text and "miles" not in r.text
    from companion.app.core.problems import Problem
    from companion.app.service import locator

    with pytest.raises(Problem) as exc:
        locator.place(zip_code)
    assert words in exc.value.detail


def test_book_reschedule_and_refusal_inside_24_hours(world):
    """A driver books a calibration in a free slot (shown in the center's local time), moves it, and cannot
    move one that starts in less than 24 hours: the page says why and whom to call."""
    cid = make_center(world, "Phoenix Center", "85004")
    d = world.driver()
    day, hhmm, ts = local_slot("America/Phoenix", 3, "10:00")
    with world.browser(d["email"]) as c:
        page = c.get("/portal/centers/%d" % cid, params={"date": day}).text
        assert 'value="10:00"' in page and "America/Phoenix" in page
        r = c.post("/portal/appointments", data={"center_id": cid, "kind": "calibration", "date": day,
                                                 "time": hhmm, "device_id": d["devices"][0],
                                                 "csrf": csrf_of(page)})
        assert r.status_code == 303, r.text
        appt = r.headers["location"]
        page = c.get(appt).text
        assert "%s 10:00 MST" % day in page
        # the slot is gone from the free times
        assert 'value="10:00"' not in c.get("/portal/centers/%d" % cid, params={"date": day}).text
        day2, _h, _t = local_slot("America/Phoenix", 4, "14:30")
        r = c.post(appt + "/reschedule", data={"center_id": cid, "date": day2, "time": "14:30",
                                               "csrf": csrf_of(page)})
        assert r.status_code == 303
        assert "%s 14:30 MST" % day2 in c.get(appt).text
        assert 'value="10:00"' in c.get("/portal/centers/%d" % cid, params={"date": day}).text  # given back
    # a visit tomorrow morning, 20 h away or less: refused with whom to call
    from companion.app.service.models import Appointment

    soon = int(dt.datetime.now(dt.UTC).timestamp()) + 20 * 3600
    with world.session() as s:
        a = Appointment(account_id=d["account_id"], center_id=cid, kind="inspection", status="booked",
                        starts_ts=soon, note="")
        s.add(a)
        s.commit()
        soon_id = a.id
    with world.browser(d["email"]) as c:
        page = c.get("/portal/appointments/%d" % soon_id).text
        assert "within 24 hours" in page and "+1 602 555 0100" in page and "/reschedule" not in page
        r = c.post("/portal/appointments/%d/reschedule" % soon_id,
                   data={"center_id": cid, "date": day2, "time": "09:00", "csrf": csrf_of(page)})
        assert r.status_code == 409
        assert "within 24 hours" in r.text and "call Phoenix Center at +1 602 555 0100" in r.text
        r = c.post("/portal/appointments/%d/cancel" % soon_id, data={"csrf": csrf_of(page)})
        assert r.status_code == 409
    with world.session() as s:
        assert s.get(Appointment, soon_id).starts_ts == soon and s.get(Appointment, soon_id).status == "booked"


@pytest.mark.parametrize("when,kind", [("past", "past-time"), ("07:00", "outside-hours"), ("12:10", "outside-hours"),
                                       ("sunday", "outside-hours")])
def test_times_in_the_past_or_outside_hours_are_refused(world, when, kind):
    """Nothing is booked for a time in the past, before opening, off the slot grid or on a closed day."""
    from companion.app.core.problems import Problem
    from companion.app.service import appointments, centers
    from companion.app.service.models import Appointment

    weekdays = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
    cid = make_center(world, "Weekday Center", "85004", hours=weekdays)
    d = world.driver()
    user = driver_user(world, d["user_id"])
    tz = "America/Phoenix"
    if when == "past":
        day, hhmm, _ts = local_slot(tz, -1, "10:00")
    elif when == "sunday":
        today = dt.datetime.now(ZoneInfo(tz)).date()
        ahead = (6 - today.weekday()) % 7 or 7
        day, hhmm, _ts = local_slot(tz, ahead, "10:00")
    else:
        day, hhmm, _ts = local_slot(tz, 2, when)
    with world.session() as s:
        with pytest.raises(Problem) as exc:
            c = centers.get(s, cid)
            ts = centers.parse_start(c, day, hhmm)
            appointments.book(s, world.ctx, user, cid, "calibration", ts)
        s.rollback()
        assert exc.value.kind == kind
        assert s.scalar(select(Appointment.id).where(Appointment.account_id == d["account_id"])) is None


def test_slots_follow_the_centers_zone_across_dst():
    """New York: a 09:00 slot is 14:00 UTC in winter and 13:00 UTC in summer; on the spring-forward day the
    02:30 wall time does not exist and has no slot; on the fall-back day 01:30 happens twice, one slot."""
    from companion.app.service import centers
    from companion.app.service.models import ServiceCenter

    c = ServiceCenter(id=1, tz="America/New_York", hours={"sun": ["00:00", "04:00"], "mon": ["09:00", "10:00"]},
                      slot_minutes=30, capacity=1)
    winter = centers.day_slots(c, dt.date(2027, 1, 4))
    summer = centers.day_slots(c, dt.date(2027, 7, 5))
    assert dt.datetime.fromtimestamp(winter[0][0], dt.UTC).hour == 14
    assert dt.datetime.fromtimestamp(summer[0][0], dt.UTC).hour == 13
    assert [loc.strftime("%H:%M") for _ts, loc in winter] == ["09:00", "09:30"]
    spring = [loc.strftime("%H:%M") for _ts, loc in centers.day_slots(c, dt.date(2027, 3, 14))]
    assert "02:00" not in spring and "02:30" not in spring and "03:00" in spring
    fall = centers.day_slots(c, dt.date(2027, 11, 7))
    assert [loc.strftime("%H:%M") for _ts, loc in fall].count("01:30") == 1
    assert len({ts for ts, _l in fall}) == len(fall)
    # a booked instant is shown at the same wall time it was booked at, whatever the server's offset now
    ts = centers.parse_start(c, "2027-07-05", "09:30")
    assert centers.local(c, ts).strftime("%H:%M %Z") == "09:30 EDT"


def test_requests_are_never_self_booked_and_staff_schedule_them(world):
    """Removal and vehicle swap cannot be booked in a slot; they are requests; installation needs a preferred
    date; staff schedule a request in a slot and the driver sees it booked."""
    cid = make_center(world, "Phoenix Center", "85004")
    d = world.driver()
    staff_id, staff_email = world.staff()
    day, hhmm, _ts = local_slot("America/Phoenix", 5, "11:00")
    with world.browser(d["email"]) as c:
        page = c.get("/portal/appointments").text
        r = c.post("/portal/appointments", data={"center_id": cid, "kind": "removal", "date": day, "time": hhmm,
                                                 "csrf": csrf_of(page)})
        assert r.status_code == 422
        r = c.post("/portal/appointments/requests", data={"kind": "installation", "csrf": csrf_of(page)})
        assert r.status_code == 422
        r = c.post("/portal/appointments/requests", data={"kind": "vehicle-swap", "note": "new car",
                                                          "csrf": csrf_of(page)})
        assert r.status_code == 303
        req = int(r.headers["location"].rsplit("/", 1)[1])
        assert 'data-status="requested"' in c.get("/portal/appointments/%d" % req).text
    with world.browser(staff_email) as c:
        page = c.get("/portal/staff/service").text
        assert "req%d" % req in page
        r = c.post("/portal/staff/appointments/%d/approve" % req, data={"center_id": cid, "date": day,
                                                                        "time": hhmm, "csrf": csrf_of(page)})
        assert r.status_code == 303, r.text
    with world.browser(d["email"]) as c:
        page = c.get("/portal/appointments/%d" % req).text
        assert 'data-status="booked"' in page and "%s 11:00" % day in page


def test_next_service_and_the_handsets_inspection_due_come_from_one_source(world):
    """Completing an inspection moves the desired state's inspection date by the service period: the dashboard
    shows it, and it is the date the handset receives at sync."""
    from companion.app.accounts.models import User
    from companion.app.service import appointments
    from companion.app.service.models import Appointment

    cid = make_center(world, "Phoenix Center", "85004")
    d = world.driver(service_period_days=30)
    visit = int(dt.datetime.now(dt.UTC).timestamp()) + 3 * 86400
    with world.session() as s:
        a = Appointment(account_id=d["account_id"], device_id=d["devices"][0], center_id=cid, kind="inspection",
                        status="booked", starts_ts=visit, note="")
        s.add(a)
        s.commit()
        staff = User(email="x-%d@example.org" % a.id, role="staff", name="", active=True, phone="", address="",
                     vehicles=[], email_prefs={}, language="en")
        s.add(staff)
        s.commit()
        appointments.complete(s, staff, a.id)
        s.commit()
    due = dt.datetime.fromtimestamp(visit, dt.UTC).date() + dt.timedelta(days=30)
    view = world.office.handset_view(d["handsets"][0]["device_id"])
    assert view["desired"]["inspection_due"] == due.isoformat()
    with world.browser(d["email"]) as c:
        page = c.get("/portal/dashboard").text
    assert 'data-next-service="%s"' % due.isoformat() in page


def test_reminder_email_goes_out_before_each_appointment_once(world):
    """The worker reminds of a visit within 48 h once; a moved visit is reminded again."""
    from companion.app.notifications.models import OutboxEmail
    from companion.app.service import appointments
    from companion.app.service.models import Appointment

    cid = make_center(world, "Phoenix Center", "85004")
    d = world.driver()
    start = int(dt.datetime.now(dt.UTC).timestamp()) + 30 * 3600
    with world.session() as s:
        a = Appointment(account_id=d["account_id"], center_id=cid, kind="calibration", status="booked",
                        starts_ts=start, note="")
        s.add(a)
        s.commit()
        assert appointments.remind(s, world.ctx.ps) >= 1
        s.commit()
        assert appointments.remind(s, world.ctx.ps) == 0
        a.starts_ts = start + 1800
        s.commit()
        assert appointments.remind(s, world.ctx.ps) == 1
        s.commit()
        mails = s.scalars(select(OutboxEmail).where(OutboxEmail.to_addr == d["email"],
                                                    OutboxEmail.subject == "Service visit soon")).all()
    assert len(mails) == 2 and "Phoenix Center" in mails[0].text_body
    world.deliver()
    assert any("Service visit soon" in m["subject"] for m in world.mail.to(d["email"]))


def test_twenty_drivers_booking_the_last_slot_exactly_one_gets_it(world):
    """20 drivers, one slot with one place left, booking at once (each in its own write transaction): exactly
    one succeeds, the others are told the slot is full, and the slot counts its capacity."""
    from companion.app.core.problems import Problem
    from companion.app.service import appointments
    from companion.app.service.models import Appointment, CenterSlot

    cid = make_center(world, "Busy Center", "85004", capacity=2)
    day, hhmm, ts = local_slot("America/Phoenix", 6, "09:00")
    first = world.driver()
    with world.session() as s:
        appointments.book(s, world.ctx, driver_user(world, first["user_id"]), cid, "calibration", ts)
        s.commit()
    users = [driver_user(world, world.driver(devices=0)["user_id"]) for _ in range(20)]
    barrier = threading.Barrier(len(users))
    won, full, other = [], [], []

    def go(user):
        db = world.app.state.db
        barrier.wait()
        try:
            with db.write_session() as s:
                appointments.book(s, world.ctx, user, cid, "calibration", ts)
                s.commit()
            won.append(user.id)
        except Problem as exc:
            (full if exc.kind == "slot-full" else other).append(exc.kind)
        except Exception as exc:  # noqa: BLE001
            other.append(repr(exc))

    threads = [threading.Thread(target=go, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert other == [] and len(won) == 1 and len(full) == 19
    with world.session() as s:
        assert s.get(CenterSlot, (cid, ts)).booked == 2
        n = s.scalar(select(Appointment.id).where(Appointment.center_id == cid, Appointment.starts_ts == ts,
                                                  Appointment.created_by == won[0]))
        assert n is not None


def test_the_service_revision_matches_the_models_and_goes_down_and_up(portal_backend, tmp_path):
    """0005_service creates exactly the service tables and the log index the models declare (compared on the
    migrated database), and it downgrades to 0003_portal and upgrades again."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from companion.app.core import migrate
    from companion.app.models import Base

    url = portal_backend.DATABASE_URL
    if url.startswith("sqlite"):
        url = "sqlite:///" + str(tmp_path / "mig.db")
    settings = testing.settings_for(url, testing.test_master_keys())
    cfg = migrate.alembic_config(settings)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "0003_portal")
    command.upgrade(cfg, "head")
    engine = create_engine(settings.sync_database_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    ours = {"service_centers", "center_slots", "appointments", "programs", "authority_assignments", "documents",
            "authority_notes", "disputes", "shipments", "shipping_addresses"}

    def table_of(d):
        d = d[0] if isinstance(d, list) else d
        for part in d[1:]:
            name = getattr(part, "name", None) if not isinstance(part, str) else part
            table = getattr(part, "table", None)
            if table is not None:
                return table.name
            if name in ours:
                return name
        return None

    mine = [d for d in diffs if table_of(d) in ours or "ix_log_records_type" in repr(d)]
    assert mine == []


def test_staff_close_visits_done_or_missed_and_a_missed_one_counts(world):
    """A visit that has started is listed for staff; 'did not come' makes it missed, which the authority's
    compliance counts; a future visit cannot be marked missed."""
    from companion.app.records import authority
    from companion.app.service.models import Appointment

    cid = make_center(world, "Phoenix Center", "85004")
    d = world.driver()
    past = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
    later = past + 3 * 86400
    with world.session() as s:
        a = Appointment(account_id=d["account_id"], center_id=cid, kind="calibration", status="booked",
                        starts_ts=past, note="")
        b = Appointment(account_id=d["account_id"], center_id=cid, kind="calibration", status="booked",
                        starts_ts=later, note="")
        s.add_all([a, b])
        s.commit()
        ids = a.id, b.id
    _sid, staff = world.staff()
    with world.browser(staff) as c:
        page = c.get("/portal/staff/service").text
        assert "visit%d" % ids[0] in page
        assert c.post("/portal/staff/appointments/%d/missed" % ids[0], data={"csrf": csrf_of(page)}).status_code == 303
        assert c.post("/portal/staff/appointments/%d/missed" % ids[1], data={"csrf": csrf_of(page)}).status_code == 409
    with world.session() as s:
        from companion.app.models import Account

        assert s.get(Appointment, ids[0]).status == "missed"
        assert authority.compliance(s, s.get(Account, d["account_id"])).missed_services == 1
