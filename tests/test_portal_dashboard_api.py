"""The JSON API's dashboard (GET /portal/dashboard, for a phone app) shows what the dashboard page shows: the
next payment and the cards, billing's lines (auto-pay per device with its card, a card expiring before the next
due date, the last decline), the next service with the booked visit, the program's end, the unread count. Both
are built by portal/dashboard_parts.py from the rows of one statement; here the API's answer is checked against
the page's own values and its HTML, for a driver with everything, one whose program ended and one with nothing,
and against the OpenAPI document. Both backends."""

import dataclasses
import datetime as dt

from sqlalchemy import update

from companion import testing
from companion.app.accounts import secrets
from tests.portal_client import PASSWORD
from tests.test_portal_dashboard_path import _everything

pytest_plugins = ["tests.portal_support"]


def _api(world, d):
    """The API's dashboard for the driver d (a fresh bearer token)."""
    token = world.api_token(d["email"], PASSWORD)["access_token"]
    return world.office.call("GET", "/portal/dashboard", headers={"Authorization": "Bearer " + token})


def _page(world, d):
    """(the page's HTML, the values its route renders it from): pages.dashboard_values on the rows of the
    statement the page runs for this browser's session."""
    from companion.app.portal import reads
    from companion.app.web import pages
    from companion.app.web.session import Visitor

    with world.browser(d["email"]) as c:
        r = c.get("/portal/dashboard")
        assert r.status_code == 200
        token_hash = secrets.token_hash(c.cookies["portal_session"])
    with world.app.state.db.engine.connect() as conn:
        found = reads.by_session(conn, token_hash)
    v = Visitor(None, world.ctx, found.user, None, "en", found.csrf)
    return r.text, pages.dashboard_values(v, found.rows)


def _fields(obj, *left_out):
    return {f.name for f in dataclasses.fields(obj)} - set(left_out)


def _agree(api, values):
    """Every part of the page's values is in the API's answer, the same (the API's JSON read back through its
    own model, so dates and times compare as values)."""
    from companion.app.portal.schemas import DashboardPublic

    m = DashboardPublic.model_validate(api)
    d, b, ns, prog = values["d"], values["billing"], values["ns"], values["prog"]
    assert set(values) == {"d", "billing", "ns", "prog"}  # a new part on the page needs its place in the API
    for name in _fields(d, "cards"):
        assert getattr(m, name) == getattr(d, name), name
    assert [c.model_dump() for c in m.cards] == [dataclasses.asdict(c) for c in d.cards]
    # billing's lines: every field but the handset's row id (the API names devices by their portal id)
    billing_fields = _fields(b, "devices")
    assert {name: getattr(m.billing, name) for name in billing_fields} == \
        {name: getattr(b, name) for name in billing_fields}
    device_fields = _fields(b.devices[0], "handset_id", "method") if b.devices else set()
    assert len(m.billing.devices) == len(b.devices)
    for got, want in zip(m.billing.devices, b.devices, strict=True):
        assert {name: getattr(got, name) for name in device_fields} == \
            {name: getattr(want, name) for name in device_fields}
        if want.method is None:
            assert got.card is None
        else:
            assert got.card is not None
            assert (got.card.id, got.card.brand, got.card.last4, got.card.exp_month, got.card.exp_year) == \
                (want.method.id, want.method.brand, want.method.last4, want.method.exp_month, want.method.exp_year)
    # the next service and the booked visit
    assert m.next_service.due == ns.due
    if ns.visit is None:
        assert m.next_service.visit is None
    else:
        got, a, c = m.next_service.visit, ns.visit.appt, ns.visit.center
        assert got is not None
        assert (got.id, got.kind, got.start, got.local, got.center_id, got.center_name, got.center_tz,
                got.can_change) == (a.id, a.kind, dt.datetime.fromtimestamp(a.starts_ts, dt.UTC),
                                    ns.visit.local.isoformat(), c.id, c.name, c.tz, ns.visit.can_change)
    # the program's end
    if prog is None:
        assert m.program is None
    else:
        assert m.program is not None
        assert {name: getattr(m.program, name) for name in _fields(prog)} == dataclasses.asdict(prog)
        assert m.program.status == prog.status
    return m


