"""Appointments: drivers book calibration and inspection visits in free slots and reschedule them (never
within the cut-off, 24 h by default, before the visit); installation, removal and vehicle swaps are requests
staff schedule. Slot capacity is one conditional UPDATE per booking, so it holds under concurrent bookings on
both databases. The next service date is the handset's desired state (what its INSPECTION DUE counts to)."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from companion.app import crud
from companion.app.accounts.models import DeviceLink, User
from companion.app.accounts.services import audit
from companion.app.core import timebase
from companion.app.core.problems import Problem
from companion.app.models import Account, Handset
from companion.app.notifications import services as notes
from companion.app.portal.config import PortalSettings
from companion.app.portal.context import PortalContext
from companion.app.records import classes as vclasses
from companion.app.schemas import DesiredUpdate
from companion.app.service import centers
from companion.app.service.models import (
    REQUESTED,
    SELF_BOOKED,
    SERVICES,
    Appointment,
    CenterSlot,
    Program,
    ServiceCenter,
)

OPEN = ("requested", "booked")
NOT_FOUND = "no such appointment on your account"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---- slot capacity -----------------------------------------------------------------------------------------
def take_slot(session: Session, center: ServiceCenter, ts: int) -> None:
    """Take one place of a slot or refuse (409 slot-full). The slot's row is made on first use (a concurrent
    first insert loses to the unique key and goes on to the UPDATE); the UPDATE only counts up while places
    are left, and the database serialises updates of one row, so the last place goes to exactly one caller."""
    if session.get(CenterSlot, (center.id, ts)) is None:
        try:
            with session.begin_nested():
                session.add(CenterSlot(center_id=center.id, starts_ts=ts, booked=0))
                session.flush()
        except IntegrityError:
            pass
    done = session.execute(update(CenterSlot).where(CenterSlot.center_id == center.id, CenterSlot.starts_ts == ts,
                                                    CenterSlot.booked < center.capacity)
                           .values(booked=CenterSlot.booked + 1).execution_options(synchronize_session=False))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Problem(409, "slot-full", "that slot has just been taken: choose another")


def release_slot(session: Session, center_id: int, ts: int) -> None:
    """Give a place back."""
    session.execute(update(CenterSlot).where(CenterSlot.center_id == center_id, CenterSlot.starts_ts == ts,
                                             CenterSlot.booked > 0)
                    .values(booked=CenterSlot.booked - 1).execution_options(synchronize_session=False))


# ---- what the driver sees ----------------------------------------------------------------------------------
@dataclass
class AppointmentView:
    """An appointment with its center and its time in the center's zone."""

    appt: Appointment
    center: ServiceCenter | None
    local: dt.datetime | None
    device_label: str
    can_change: bool  # outside the cut-off and still open


def _view(session: Session, ctx: PortalContext, a: Appointment, now: dt.datetime) -> AppointmentView:
    c = session.get(ServiceCenter, a.center_id) if a.center_id else None
    loc = centers.local(c, a.starts_ts) if c is not None and a.starts_ts else None
    link = session.get(DeviceLink, a.device_id) if a.device_id else None
    change = a.status == "requested" or (a.status == "booked" and a.starts_ts is not None
                                         and a.starts_ts - now.timestamp() >= ctx.ps.RESCHEDULE_CUTOFF_H * 3600)
    return AppointmentView(a, c, loc, link.label if link else "", change)


def _account_id(user: User) -> int:
    if user.role != "driver" or not user.account_id:
        raise Problem(404, "not-found", "no account")
    return user.account_id


def listing(session: Session, ctx: PortalContext, user: User) -> tuple[list[AppointmentView], list[AppointmentView]]:
    """(upcoming and requested, past and closed) appointments of the driver's account."""
    aid = _account_id(user)
    now = _now()
    rows = list(session.scalars(select(Appointment).where(Appointment.account_id == aid)
                                .order_by(Appointment.starts_ts, Appointment.id)))
    up, past = [], []
    for a in rows:
        v = _view(session, ctx, a, now)
        if a.status == "requested" or (a.status == "booked" and (a.starts_ts or 0) > now.timestamp()):
            up.append(v)
        else:
            past.append(v)
    past.reverse()
    return up, past


