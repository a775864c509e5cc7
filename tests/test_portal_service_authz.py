"""Authorisation matrix of the service pages and API: the owner, another driver, the assigned authority, an
unassigned authority and staff against every new route that takes an id. Another's id is 404, never data."""

import datetime as dt

import httpx
import pytest

from tests.companion_doubles import SyncedSim
from tests.portal_client import csrf_of
from tests.service_support import authority_for, local_slot, make_center

pytest_plugins = ["tests.portal_support"]


@pytest.fixture(scope="module")
def cast(world, portal_server):
    """Driver A with a synced handset, an appointment and a document; driver B; two authorities; staff."""
    from companion.app.service import appointments, documents
    from tests.service_support import driver_user
    from tests.test_portal_documents import png_bytes

    a, b = world.driver(), world.driver()
    SyncedSim(portal_server.url, a["handsets"][0]).settle()
    cid = make_center(world)
    _d, _t, ts = local_slot("America/Phoenix", 5, "10:00")
    user = driver_user(world, a["user_id"])
    with world.session() as s:
        appt = appointments.book(s, world.ctx, user, cid, "calibration", ts, a["devices"][0])
        doc = documents.upload(s, world.ctx.ps, user, png_bytes(), "a.png")
        s.commit()
        ids = {"appt": appt.id, "doc": doc.id, "dev": a["devices"][0], "acct": a["account_id"]}
    _sid, staff = world.staff()
    return {"ids": ids, "owner": a["email"], "other": b["email"], "assigned": authority_for(world, a["account_id"]),
            "unassigned": authority_for(world, b["account_id"]), "staff": staff}


PAGES = {  # path -> who gets 200 (everyone else 404)
    "/portal/appointments/{appt}": {"owner"},
    "/portal/record/{dev}": {"owner", "assigned", "staff"},
    "/portal/record/{dev}/export": {"owner", "assigned", "staff"},
    "/portal/documents/{doc}": {"owner", "assigned", "staff"},
    "/portal/authority/drivers/{acct}": {"assigned", "staff"},
    "/portal/authority/drivers/{acct}/report.pdf": {"assigned", "staff"},
}
API = {
    "/api/v1/portal/appointments/{appt}": {"owner"},
    "/api/v1/portal/devices/{dev}/record": {"owner", "assigned", "staff"},
    "/api/v1/portal/devices/{dev}/record/export": {"owner", "assigned", "staff"},
    "/api/v1/portal/documents/{doc}": {"owner", "assigned", "staff"},
    "/api/v1/portal/authority/drivers/{acct}/report.pdf": {"assigned", "staff"},
}
ROLES = ("owner", "other", "assigned", "unassigned", "staff")


