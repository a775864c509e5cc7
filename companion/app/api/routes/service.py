"""The portal JSON API of service centers, appointments, the record, documents and the authority's view:
the same services the pages call (companion/app/service, companion/app/records)."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, UploadFile
from fastapi.responses import Response

from companion.app import i18n
from companion.app.api.deps import SessionDep, WriteSessionDep
from companion.app.api.routes.portal import PortalDep, UserDep, WriteUserDep
from companion.app.core import problems, timebase
from companion.app.core.problems import Problem
from companion.app.records import authority, report, timeline
from companion.app.service import appointments, centers, documents, shipments
from companion.app.service.models import ServiceCenter
from companion.app.service.schemas import (
    AddressOnce,
    AppointmentPublic,
    Booking,
    CenterFound,
    CenterPublic,
    CompliancePublic,
    DisputeCreate,
    DisputePublic,
    DocumentPublic,
    EventPublic,
    Move,
    NoteCreate,
    NotePublic,
    RecordPublic,
    RulePublic,
    ShipmentPublic,
    SlotPublic,
    VisitRequest,
)

router = APIRouter(prefix="/portal", tags=["portal-service"], responses=problems.responses(
    401, 403, r401="no valid bearer access token", r403="not allowed (e.g. the password must be changed)"))
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
DateQ = Annotated[str, Query(max_length=10)]


def _center(c: ServiceCenter) -> CenterPublic:
    return CenterPublic(id=c.id, name=c.name, address=c.address, zip=c.zip, tz=c.tz, phone=c.phone,
                        hours=dict(c.hours or {}), services=list(c.services or []), capacity=c.capacity,
                        slot_minutes=c.slot_minutes)


def _appt(v: appointments.AppointmentView) -> AppointmentPublic:
    a = v.appt
    return AppointmentPublic(id=a.id, kind=a.kind, status=a.status, center_id=a.center_id, device_id=a.device_id,
                             start=dt.datetime.fromtimestamp(a.starts_ts, dt.UTC) if a.starts_ts else None,
                             local=v.local.isoformat() if v.local else None, preferred_date=a.preferred_date,
                             note=a.note, can_change=v.can_change)


def _ts(start: dt.datetime) -> int:
    if start.timestamp() != int(start.timestamp()):
        raise Problem(422, "outside-hours", "the center has no slot at that time", field="start")
    return int(start.timestamp())


# ---- centers -----------------------------------------------------------------------------------------------
@router.get("/centers")
def find_centers(session: SessionDep, user: UserDep, zip: Annotated[str, Query(max_length=10)],
                 service: Annotated[str, Query(max_length=20)] = "",
                 limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[CenterFound]:
    """The nearest service centers to a US ZIP code, with distances in miles (422: no such ZIP code)."""
    _origin, found = centers.find(session, zip, limit, service)
    return [CenterFound(center=_center(f.center), miles=f.miles) for f in found]


@router.get("/centers/{center_id}/slots")
def center_slots(session: SessionDep, user: UserDep, center_id: ItemId, date: DateQ) -> list[SlotPublic]:
    """The free slots of a date (the center's local date)."""
    c = centers.get(session, center_id)
    try:
        day = dt.date.fromisoformat(date)
    except ValueError as exc:
        raise Problem(422, "invalid", "the date is YYYY-MM-DD", field="date") from exc
    return [SlotPublic(start=dt.datetime.fromtimestamp(s.ts, dt.UTC), local=s.local.isoformat(), free=s.free)
            for s in centers.free_slots(session, c, day, dt.datetime.now(dt.UTC))]


# ---- appointments ------------------------------------------------------------------------------------------
@router.get("/appointments")
def list_appointments(session: SessionDep, ctx: PortalDep, user: UserDep) -> list[AppointmentPublic]:
    """Upcoming and requested visits, then past ones."""
    up, past = appointments.listing(session, ctx, user)
    return [_appt(v) for v in up + past]


@router.post("/appointments", status_code=201, responses=problems.responses(409, 422))
def book(session: WriteSessionDep, ctx: PortalDep, user: WriteUserDep, data: Booking) -> AppointmentPublic:
    """Book a calibration or inspection (409 slot-full when the last place just went)."""
    a = appointments.book(session, ctx, user, data.center_id, data.kind, _ts(data.start), data.device_id)
    session.commit()
    return _appt(appointments.get(session, ctx, user, a.id))


@router.get("/appointments/{appt_id}")
def appointment(session: SessionDep, ctx: PortalDep, user: UserDep, appt_id: ItemId) -> AppointmentPublic:
    """One appointment."""
    return _appt(appointments.get(session, ctx, user, appt_id))


@router.post("/appointments/{appt_id}/reschedule", responses=problems.responses(409, 422))
def reschedule(session: WriteSessionDep, ctx: PortalDep, user: WriteUserDep, appt_id: ItemId,
               data: Move) -> AppointmentPublic:
    """Move a visit; 409 too-late inside the cut-off (the problem names the center and its phone)."""
    appointments.reschedule(session, ctx, user, appt_id, data.center_id, _ts(data.start))
    session.commit()
    return _appt(appointments.get(session, ctx, user, appt_id))


@router.post("/appointments/{appt_id}/cancel", responses=problems.responses(409))
def cancel(session: WriteSessionDep, ctx: PortalDep, user: WriteUserDep, appt_id: ItemId) -> AppointmentPublic:
    """Cancel a visit or a request; 409 too-late inside the cut-off."""
    appointments.cancel(session, ctx, user, appt_id)
    session.commit()
    return _appt(appointments.get(session, ctx, user, appt_id))


@router.post("/appointment-requests", status_code=201, responses=problems.responses(409, 422))
def request_visit(session: WriteSessionDep, ctx: PortalDep, user: WriteUserDep,
                  data: VisitRequest) -> AppointmentPublic:
    """Ask for an installation (preferred date), a removal or a vehicle swap; staff schedule it."""
    a = appointments.request(session, ctx, user, data.kind, data.note, data.preferred_date, None, data.device_id)
    session.commit()
    return _appt(appointments.get(session, ctx, user, a.id))


# ---- the record --------------------------------------------------------------------------------------------
@router.get("/devices/{device_id}/record")
def record(session: SessionDep, user: UserDep, device_id: ItemId,
           kind: Annotated[list[str] | None, Query(max_length=5)] = None, since: DateQ = "", until: DateQ = "",
           before: Annotated[int | None, Query(ge=0, le=2**62)] = None) -> RecordPublic:
    """A page of the device's record (newest first), each violation with the rule of the driver's state."""
    kinds, s, u = timeline.parse_filters(kind or [], since, until)
    t = timeline.timeline(session, user, device_id, kinds, s, u, before)
    say = i18n.gettext_for(user.language).gettext
    return RecordPublic(device_id=t.link.id, state=t.state, counts=t.counts, before=t.before, events=[
        EventPublic(seq=e.seq, at=e.at, kind=e.kind, text=timeline.words(e, say),
                    rule=RulePublic(state=e.rule.state, citation=e.rule.citation, says=e.rule.says) if e.rule else None,
                    dispute=e.dispute.status if e.dispute else None) for e in t.events])


@router.post("/devices/{device_id}/record/disputes", status_code=201, responses=problems.responses(409, 422))
def dispute(session: WriteSessionDep, user: WriteUserDep, device_id: ItemId, data: DisputeCreate) -> DisputePublic:
    """Dispute a violation or lockout of the record (once per event); staff resolve it."""
    d = timeline.dispute(session, user, device_id, data.seq, data.note)
    session.commit()
    return DisputePublic(id=d.id, seq=d.seq, status=d.status, note=d.note, resolution=d.resolution)


@router.get("/devices/{device_id}/record/export", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def export(session: SessionDep, user: UserDep, device_id: ItemId) -> Response:
    """The stored log as a service-port export (the log reader of the simulator verifies it with `log --raw`)."""
    return Response(timeline.export(session, user, device_id), media_type="application/octet-stream")


# ---- documents and notes -----------------------------------------------------------------------------------
def _doc(d: documents.Document) -> DocumentPublic:
    return DocumentPublic(id=d.id, kind=d.kind, title=d.title, size=d.size, sha256=d.sha256, created_at=d.created_at)


@router.get("/documents")
def list_documents(session: SessionDep, user: UserDep,
                   account_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> list[DocumentPublic]:
    """The driver's documents (authority and staff: an account they may read)."""
    return [_doc(d) for d in documents.listing(session, user, account_id)]


@router.post("/documents", status_code=201, responses=problems.responses(413, 415, 422))
async def upload(session: WriteSessionDep, ctx: PortalDep, user: WriteUserDep, file: UploadFile) -> DocumentPublic:
    """Upload a PDF, JPEG or PNG (by content; at most DOCUMENT_MAX_BYTES, refused from the headers beyond)."""
    data = await file.read(ctx.ps.DOCUMENT_MAX_BYTES + 1)
    d = documents.upload(session, ctx.ps, user, data, file.filename or "")
    session.commit()
    return _doc(d)


@router.get("/documents/{doc_id}", response_class=Response,
            responses={200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}}})
def download(session: SessionDep, ctx: PortalDep, user: UserDep, doc_id: ItemId) -> Response:
    """A document's bytes."""
    d = documents.get(session, user, doc_id)
    return Response(documents.read(ctx.ps, d), media_type=documents.MEDIA[d.kind])


@router.post("/notes", status_code=201, responses=problems.responses(422))
def note(session: WriteSessionDep, user: WriteUserDep, data: NoteCreate) -> NotePublic:
    """A note to the monitoring authority."""
    n = documents.add_note(session, user, data.body)
    session.commit()
    return NotePublic(id=n.id, body=n.body, created_at=n.created_at)


# ---- the monitoring authority ------------------------------------------------------------------------------
def _compliance(c: authority.Compliance) -> CompliancePublic:
    return CompliancePublic(account_id=c.account.id, name=c.name, state=c.state, device_ids=[d.id for d in c.devices],
                            violations=c.violations, lockouts=c.lockouts, missed_services=c.missed_services,
                            module_returns_late=c.module_returns_late, out_of_compliance=c.out_of_compliance,
                            ends_on=c.ends_on)


@router.get("/authority/drivers")
def drivers(session: SessionDep, user: UserDep) -> list[CompliancePublic]:
    """The authority's drivers at a glance (404 for drivers)."""
    return [_compliance(c) for c in authority.drivers(session, user)]


@router.get("/authority/drivers/{account_id}/report.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def driver_report(session: SessionDep, user: UserDep, account_id: ItemId, since: DateQ = "",
                  until: DateQ = "") -> Response:
    """The compliance report of a period (PDF)."""
    account = authority.assigned_account(session, user, account_id)
    _k, s, u = timeline.parse_filters([], since, until)
    return Response(report.compliance_pdf(session, account, s, u), media_type="application/pdf")


# ---- module shipments --------------------------------------------------------------------------------------
@router.get("/shipments")
def list_shipments(session: SessionDep, user: UserDep) -> list[ShipmentPublic]:
    """The driver's module shipments, newest first."""
    return [ShipmentPublic(id=s.id, status=s.status, expires=timebase.date_of(s.for_expiry_day),
                           tracking=s.tracking, return_label=s.return_label, address=s.address,
                           overdue=s.overdue_at is not None) for s in shipments.listing(session, user)]


@router.put("/shipments/address", status_code=204, responses=problems.responses(422))
def shipment_address(session: WriteSessionDep, user: WriteUserDep, data: AddressOnce) -> None:
    """Send the next module to a one-time address."""
    shipments.one_time_address(session, user, data.address)
    session.commit()