def get(session: Session, ctx: PortalContext, user: User, appt_id: int) -> AppointmentView:
    """One of the driver's appointments (another account's id: 404)."""
    a = session.get(Appointment, appt_id) if 0 < appt_id < 2**31 else None
    if a is None or user.role != "driver" or a.account_id != user.account_id:
        raise Problem(404, "not-found", NOT_FOUND)
    return _view(session, ctx, a, _now())


def _device(session: Session, user: User, device_id: int | None) -> DeviceLink | None:
    if device_id is None:
        return None
    link = session.get(DeviceLink, device_id) if 0 < device_id < 2**31 else None
    if link is None or link.account_id != user.account_id:
        raise Problem(404, "not-found", "no such device on your account", field="device_id")
    return link


def _words(session: Session, a: Appointment) -> dict[str, str]:
    c = session.get(ServiceCenter, a.center_id) if a.center_id else None
    when = centers.local(c, a.starts_ts).strftime("%Y-%m-%d %H:%M %Z") if c and a.starts_ts else ""
    return {"what": a.kind, "center": c.name if c else "", "when": when}


# ---- driver actions ----------------------------------------------------------------------------------------
def book(session: Session, ctx: PortalContext, user: User, center_id: int, kind: str, ts: int,
         device_id: int | None = None) -> Appointment:
    """Book a calibration or inspection visit in a free slot of a center."""
    aid = _account_id(user)
    if kind not in SELF_BOOKED:
        raise Problem(422, "request-only", "%s visits are requested, and staff schedule them" % kind
                      if kind in SERVICES else "unknown service", field="kind")
    link = _device(session, user, device_id)
    c = centers.get(session, center_id)
    if kind not in (c.services or []):
        raise Problem(422, "not-offered", "this center does not offer %s visits" % kind, field="kind")
    centers.check_slot(c, ts, _now())
    # one open visit of a kind per device (or per account without one): no driver holds a center's places
    same = select(Appointment.id).where(Appointment.account_id == aid, Appointment.kind == kind,
                                        Appointment.status == "booked")
    same = same.where(Appointment.device_id == link.id) if link else same.where(Appointment.device_id.is_(None))
    if session.scalar(same.limit(1)) is not None:
        raise Problem(409, "already-booked", "a %s visit is booked already: reschedule or cancel it" % kind,
                      field="kind")
    take_slot(session, c, ts)
    a = Appointment(account_id=aid, device_id=link.id if link else None, center_id=c.id, kind=kind,
                    status="booked", starts_ts=ts, created_by=user.id, note="")
    session.add(a)
    session.flush()
    notes.notify(session, user, "appointment-booked", _words(session, a),
                 link="/portal/appointments/%d" % a.id, base_url=ctx.ps.BASE_URL)
    audit(session, user, user, "appointment-booked", appointment=a.id, center=c.id, start=ts)
    return a


class TooLate(Problem):
    """A change inside the cut-off: says why, and whom to call."""

    def __init__(self, hours: int, center: ServiceCenter | None):
        who = ("call %s at %s" % (center.name, center.phone)) if center and center.phone else "call the center"
        super().__init__(409, "too-late", "appointments cannot be changed within %d hours of their start: %s"
                         % (hours, who), center=center.name if center else "",
                         phone=center.phone if center else "", hours=hours)


def _changeable(session: Session, ctx: PortalContext, user: User, appt_id: int) -> AppointmentView:
    v = get(session, ctx, user, appt_id)
    if v.appt.status not in OPEN:
        raise Problem(409, "closed", "this appointment is %s" % v.appt.status)
    if not v.can_change:
        raise TooLate(ctx.ps.RESCHEDULE_CUTOFF_H, v.center)
    return v