def _unread(world, d, n):
    from companion.app.notifications.models import Notification

    with world.session() as s:
        for i in range(n):
            s.add(Notification(user_id=d["user_id"], kind="code-issued", params={"device": "Car 1", "until": "x"},
                               link="", dedupe="dash-%d" % i, read=False))
        s.commit()


def test_the_api_and_the_page_agree_for_a_driver_with_everything(world):
    """Two devices, auto-pay on the first with a card that expires before the next due date and off on the
    second, a decline, a program end date, a booked inspection, two unread notifications: the API gives every
    part the page shows, with the auto-pay card's brand and last four."""
    from companion.app.billing.models import DeviceAutopay

    d = world.driver(devices=2)
    visit = _everything(world, d)
    with world.session() as s:
        s.execute(update(DeviceAutopay).where(DeviceAutopay.handset_id == d["handsets"][1]["device_id"])
                  .values(autopay=False, last_decline=""))
        s.commit()
    _unread(world, d, 2)
    api = _api(world, d)
    page, values = _page(world, d)
    m = _agree(api, values)

    assert [c.id for c in m.cards] == d["devices"] and m.unread == 2 and m.amount_due_cents == 9000
    first, second = m.billing.devices
    assert (first.device_id, first.autopay, first.card_expiring, first.next_autopay_cents) == \
        (d["devices"][0], True, True, 9000)
    assert first.card is not None and (first.card.brand, first.card.last4, first.card.exp_year) == \
        ("visa", "4242", 2020)
    assert first.decline == "Your card was declined." == m.billing.decline
    assert (second.device_id, second.autopay, second.next_autopay, second.card_expiring) == \
        (d["devices"][1], False, None, False)
    assert m.billing.autopay and m.billing.card_expiring and m.billing.next_autopay == m.next_due
    v = m.next_service.visit
    assert v is not None and (v.id, v.kind, v.center_name, v.center_tz) == \
        (visit, "inspection", "Dash Center", "America/Phoenix")
    local = dt.datetime.fromisoformat(v.local)
    assert local == v.start and local.utcoffset() == dt.timedelta(hours=-7)  # Phoenix: no daylight saving
    assert m.program is not None and (m.program.status, m.program.ends_on, m.program.ended_at) == \
        ("ending", dt.date(2031, 5, 6), None)

    # what the page's HTML says, from the API's answer
    assert "2 unread notifications" in page and "$90.00 · %s" % m.next_due.isoformat() in page
    assert "<li>Car 1: Next automatic payment: $90.00 on %s.</li>" % m.next_due.isoformat() in page
    assert "<li>Car 2: automatic payments off</li>" in page
    assert "Your card was declined." in page and "expires before the next due date" in page
    assert "Your program ends on 2031-05-06." in page
    assert 'href="/portal/appointments/%d">inspection, %s' % (v.id, v.local[:16].replace("T", " ")) in page
    assert all('id="dev-%d"' % i in page for i in d["devices"])


def test_the_api_and_the_page_agree_when_the_program_has_ended(world):
    """An ended program with its certificate and the final report sent: the API says ended, with both; a visit
    booked two hours ahead can no longer be moved."""
    from companion.app.service.models import Appointment, Program
    from tests.service_support import make_center

    d = world.driver(devices=1)
    ended = dt.datetime(2026, 11, 30, 17, 5, tzinfo=dt.UTC)
    cid = make_center(world, "Soon Center", "85004")
    with world.session() as s:
        s.add(Program(account_id=d["account_id"], jurisdiction="AZ", ends_on=dt.date(2026, 11, 30), ended_at=ended,
                      certificate_doc_id=77, report_sent_at=ended + dt.timedelta(minutes=1)))
        s.add(Appointment(account_id=d["account_id"], center_id=cid, kind="calibration", status="booked",
                          starts_ts=int(dt.datetime.now(dt.UTC).timestamp()) + 7200, note=""))
        s.commit()
    api = _api(world, d)
    page, values = _page(world, d)
    m = _agree(api, values)
    assert m.program is not None and m.program.status == "ended" and m.program.ended_at == ended
    assert m.program.certificate_doc_id == 77 and m.program.report_sent_at == ended + dt.timedelta(minutes=1)
    assert "Your program has ended" in page and 'href="/portal/documents/77"' in page
    assert "authority on 2026-11-30 17:06 UTC" in page
    v = m.next_service.visit
    assert v is not None and (v.kind, v.center_name, v.can_change) == ("calibration", "Soon Center", False)


