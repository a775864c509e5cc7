"""Module shipments and the program's end, over HTTP and the worker: a shipment from creation to return with
the shipped email, the handset told which module to expect (real firmware, through sync), the late-delivery
warning to driver and staff, an unreturned module putting the account out of compliance, blocking the next
shipment and locking through the desired state where the program says so; on the program's end date the
certificate and the final report are produced and sent, reminders stop, a removal is requested. Both backends."""

import datetime as dt
import io
import re

from sqlalchemy import select

from tests.companion_doubles import SyncedSim
from tests.portal_client import csrf_of
from tests.service_support import authority_for

pytest_plugins = ["tests.portal_support"]


def _expires_in(world, device_id, days):
    """The handset's last report says its module expires in `days` days."""
    from companion.app.core import timebase
    from companion.app.models import Handset

    day = timebase.day_of(timebase.today() + dt.timedelta(days=days))
    with world.session() as s:
        h = s.get(Handset, device_id)
        h.reported = {**(h.reported or {}), "module_expiry": day}
        s.commit()
    return day


def _round(world):
    from companion.app.service import worker

    return worker.run_once(world.app.state.db, world.ctx.ps)


def test_a_shipment_from_creation_to_return(world, portal_server):
    """Created ahead of expiry to the one-time address; shipped with tracking (email with tracking and return
    label; the real handset learns the module to expect at its next sync); delivered; returned."""
    from companion.app.service.models import Shipment

    d = world.driver()
    hs = d["handsets"][0]
    sim = SyncedSim(portal_server.url, hs)
    sim.settle()
    with world.browser(d["email"]) as c:
        page = c.get("/portal/shipments").text
        r = c.post("/portal/shipments/address", data={"address": "12 Elm St\nTucson AZ 85701",
                                                      "csrf": csrf_of(page)})
        assert r.status_code == 303
    _expires_in(world, hs["device_id"], 10)
    assert _round(world) >= 1
    with world.session() as s:
        ships = s.scalars(select(Shipment).where(Shipment.account_id == d["account_id"])).all()
    assert len(ships) == 1 and ships[0].status == "created" and "Tucson" in ships[0].address
    sid = ships[0].id
    _sid, staff = world.staff()
    with world.browser(staff) as c:
        page = c.get("/portal/staff/shipments").text
        assert 'id="s%d"' % sid in page
        r = c.post("/portal/staff/shipments/%d" % sid, data={"status": "shipped", "tracking": "1Z999AA10123456784",
                                                            "module_serial": "424242", "csrf": csrf_of(page)})
        assert r.status_code == 303, r.text
    while world.deliver()[1]:
        pass
    mail = [m for m in world.mail.to(d["email"]) if m["subject"] == "Your new module has shipped"]
    text = world.mail.text(mail[0]) if mail else ""
    assert "1Z999AA10123456784" in text and re.search(r"RL[0-9A-F]{12}", text)
    sim.settle()
    assert sim.fsm.expected_module == 424242
    with world.browser(staff) as c:
        page = c.get("/portal/staff/shipments").text
        assert c.post("/portal/staff/shipments/%d" % sid, data={"status": "delivered",
                                                               "csrf": csrf_of(page)}).status_code == 303
        assert c.post("/portal/staff/shipments/%d" % sid, data={"status": "shipped", "tracking": "x",
                                                               "module_serial": "1",
                                                               "csrf": csrf_of(page)}).status_code == 409
        assert c.post("/portal/staff/shipments/%d" % sid, data={"status": "returned",
                                                               "csrf": csrf_of(page)}).status_code == 303
    with world.browser(d["email"]) as c:
        page = c.get("/portal/shipments").text
    assert 'data-status="returned"' in page and "1Z999AA10123456784" in page
    token = world.api_token(d["email"])["access_token"]
    import httpx

    api = httpx.get(world.server.url + "/api/v1/portal/shipments", headers={"authorization": "Bearer " + token})
    assert api.status_code == 200
    assert [(x["status"], x["tracking"]) for x in api.json()] == [("returned", "1Z999AA10123456784")]


def test_late_delivery_warns_driver_and_staff(world):
    """A replacement not delivered a day before expiry: one warning to the driver and to staff."""
    from companion.app.notifications.models import Notification

    d = world.driver()
    staff_id, _email = world.staff()
    _expires_in(world, d["handsets"][0]["device_id"], 1)
    _round(world)
    _round(world)
    with world.session() as s:
        mine = s.scalars(select(Notification).where(Notification.user_id == d["user_id"],
                                                    Notification.kind == "shipment-late")).all()
        staffs = s.scalars(select(Notification).where(Notification.user_id == staff_id,
                                                      Notification.kind == "shipment-late")).all()
    assert len(mine) == 1 and len(staffs) == 1