def reschedule(session: Session, ctx: PortalContext, user: User, appt_id: int, center_id: int, ts: int
               ) -> Appointment:
    """Move a booked visit to another slot (and maybe another center); refused inside the cut-off."""
    v = _changeable(session, ctx, user, appt_id)
    a = v.appt
    if a.status != "booked":
        raise Problem(409, "closed", "staff schedule requested visits")
    c = centers.get(session, center_id)
    if a.kind not in (c.services or []):
        raise Problem(422, "not-offered", "this center does not offer %s visits" % a.kind, field="center_id")
    centers.check_slot(c, ts, _now())
    if (c.id, ts) == (a.center_id, a.starts_ts):
        return a
    old = (a.center_id, a.starts_ts)
    _claim(session, a, center_id=c.id, starts_ts=ts, updated_at=_now())
    take_slot(session, c, ts)
    if old[0] is not None and old[1] is not None:
        release_slot(session, old[0], old[1])
    session.flush()
    notes.notify(session, user, "appointment-changed", _words(session, a),
                 link="/portal/appointments/%d" % a.id, base_url=ctx.ps.BASE_URL)
    audit(session, user, user, "appointment-moved", appointment=a.id, old=list(old), new=[c.id, ts])
    return a


def _claim(session: Session, a: Appointment, **values: object) -> None:
    """Change the appointment only if it is still as this request read it (one conditional UPDATE): of two
    requests that read it alike (two clicks), the second is refused, so a place is never given back twice."""
    same = [Appointment.id == a.id, Appointment.status == a.status,
            Appointment.center_id == a.center_id if a.center_id is not None else Appointment.center_id.is_(None),
            Appointment.starts_ts == a.starts_ts if a.starts_ts is not None else Appointment.starts_ts.is_(None)]
    done = session.execute(update(Appointment).where(*same).values(**values)
                           .execution_options(synchronize_session=False))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Problem(409, "closed", "this appointment has just been changed: look at it again")
    for k, v in values.items():
        set_committed_value(a, k, v)


def cancel(session: Session, ctx: PortalContext, user: User, appt_id: int) -> Appointment:
    """Cancel a visit or a request; refused inside the cut-off."""
    a = _changeable(session, ctx, user, appt_id).appt
    was = a.status
    _claim(session, a, status="cancelled", updated_at=_now())
    if was == "booked" and a.center_id is not None and a.starts_ts is not None:
        release_slot(session, a.center_id, a.starts_ts)
    session.flush()
    audit(session, user, user, "appointment-cancelled", appointment=a.id)
    return a


def request(session: Session, ctx: PortalContext, user: User, kind: str, note: str = "",
            preferred: dt.date | None = None, center_id: int | None = None,
            device_id: int | None = None) -> Appointment:
    """Ask for an installation (with a preferred date), a removal or a vehicle swap: staff schedule it."""
    aid = _account_id(user)
    if kind not in REQUESTED:
        raise Problem(422, "invalid", "requests are for " + ", ".join(REQUESTED), field="kind")
    note = (note or "").strip()
    if len(note) > 500 or any(ord(ch) < 32 and ch != "\n" for ch in note):
        raise Problem(422, "invalid", "the note is at most 500 characters of text", field="note")
    if kind == "installation":
        if preferred is None:
            raise Problem(422, "invalid", "an installation needs a preferred date", field="preferred_date")
    if preferred is not None and not (timebase.today() < preferred <= timebase.today()
                                      + dt.timedelta(days=centers.MAX_DAYS_AHEAD)):
        raise Problem(422, "past-time", "the preferred date is from tomorrow to %d days ahead"
                      % centers.MAX_DAYS_AHEAD, field="preferred_date")
    c = centers.get(session, center_id) if center_id else None
    if c is not None and kind not in (c.services or []):
        raise Problem(422, "not-offered", "this center does not offer %s visits" % kind, field="center_id")
    link = _device(session, user, device_id)
    if session.scalar(select(Appointment.id).where(Appointment.account_id == aid, Appointment.kind == kind,
                                                   Appointment.status == "requested")) is not None:
        raise Problem(409, "already-requested", "a %s request is open already" % kind, field="kind")
    a = Appointment(account_id=aid, device_id=link.id if link else None, center_id=c.id if c else None, kind=kind,
                    status="requested", starts_ts=None, preferred_date=preferred, note=note, created_by=user.id)
    session.add(a)
    session.flush()
    audit(session, user, user, "appointment-requested", appointment=a.id, kind=kind)
    return a


