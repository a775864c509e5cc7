"""Pages of service centers, appointments, the driver's record and the monitoring authority (issue 13).
Each handler reads the form, calls the service layer (companion/app/service, companion/app/records) and
renders or redirects; the rules are in the services, shared with the JSON API."""

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from companion.app import i18n
from companion.app.accounts.models import User
from companion.app.api.deps import SessionDep, WriteSessionDep
from companion.app.core import timebase
from companion.app.core.problems import Problem
from companion.app.portal import services as portal
from companion.app.records import authority, report, timeline
from companion.app.service import appointments, centers, documents, shipments
from companion.app.service.models import REQUESTED, SELF_BOOKED, SERVICES, Appointment, ServiceCenter
from companion.app.web.session import (
    Visitor,
    form_error,
    now,
    problem_words,
    read_session,
    redirect,
    render,
    submit,
    visitor,
)

router = APIRouter(prefix="/portal", include_in_schema=False)
F = Annotated[str, Form()]
Text = Annotated[str, Query(max_length=40)]


def _int(text: str, name: str) -> int:
    text = (text or "").strip()
    if not text.isdigit() or len(text) > 10:
        raise Problem(422, "invalid", name + " is a number", field=name)
    return int(text)


def _date(text: str, name: str) -> dt.date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise Problem(422, "invalid", name + " is YYYY-MM-DD", field=name) from exc


# ---- centers -----------------------------------------------------------------------------------------------
@router.get("/centers")
def centers_page(request: Request, zip: Text = "", service: Text = "") -> Response:
    """The locator: the nearest centers to a ZIP code, with distance, address and hours (open to anyone, as
    Help is). Reads only: an autocommit session (no BEGIN and ROLLBACK round trips)."""
    with read_session(request) as session:
        return _centers_page(request, session, zip, service)


def _centers_page(request: Request, session: Session, zip: str, service: str) -> Response:
    v = visitor(request, session)
    values: dict[str, Any] = {"zip": zip[:5], "service": service, "services": SELF_BOOKED + REQUESTED, "found": None}
    if zip:
        try:
            values["origin"], values["found"] = centers.find(session, zip, 10, service)
        except Problem as exc:
            return form_error(v, "service/centers.html", exc, **values)
    return render(v, "service/centers.html", **values)


@router.get("/centers/{center_id}")
def center_page(request: Request, session: SessionDep, center_id: int, date: Text = "") -> Response:
    """A center's free slots on a date (its local time); the booking form for a signed-in driver."""
    v = visitor(request, session)
    user = v.user if v.user is not None and not v.user.must_change_password else None
    c = centers.get(session, center_id)
    today = now().astimezone(centers.zone(c)).date()
    try:
        day = _date(date, "date") or today
    except Problem as exc:
        return form_error(v, "service/center.html", exc, c=c, day=today, slots=[], devices=[], kinds=())
    slots = centers.free_slots(session, c, day, now())
    devices = portal.devices(session, user) if user is not None else []
    kinds = [k for k in SELF_BOOKED if k in (c.services or [])]
    return render(v, "service/center.html", c=c, day=day, slots=slots, devices=devices, kinds=kinds,
                  prev_day=day - dt.timedelta(days=1), next_day=day + dt.timedelta(days=1))


# ---- appointments ------------------------------------------------------------------------------------------
def _appointments(v: Visitor, session: SessionDep, status: int = 200, **values: Any) -> Response:
    user = v.require("driver")
    up, past = appointments.listing(session, v.ctx, user)
    return render(v, "service/appointments.html", status, up=up, past=past, requested_kinds=REQUESTED,
                  devices=portal.devices(session, user), **values)


@router.get("/appointments")
def appointments_page(request: Request, session: SessionDep) -> Response:
    """Upcoming and past visits; requests for installation, removal, vehicle swap."""
    return _appointments(visitor(request, session), session)


@router.post("/appointments")
def book(request: Request, session: WriteSessionDep, center_id: F = "", kind: F = "", date: F = "",
         time: F = "", device_id: F = "", csrf: F = "") -> Response:
    """Book a calibration or inspection in a slot."""
    v = visitor(request, session)
    user = v.require("driver")

    def booked() -> Appointment:
        c = centers.get(session, _int(center_id, "center_id"))
        ts = centers.parse_start(c, date, time)
        return appointments.book(session, v.ctx, user, c.id, kind, ts, _int(device_id, "device_id") if device_id
                                 else None)

    return submit(v, session, csrf, booked, _to_appointment, lambda exc: _refused(v, session, exc))