def test_an_unreturned_module_puts_the_account_out_of_compliance_and_locks_where_the_program_says(world):
    """Expired 11 days ago, shipped, not returned (10 days allowed): out of compliance, the authority sees it,
    no next shipment, and with module_lock the handset's inspection date becomes today."""
    from companion.app.core import timebase
    from companion.app.models import Handset
    from companion.app.service import shipments
    from companion.app.service.models import Program, Shipment
    from tests.service_support import _staff, set_program

    d = world.driver()
    hid = d["handsets"][0]["device_id"]
    set_program(world, d["account_id"], "AZ")
    _sid, staff_email = world.staff()
    with world.browser(staff_email) as c:  # staff say this program locks on an unreturned module
        page = c.get("/portal/staff/service").text
        r = c.post("/portal/staff/programs", data={"account_id": d["account_id"], "jurisdiction": "AZ",
                                                   "module_lock": "on", "csrf": csrf_of(page)})
        assert r.status_code == 303
    with world.session() as s:
        assert s.get(Program, d["account_id"]).module_lock
        old = timebase.day_of(timebase.today() - dt.timedelta(days=11))
        sh = Shipment(account_id=d["account_id"], handset_id=hid, for_expiry_day=old, module_serial=0, address="x",
                      status="created", tracking="", return_label="")
        s.add(sh)
        s.commit()
        shipments.mark(s, world.ctx.ps, _staff(s), sh.id, "shipped", "TRK1", 77)
        s.commit()
    _round(world)
    with world.session() as s:
        p = s.get(Program, d["account_id"])
        assert "module not returned" in p.out_of_compliance
        h = s.get(Handset, hid)
        assert timebase.date_of(h.inspection_due_day) == timebase.today()
        assert shipments.blocked(s, d["account_id"])
    _expires_in(world, hid, 5)
    _round(world)
    with world.session() as s:
        assert len(s.scalars(select(Shipment).where(Shipment.account_id == d["account_id"])).all()) == 1
    email = authority_for(world, d["account_id"])
    with world.browser(email) as c:
        page = c.get("/portal/authority/drivers/%d" % d["account_id"]).text
    assert "module not returned" in page


def test_the_programs_end(world):
    """On the end date: certificate and final report produced (PDF text checked), the report goes to the
    authority by email, the driver's dashboard says both were sent, payment reminders stop, a removal is
    requested for staff."""
    from pypdf import PdfReader

    from companion.app.notifications import worker as note_worker
    from companion.app.notifications.models import Notification
    from companion.app.service import appointments
    from companion.app.service.models import Appointment, Document
    from companion.app.service.models import Appointment as Appt
    from tests.service_support import set_program

    d = world.driver(first_due=(dt.date.today() + dt.timedelta(days=1)).isoformat())
    set_program(world, d["account_id"], "AZ", dt.date.today())
    with world.session() as s:  # a visit tomorrow: no reminder once the program has ended
        s.add(Appt(account_id=d["account_id"], kind="calibration", status="booked", note="",
                   starts_ts=int(dt.datetime.now(dt.UTC).timestamp()) + 86400))
        s.commit()
    court = authority_for(world, d["account_id"])
    assert _round(world) >= 1
    while world.deliver()[1]:
        pass
    with world.session() as s:
        docs = {x.origin: x for x in s.scalars(select(Document).where(Document.account_id == d["account_id"]))}
        removal = s.scalar(select(Appointment).where(Appointment.account_id == d["account_id"],
                                                     Appointment.kind == "removal"))
        assert removal is not None and removal.status == "requested"
        note_worker.notice_events(s, world.ctx.ps)
        assert appointments.remind(s, world.ctx.ps) == 0
        s.commit()
        assert s.scalar(select(Notification.id).where(Notification.user_id == d["user_id"],
                                                      Notification.kind == "payment-due")) is None
    assert set(docs) == {"certificate", "report"}
    with world.browser(d["email"]) as c:
        page = c.get("/portal/dashboard").text
        assert 'data-program="ended"' in page and "The final report was sent to your monitoring authority" in page
        cert = c.get("/portal/documents/%d" % docs["certificate"].id)
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(cert.content)).pages)
        assert "Certificate of program completion" in text and "AZ" in text
    assert any(m["subject"] == "Final compliance report" for m in world.mail.to(court))
    with world.browser(court) as c:
        r = c.get("/portal/documents/%d" % docs["report"].id)
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
        assert "Final compliance report" in text