# ---- staff -------------------------------------------------------------------------------------------------
def open_requests(session: Session) -> list[Appointment]:
    """Requests waiting for staff, oldest first."""
    return list(session.scalars(select(Appointment).where(Appointment.status == "requested")
                                .order_by(Appointment.id)))


def _staff_get(session: Session, appt_id: int) -> Appointment:
    a = session.get(Appointment, appt_id) if 0 < appt_id < 2**31 else None
    if a is None:
        raise Problem(404, "not-found", "no such appointment")
    return a


def _drivers(session: Session, account_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.account_id == account_id, User.role == "driver",
                                                   User.active.is_(True))))


def approve(session: Session, ctx: PortalContext, actor: User, appt_id: int, center_id: int, ts: int
            ) -> Appointment:
    """Staff schedule a requested visit in a slot (capacity holds here too)."""
    a = _staff_get(session, appt_id)
    if a.status != "requested":
        raise Problem(409, "closed", "only a requested visit is approved")
    c = centers.get(session, center_id)
    if a.kind not in (c.services or []):
        raise Problem(422, "not-offered", "this center does not offer %s visits" % a.kind, field="center_id")
    centers.check_slot(c, ts, _now())
    take_slot(session, c, ts)
    a.center_id, a.starts_ts, a.status, a.decided_by, a.updated_at = c.id, ts, "booked", actor.id, _now()
    session.flush()
    for user in _drivers(session, a.account_id):
        notes.notify(session, user, "appointment-booked", _words(session, a),
                     link="/portal/appointments/%d" % a.id, base_url=ctx.ps.BASE_URL)
    audit(session, actor, None, "appointment-approved", appointment=a.id, center=c.id, start=ts)
    return a


def decline(session: Session, actor: User, appt_id: int, why: str) -> Appointment:
    """Staff decline a request."""
    a = _staff_get(session, appt_id)
    if a.status != "requested":
        raise Problem(409, "closed", "only a requested visit is declined")
    a.status, a.decided_by, a.note, a.updated_at = "declined", actor.id, (why or "")[:500], _now()
    session.flush()
    audit(session, actor, None, "appointment-declined", appointment=a.id)
    return a


def complete(session: Session, actor: User, appt_id: int) -> Appointment:
    """Staff record a visit as done. A calibration or inspection moves the device's next inspection date in
    its desired state by the service interval of the state preset its handset runs (the account's service
    period when it runs none): the date the dashboard shows and the handset's INSPECTION DUE counts to, one
    field."""
    a = _staff_get(session, appt_id)
    if a.status != "booked" or a.starts_ts is None:
        raise Problem(409, "closed", "only a booked visit is completed")
    a.status, a.updated_at = "done", _now()
    if a.kind in SELF_BOOKED:
        account = session.get(Account, a.account_id)
        default = account.service_period_days if account else 30
        visit = dt.datetime.fromtimestamp(a.starts_ts, dt.UTC).date()
        for h in _handsets(session, a):
            preset = vclasses.device_preset(h.preset)
            period = preset.params["service_days"].value if preset is not None else default
            crud.set_desired(session, h, DesiredUpdate(inspection_due=visit + dt.timedelta(days=period)))
    session.flush()
    audit(session, actor, None, "appointment-done", appointment=a.id)
    return a


def missed(session: Session, actor: User, appt_id: int) -> Appointment:
    """Staff record that the driver did not come to a booked visit (it counts against compliance)."""
    a = _staff_get(session, appt_id)
    if a.status != "booked" or a.starts_ts is None:
        raise Problem(409, "closed", "only a booked visit is missed")
    if a.starts_ts > _now().timestamp():
        raise Problem(409, "closed", "the visit has not started yet")
    a.status, a.updated_at = "missed", _now()
    session.flush()
    audit(session, actor, None, "appointment-missed", appointment=a.id)
    return a