def _to_appointment(a: Appointment) -> Response:
    return redirect("/portal/appointments/%d" % a.id)


def _refused(v: Visitor, session: SessionDep, exc: Problem, appt_id: int | None = None) -> Response:
    if exc.kind == "too-late":
        return render(v, "service/too_late.html", exc.status, e=exc.extra, appt_id=appt_id)
    if appt_id is not None:
        view = appointments.get(session, v.ctx, v.require("driver"), appt_id)
        return form_error(v, "service/appointment.html", exc, a=view, services=SERVICES)
    return form_error(v, "service/appointments.html", exc, **_list_values(v, session))


def _list_values(v: Visitor, session: SessionDep) -> dict[str, Any]:
    user = v.require("driver")
    up, past = appointments.listing(session, v.ctx, user)
    return {"up": up, "past": past, "requested_kinds": REQUESTED, "devices": portal.devices(session, user)}


@router.post("/appointments/requests")
def request_visit(request: Request, session: WriteSessionDep, kind: F = "", preferred_date: F = "",
                  note: F = "", device_id: F = "", csrf: F = "") -> Response:
    """Ask for an installation (preferred date), a removal or a vehicle swap."""
    v = visitor(request, session)
    user = v.require("driver")
    return submit(v, session, csrf,
                  lambda: appointments.request(session, v.ctx, user, kind, note,
                                               _date(preferred_date, "preferred_date"),
                                               device_id=_int(device_id, "device_id") if device_id else None),
                  _to_appointment, lambda exc: _refused(v, session, exc))


@router.get("/appointments/{appt_id}")
def appointment_page(request: Request, session: SessionDep, appt_id: int) -> Response:
    """One visit, in the center's local time, with the reschedule and cancel forms while allowed."""
    v = visitor(request, session)
    user = v.require("driver")
    return render(v, "service/appointment.html", a=appointments.get(session, v.ctx, user, appt_id),
                  services=SERVICES)


@router.post("/appointments/{appt_id}/reschedule")
def reschedule(request: Request, session: WriteSessionDep, appt_id: int, center_id: F = "", date: F = "",
               time: F = "", csrf: F = "") -> Response:
    """Move the visit (date, time or center); refused inside the cut-off, with whom to call."""
    v = visitor(request, session)
    user = v.require("driver")

    def moved() -> None:
        c = centers.get(session, _int(center_id, "center_id"))
        appointments.reschedule(session, v.ctx, user, appt_id, c.id, centers.parse_start(c, date, time))

    return submit(v, session, csrf, moved, lambda _: redirect("/portal/appointments/%d" % appt_id),
                  lambda exc: _refused(v, session, exc, appt_id))


@router.post("/appointments/{appt_id}/cancel")
def cancel(request: Request, session: WriteSessionDep, appt_id: int, csrf: F = "") -> Response:
    """Cancel the visit or the request; refused inside the cut-off."""
    v = visitor(request, session)
    user = v.require("driver")
    return submit(v, session, csrf, lambda: appointments.cancel(session, v.ctx, user, appt_id),
                  lambda _: redirect("/portal/appointments"), lambda exc: _refused(v, session, exc, appt_id))


# ---- the record --------------------------------------------------------------------------------------------
@router.get("/record/{link_id}")
def record_page(request: Request, link_id: int,
                kind: Annotated[list[str] | None, Query()] = None, since: Text = "", until: Text = "",
                before: Annotated[int | None, Query(ge=0, le=2**62)] = None) -> Response:
    """The device's record from its uploaded log, filtered; each violation with the state's rule. Reads only:
    an autocommit session (no BEGIN and ROLLBACK round trips)."""
    with read_session(request) as session:
        return _record_page(request, session, link_id, kind, since, until, before)


def _record_page(request: Request, session: Session, link_id: int, kind: list[str] | None, since: str, until: str,
                 before: int | None) -> Response:
    v = visitor(request, session)
    user = v.require("driver", "authority", "staff")
    try:
        kinds, s, u = timeline.parse_filters(kind or [], since, until)
    except Problem as exc:
        link = timeline.readable_device(session, user, link_id)
        return form_error(v, "records/record.html", exc, t=None, link=link, all_kinds=timeline.KINDS)
    t = timeline.timeline(session, user, link_id, kinds, s, u, before)
    return render(v, "records/record.html", t=t, link=t.link, all_kinds=timeline.KINDS, say=_say(v))