def test_the_api_and_the_page_agree_for_a_driver_with_nothing(world):
    """No device, no auto-pay, no program, no visit, nothing unread: the API says so, as the page does."""
    d = world.driver(devices=0, installment_cents=4321)
    api = _api(world, d)
    page, values = _page(world, d)
    m = _agree(api, values)
    assert api["cards"] == [] and api["unread"] == 0 and api["amount_due_cents"] == 4321
    assert api["billing"] == {"autopay": False, "next_autopay": None, "next_autopay_cents": 0,
                              "card_expiring": False, "decline": "", "retry_at": None, "devices": []}
    assert api["next_service"] == {"due": None, "visit": None} and api["program"] is None
    assert m.billing.devices == []
    assert "No device is linked to your account yet." in page and "$43.21" in page
    assert 'id="next-autopay"' not in page and "Your program" not in page and 'href="/portal/centers"' in page


def test_the_whole_api_dashboard_is_one_statement(world):
    """Beyond the bearer token's check (what GET /portal/me costs), the API's whole dashboard (cards, billing's
    lines with the card, the next visit, the program) is one SQL statement, as the page's is."""
    d = world.driver(devices=2)
    visit = _everything(world, d)
    token = world.api_token(d["email"], PASSWORD)["access_token"]
    auth = {"Authorization": "Bearer " + token}
    world.office.call("GET", "/portal/dashboard", headers=auth)  # connections opened
    with testing.statements_of(world.app) as me:
        world.office.call("GET", "/portal/me", headers=auth)
    with testing.statements_of(world.app) as seen:
        api = world.office.call("GET", "/portal/dashboard", headers=auth)
    assert len(seen) == len(me) + 1, seen
    assert [s for s in seen if s not in me] == [seen[-1]] and "payment_methods" in seen[-1]
    assert api["next_service"]["visit"]["id"] == visit and api["program"]["ends_on"] == "2031-05-06"
    assert [x["card"]["last4"] for x in api["billing"]["devices"]] == ["4242", "4242"]


def test_the_openapi_document_describes_the_whole_dashboard(world):
    """The OpenAPI document lists the dashboard's new parts, each field with its description, and keeps the
    fields it had."""
    doc = world.office.call("GET", "/openapi.json")
    schemas = doc["components"]["schemas"]
    ok = doc["paths"]["/api/v1/portal/dashboard"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/DashboardPublic")
    dash = schemas["DashboardPublic"]["properties"]
    assert {"name", "next_due", "amount_due_cents", "reset_fee_cents", "allow_codes", "unread", "cards"} <= set(dash)
    assert {"billing", "next_service", "program"} <= set(dash)
    assert set(schemas["DashboardPublic"]["required"]) >= {"cards", "billing", "next_service", "program"}
    parts = {"DashboardPublic": None, "DashboardBillingPublic": {"devices", "card_expiring", "decline"},
             "DeviceAutopayPublic": {"device_id", "autopay", "card"},
             "AutopayCardPublic": {"brand", "last4", "exp_month", "exp_year"},
             "NextServicePublic": {"due", "visit"},
             "NextVisitPublic": {"id", "kind", "start", "local", "center_name", "center_tz"},
             "ProgramPublic": {"status", "ends_on", "ended_at", "certificate_doc_id", "report_sent_at"}}
    for name, must in parts.items():
        props = schemas[name]["properties"]
        assert must is None or must <= set(props), name
        assert all(p.get("description") for p in props.values()), name
    assert schemas["ProgramPublic"]["properties"]["status"]["enum"] == ["open", "ending", "ended"]