@pytest.mark.parametrize("role", ROLES)
def test_pages_matrix(world, cast, role):
    """Every page with an id answers 200 to those allowed and 404 to everyone else."""
    with world.browser(cast[role]) as c:
        for path, allowed in PAGES.items():
            r = c.get(path.format(**cast["ids"]))
            assert r.status_code == (200 if role in allowed else 404), (path, role, r.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_api_matrix(world, cast, role):
    """The same over the JSON API with bearer tokens."""
    token = world.api_token(cast[role])["access_token"]
    with httpx.Client(base_url=world.server.url, headers={"authorization": "Bearer " + token}) as c:
        for path, allowed in API.items():
            r = c.get(path.format(**cast["ids"]))
            assert r.status_code == (200 if role in allowed else 404), (path, role, r.status_code)
        assert c.get("/api/v1/portal/authority/drivers").status_code == (
            200 if role in ("assigned", "unassigned", "staff") else 404)


@pytest.mark.parametrize("role", ("other", "assigned", "staff"))
def test_nobody_else_changes_the_owners_appointment_or_record(world, cast, role):
    """Reschedule, cancel and dispute with the owner's ids: 404 to anyone else, nothing changed."""
    from companion.app.service.models import Appointment, Dispute

    ids = cast["ids"]
    day, hhmm, _ts = local_slot("America/Phoenix", 7, "11:00")
    with world.browser(cast[role]) as c:
        token = csrf_of(c.get("/portal/help").text)
        for path, data in ((f"/portal/appointments/{ids['appt']}/reschedule",
                            {"center_id": "1", "date": day, "time": hhmm}),
                           (f"/portal/appointments/{ids['appt']}/cancel", {}),
                           (f"/portal/record/{ids['dev']}/disputes", {"seq": "1", "note": "x"})):
            r = c.post(path, data={**data, "csrf": token})
            assert r.status_code == 404, (path, role)
    with world.session() as s:
        a = s.get(Appointment, ids["appt"])
        assert a.status == "booked" and dt.datetime.fromtimestamp(a.starts_ts, dt.UTC) > dt.datetime.now(dt.UTC)
        assert s.query(Dispute).filter(Dispute.account_id == ids["acct"]).count() == 0


def test_the_api_books_and_refuses_like_the_pages(world, cast):
    """Booking over the API takes a slot the locator's center offers; a second booking of a full slot is 409."""
    d = world.driver()
    token = world.api_token(d["email"])["access_token"]
    with httpx.Client(base_url=world.server.url, headers={"authorization": "Bearer " + token}) as c:
        found = c.get("/api/v1/portal/centers", params={"zip": "85004"}).json()
        assert found and found[0]["miles"] < 5
        cid = found[0]["center"]["id"]
        day = (dt.date.today() + dt.timedelta(days=9)).isoformat()
        slots = c.get("/api/v1/portal/centers/%d/slots" % cid, params={"date": day}).json()
        r = c.post("/api/v1/portal/appointments", json={"center_id": cid, "kind": "inspection",
                                                        "start": slots[0]["start"]})
        assert r.status_code == 201, r.text
        assert r.json()["local"] == slots[0]["local"]
        other = world.api_token(world.driver()["email"])["access_token"]
        r2 = c.post("/api/v1/portal/appointments", headers={"authorization": "Bearer " + other},
                    json={"center_id": cid, "kind": "inspection", "start": slots[0]["start"]})
        assert r2.status_code == 409 and r2.json()["type"].endswith("slot-full")
        assert c.get("/api/v1/portal/centers", params={"zip": "00000"}).status_code == 422


STAFF_POSTS = ["/portal/staff/centers", "/portal/staff/appointments/{appt}/approve",
               "/portal/staff/appointments/{appt}/decline", "/portal/staff/appointments/{appt}/complete",
               "/portal/staff/appointments/{appt}/missed", "/portal/staff/disputes/1", "/portal/staff/assignments", "/portal/staff/programs",
               "/portal/staff/shipments/1", "/portal/documents/{doc}/delete"]
STAFF_PAGES = ["/portal/staff/service", "/portal/staff/shipments"]


@pytest.mark.parametrize("role", ("owner", "other", "assigned", "unassigned"))
def test_staff_routes_are_404_to_everyone_else(world, cast, role):
    """The staff pages and every staff action answer 404 to drivers and authorities; nothing changes."""
    from companion.app.service.models import Appointment, Document

    ids = cast["ids"]
    with world.browser(cast[role]) as c:
        token = csrf_of(c.get("/portal/help").text)
        for path in STAFF_PAGES:
            assert c.get(path).status_code == 404, (path, role)
        for path in STAFF_POSTS:
            r = c.post(path.format(**ids), data={"csrf": token, "account_id": str(ids["acct"]), "name": "x",
                                                 "address": "x", "zip": "85004", "status": "lost"})
            assert r.status_code == 404, (path, role, r.status_code)
    with world.session() as s:
        assert s.get(Appointment, ids["appt"]).status == "booked"
        assert s.get(Document, ids["doc"]).deleted_at is None