def _say(v: Visitor) -> object:
    tr = i18n.gettext_for(v.lang)
    return lambda e: timeline.words(e, tr.gettext)


@router.post("/record/{link_id}/disputes")
def dispute(request: Request, session: WriteSessionDep, link_id: int, seq: F = "", note: F = "",
            csrf: F = "") -> Response:
    """Dispute one event with a note (staff resolve it)."""
    v = visitor(request, session)
    user = v.require("driver")

    def refused(exc: Problem) -> Response:
        t = timeline.timeline(session, user, link_id)
        return form_error(v, "records/record.html", exc, t=t, link=t.link, all_kinds=timeline.KINDS, say=_say(v))

    return submit(v, session, csrf, lambda: timeline.dispute(session, user, link_id, _int(seq, "seq"), note),
                  lambda _: redirect("/portal/record/%d" % link_id), refused)


@router.get("/record/{link_id}/export")
def export(request: Request, session: SessionDep, link_id: int) -> Response:
    """The stored log as an export the log reader verifies (`log --raw`)."""
    v = visitor(request, session)
    user = v.require("driver", "authority", "staff")
    data = timeline.export(session, user, link_id)
    return Response(data, media_type="application/octet-stream", headers={
        "content-disposition": 'attachment; filename="record-%d.log"' % link_id})


# ---- the monitoring authority ------------------------------------------------------------------------------
@router.get("/authority")
def authority_home(request: Request, session: SessionDep) -> Response:
    """The authority's drivers with compliance at a glance."""
    v = visitor(request, session)
    user = v.require("authority", "staff")
    return render(v, "records/authority.html", rows=authority.drivers(session, user))


@router.get("/authority/drivers/{account_id}")
def authority_driver(request: Request, session: SessionDep, account_id: int) -> Response:
    """One assigned driver: compliance, devices (each with its record) and the report form."""
    v = visitor(request, session)
    user = v.require("authority", "staff")
    account = authority.assigned_account(session, user, account_id)
    return render(v, "records/driver.html", c=authority.compliance(session, account),
                  notes=documents.notes_of(session, account.id), today=now().date())


@router.get("/authority/drivers/{account_id}/report.pdf")
def authority_report(request: Request, session: SessionDep, account_id: int, since: Text = "",
                     until: Text = "") -> Response:
    """The compliance report of a period as a PDF."""
    v = visitor(request, session)
    user = v.require("authority", "staff")
    account = authority.assigned_account(session, user, account_id)
    try:
        _kinds, s, u = timeline.parse_filters([], since, until)
    except Problem as exc:
        return form_error(v, "records/driver.html", exc, c=authority.compliance(session, account),
                          notes=documents.notes_of(session, account.id), today=now().date())
    pdf = report.compliance_pdf(session, account, s, u)
    return Response(pdf, media_type="application/pdf", headers={
        "content-disposition": 'attachment; filename="compliance-%d.pdf"' % account.id})


# ---- staff -------------------------------------------------------------------------------------------------
def _staff_values(session: SessionDep) -> dict[str, Any]:
    return {"requests": appointments.open_requests(session), "disputes": timeline.open_disputes(session),
            "visits": appointments.due_visits(session),
            "centers": list(session.scalars(select(ServiceCenter).order_by(ServiceCenter.id).limit(200))),
            "authorities": list(session.scalars(select(User).where(User.role == "authority").order_by(User.id))),
            "services": SERVICES, "utc": lambda ts: dt.datetime.fromtimestamp(ts, dt.UTC)}


@router.get("/staff/service")
def staff_service(request: Request, session: SessionDep) -> Response:
    """Centers, requests to schedule, disputes to resolve, authority assignments, programs."""
    v = visitor(request, session)
    v.require("staff")
    return render(v, "service/staff.html", **_staff_values(session))


def _staff_form(request: Request, session: WriteSessionDep, csrf: str, action: Callable[[User], object]) -> Response:
    v = visitor(request, session)
    actor = v.require("staff")
    return submit(v, session, csrf, lambda: action(actor), lambda _: redirect("/portal/staff/service"),
                  lambda exc: form_error(v, "service/staff.html", exc, **_staff_values(session)))