def due_visits(session: Session, now: dt.datetime | None = None) -> list[Appointment]:
    """Booked visits from a week ago to a day ahead that staff still have to close (done or missed)."""
    t = int((now or _now()).timestamp())
    return list(session.scalars(select(Appointment).where(
        Appointment.status == "booked", Appointment.starts_ts >= t - 7 * 86400, Appointment.starts_ts <= t + 86400)
        .order_by(Appointment.starts_ts)))


def _handsets(session: Session, a: Appointment) -> list[Handset]:
    q = select(Handset).join(DeviceLink, DeviceLink.handset_id == Handset.id).where(
        DeviceLink.account_id == a.account_id)
    if a.device_id is not None:
        q = q.where(DeviceLink.id == a.device_id)
    return list(session.scalars(q))


# ---- the dashboard's next service --------------------------------------------------------------------------
@dataclass
class NextService:
    """The next physical service: the due date from the handsets' desired state, and the visit booked."""

    due: dt.date | None
    visit: AppointmentView | None


def next_service_of(ctx: PortalContext, rows: Sequence[Any], now: dt.datetime | None = None) -> NextService:
    """For the dashboard, from the rows of its statement (portal/reads.py, one per device): the earliest
    inspection/service due date of the account's handsets (the desired state the handset's INSPECTION DUE
    comes from) and the next booked calibration or inspection (the statement picks it: booked, at a center,
    starting after now)."""
    due = None
    for row in rows:
        for day in (row.service_due_day, row.inspection_due_day):
            d = timebase.date_of(day)
            if d is not None and (due is None or d < due):
                due = d
    first = rows[0] if rows else None
    if first is None or first.visit_id is None or first.center_name is None:
        return NextService(due, None)
    a, c = _Visit(first), _Center(first)
    now = now or _now()
    change = a.starts_ts - now.timestamp() >= ctx.ps.RESCHEDULE_CUTOFF_H * 3600
    return NextService(due, AppointmentView(cast(Appointment, a), cast(ServiceCenter, c),
                                            centers.local(cast(ServiceCenter, c), a.starts_ts), "", change))


class _Visit:
    """The next visit's columns as the dashboard's statement found them, read like an Appointment (a transient
    ORM object costs ~0.1 ms to build on the most visited page); nothing changes through it."""

    __slots__ = ("id", "kind", "status", "starts_ts", "center_id")

    def __init__(self, row: Any):
        self.id: int = row.visit_id
        self.kind: str = row.visit_kind
        self.status = "booked"
        self.starts_ts: int = row.visit_starts
        self.center_id: int = row.visit_center


class _Center:
    """The next visit's center (name and zone), read like a ServiceCenter."""

    __slots__ = ("id", "name", "tz")

    def __init__(self, row: Any):
        self.id: int = row.visit_center
        self.name: str = row.center_name
        self.tz: str = row.center_tz


# ---- the worker's reminders --------------------------------------------------------------------------------
def remind(session: Session, ps: PortalSettings, now: dt.datetime | None = None) -> int:
    """Remind drivers of visits starting within REMIND_APPOINTMENT_H (once per appointment and start time:
    a rescheduled visit is reminded again); none after the program's end."""
    now = now or _now()
    t = int(now.timestamp())
    made = 0
    ended = select(Program.account_id).where(Program.ended_at.is_not(None))
    for a in session.scalars(select(Appointment).where(
            Appointment.status == "booked", Appointment.starts_ts > t, Appointment.account_id.not_in(ended),
            Appointment.starts_ts <= t + ps.REMIND_APPOINTMENT_H * 3600)):
        for user in _drivers(session, a.account_id):
            if notes.notify(session, user, "appointment-reminder", _words(session, a),
                            link="/portal/appointments/%d" % a.id, base_url=ps.BASE_URL,
                            dedupe="appt-remind:%d:%d" % (a.id, a.starts_ts or 0)):
                made += 1
    return made