@router.post("/staff/centers")
def staff_center(request: Request, session: WriteSessionDep, name: F = "", address: F = "", zip: F = "",
                 phone: F = "", opens: F = "09:00", closes: F = "17:00", days: F = "mon tue wed thu fri",
                 capacity: F = "1", slot_minutes: F = "30", services: F = "calibration inspection",
                 csrf: F = "") -> Response:
    """Add a center (hours the same on the days given)."""
    hours = {d: [opens, closes] for d in days.split()}
    return _staff_form(request, session, csrf, lambda actor: centers.create_center(
        session, actor, name, address, zip, hours, services.split(), _int(capacity, "capacity"),
        _int(slot_minutes, "slot_minutes"), phone))


@router.post("/staff/appointments/{appt_id}/approve")
def staff_approve(request: Request, session: WriteSessionDep, appt_id: int, center_id: F = "", date: F = "",
                  time: F = "", csrf: F = "") -> Response:
    """Schedule a requested visit in a slot."""
    def act(actor: User) -> None:
        c = centers.get(session, _int(center_id, "center_id"))
        appointments.approve(session, request.app.state.portal, actor, appt_id, c.id,
                             centers.parse_start(c, date, time))
    return _staff_form(request, session, csrf, act)


@router.post("/staff/appointments/{appt_id}/decline")
def staff_decline(request: Request, session: WriteSessionDep, appt_id: int, why: F = "", csrf: F = "") -> Response:
    """Decline a request."""
    return _staff_form(request, session, csrf, lambda actor: appointments.decline(session, actor, appt_id, why))


@router.post("/staff/appointments/{appt_id}/complete")
def staff_complete(request: Request, session: WriteSessionDep, appt_id: int, csrf: F = "") -> Response:
    """Record a visit as done (a calibration or inspection moves the next inspection date)."""
    return _staff_form(request, session, csrf, lambda actor: appointments.complete(session, actor, appt_id))


@router.post("/staff/appointments/{appt_id}/missed")
def staff_missed(request: Request, session: WriteSessionDep, appt_id: int, csrf: F = "") -> Response:
    """Record that the driver did not come (a missed service)."""
    return _staff_form(request, session, csrf, lambda actor: appointments.missed(session, actor, appt_id))


@router.post("/staff/disputes/{dispute_id}")
def staff_dispute(request: Request, session: WriteSessionDep, dispute_id: int, outcome: F = "",
                  resolution: F = "", csrf: F = "") -> Response:
    """Resolve a dispute."""
    return _staff_form(request, session, csrf, lambda actor: timeline.resolve(
        session, actor, dispute_id, outcome == "upheld", resolution))


@router.post("/staff/assignments")
def staff_assign(request: Request, session: WriteSessionDep, authority_id: F = "", account_id: F = "",
                 csrf: F = "") -> Response:
    """Assign a driver's account to an authority user."""
    return _staff_form(request, session, csrf, lambda actor: authority.assign(
        session, actor, _int(authority_id, "authority_id"), _int(account_id, "account_id")))


@router.post("/staff/programs")
def staff_program(request: Request, session: WriteSessionDep, account_id: F = "", jurisdiction: F = "",
                  ends_on: F = "", module_lock: F = "", starts_on: F = "", csrf: F = "") -> Response:
    """Set an account's state, program start and end dates, and whether an unreturned module locks."""
    return _staff_form(request, session, csrf, lambda actor: authority.set_program(
        session, actor, _int(account_id, "account_id"), jurisdiction, _date(ends_on, "ends_on"),
        module_lock == "on", _date(starts_on, "starts_on")))


# ---- documents and notes -----------------------------------------------------------------------------------
def _documents(v: Visitor, session: SessionDep, account_id: int | None = None, status: int = 200,
               **values: Any) -> Response:
    user = v.require("driver", "authority", "staff")
    docs = documents.listing(session, user, account_id)
    notes = documents.notes_of(session, user.account_id) if user.role == "driver" and user.account_id else []
    return render(v, "service/documents.html", status, docs=docs, notes=notes,
                  max_mb=v.ctx.ps.DOCUMENT_MAX_BYTES // (1024 * 1024), **values)


@router.get("/documents")
def documents_page(request: Request, session: SessionDep,
                   account_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Response:
    """The account's documents (a driver's own; authority and staff name the account) and the notes."""
    return _documents(visitor(request, session), session, account_id)


@router.post("/documents")
async def upload(request: Request, session: WriteSessionDep) -> Response:
    """Upload a PDF, JPEG or PNG (by content; size-limited before the body is read)."""
    v = visitor(request, session)
    user = v.require("driver")
    form = await request.form(max_files=1, max_fields=4)
    f, csrf = form.get("file"), form.get("csrf")
    try:
        data = await f.read(v.ctx.ps.DOCUMENT_MAX_BYTES + 1) if f is not None and not isinstance(f, str) else None
    finally:
        await form.close()

    def store() -> None:
        if data is None or f is None or isinstance(f, str):
            raise Problem(422, "empty-file", "choose a file", field="file")
        documents.upload(session, v.ctx.ps, user, data, f.filename or "")

    return submit(v, session, csrf if isinstance(csrf, str) else "", store, _to_documents, _documents_again(v, session))


def _to_documents(_: object) -> Response:
    return redirect("/portal/documents")


def _documents_again(v: Visitor, session: SessionDep) -> Callable[[Problem], Response]:
    return lambda exc: _documents(v, session, None, exc.status, error=problem_words(v, exc))


@router.get("/documents/{doc_id}")
def download(request: Request, session: SessionDep, doc_id: int) -> Response:
    """A document's bytes, as an attachment with the server's own file name."""
    v = visitor(request, session)
    user = v.require("driver", "authority", "staff")
    d = documents.get(session, user, doc_id)
    return Response(documents.read(v.ctx.ps, d), media_type=documents.MEDIA[d.kind], headers={
        "content-disposition": 'attachment; filename="document-%d.%s"' % (d.id, "jpg" if d.kind == "jpeg" else d.kind)})


@router.post("/documents/{doc_id}/delete")
def delete_document(request: Request, session: WriteSessionDep, doc_id: int, csrf: F = "") -> Response:
    """Staff delete a document."""
    v = visitor(request, session)
    actor = v.require("staff")
    return submit(v, session, csrf, lambda: documents.delete(session, v.ctx.ps, actor, doc_id),
                  lambda d: redirect("/portal/documents?account_id=%d" % d.account_id))


@router.post("/notes")
def note(request: Request, session: WriteSessionDep, body: F = "", csrf: F = "") -> Response:
    """A note to the monitoring authority."""
    v = visitor(request, session)
    user = v.require("driver")
    return submit(v, session, csrf, lambda: documents.add_note(session, user, body), _to_documents,
                  _documents_again(v, session))


# ---- module shipments --------------------------------------------------------------------------------------
@router.get("/shipments")
def shipments_page(request: Request, session: SessionDep) -> Response:
    """The driver's module shipments (tracking, return label, status) and the one-time address form."""
    v = visitor(request, session)
    user = v.require("driver")
    return render(v, "service/shipments.html", items=shipments.listing(session, user), date_of=timebase.date_of)


@router.post("/shipments/address")
def shipment_address(request: Request, session: WriteSessionDep, address: F = "", csrf: F = "") -> Response:
    """Send the next module to a one-time address."""
    v = visitor(request, session)
    user = v.require("driver")
    return submit(v, session, csrf, lambda: shipments.one_time_address(session, user, address),
                  lambda _: redirect("/portal/shipments"),
                  lambda exc: form_error(v, "service/shipments.html", exc, items=shipments.listing(session, user),
                                         date_of=timebase.date_of))


@router.get("/staff/shipments")
def staff_shipments(request: Request, session: SessionDep) -> Response:
    """Open shipments: mark shipped (tracking, module serial), delivered, returned or lost."""
    v = visitor(request, session)
    v.require("staff")
    return render(v, "service/staff_shipments.html", items=shipments.open_shipments(session),
                  date_of=timebase.date_of)


@router.post("/staff/shipments/{shipment_id}")
def staff_shipment(request: Request, session: WriteSessionDep, shipment_id: int, status: F = "",
                   tracking: F = "", module_serial: F = "", csrf: F = "") -> Response:
    """Move a shipment on."""
    v = visitor(request, session)
    actor = v.require("staff")
    return submit(v, session, csrf,
                  lambda: shipments.mark(session, v.ctx.ps, actor, shipment_id, status, tracking,
                                         _int(module_serial, "module_serial") if module_serial else 0),
                  lambda _: redirect("/portal/staff/shipments"),
                  lambda exc: form_error(v, "service/staff_shipments.html", exc,
                                         items=shipments.open_shipments(session), date_of=timebase.date_of))
