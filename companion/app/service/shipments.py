"""Module logistics (the FLEX-Cal style module): the worker creates a shipment ahead of each module's expiry
(SHIPMENT_LEAD_DAYS) to the account's address or a one-time address the driver gave; staff mark it shipped
(with the tracking number and the module's serial, which goes into the handset's desired state as the module
to expect), delivered, returned or lost; the driver gets the "shipped" email with the tracking number and the
return label for the expired module. The worker warns the driver and staff when the replacement is not
delivered a day before expiry, and a module not returned MODULE_RETURN_DAYS after expiry puts the account out
of compliance, blocks the next shipment, and where the program says so (Program.module_lock) sets the
handset's inspection date to today, so the handset locks through its own INSPECTION DUE rule."""

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from companion.app import crud
from companion.app.accounts.models import DeviceLink, User
from companion.app.accounts.services import audit
from companion.app.core import timebase
from companion.app.core.problems import Problem
from companion.app.models import Handset
from companion.app.notifications import services as notes
from companion.app.portal.config import PortalSettings
from companion.app.schemas import DesiredUpdate
from companion.app.service.models import OneTimeAddress, Program, Shipment

STATUSES = ("created", "shipped", "delivered", "returned", "lost")
MOVES = {"created": ("shipped", "lost"), "shipped": ("delivered", "returned", "lost"),
         "delivered": ("returned", "lost"), "returned": (), "lost": ()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _drivers(session: Session, account_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.account_id == account_id, User.role == "driver",
                                                   User.active.is_(True))))


def _staff(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role == "staff", User.active.is_(True))))


def _label(session: Session, h: Handset | None) -> str:
    if h is None:
        return ""
    return session.scalar(select(DeviceLink.label).where(DeviceLink.handset_id == h.id)) or h.serial


def blocked(session: Session, account_id: int) -> bool:
    """Whether a module of the account is overdue for return (no next shipment until it is back)."""
    return session.scalar(select(Shipment.id).where(
        Shipment.account_id == account_id, Shipment.overdue_at.is_not(None),
        Shipment.status.in_(("created", "shipped", "delivered")))) is not None


# ---- the worker --------------------------------------------------------------------------------------------
def plan(session: Session, ps: PortalSettings, today: dt.date | None = None) -> int:
    """Create a shipment for every linked handset whose reported module expires within the lead time (once per
    expiry), unless the account has a module overdue for return. Returns how many were created."""
    today = today or timebase.today()
    made = 0
    for link, h in session.execute(select(DeviceLink, Handset).join(Handset, Handset.id == DeviceLink.handset_id)):
        rep = h.reported if isinstance(h.reported, dict) else {}
        expiry = rep.get("module_expiry")
        if not isinstance(expiry, int) or isinstance(expiry, bool) or expiry <= 0:
            continue
        when = timebase.date_of(expiry)
        if when is None or (when - today).days > ps.SHIPMENT_LEAD_DAYS or (when - today).days < -1:
            continue
        if session.scalar(select(Shipment.id).where(Shipment.handset_id == h.id,
                                                    Shipment.for_expiry_day == expiry)) is not None:
            continue
        if blocked(session, link.account_id):
            continue
        once = session.get(OneTimeAddress, link.account_id)
        drivers = _drivers(session, link.account_id)
        address = once.address if once else (drivers[0].address if drivers else "")
        if once is not None:
            session.delete(once)
        s = Shipment(account_id=link.account_id, handset_id=h.id, for_expiry_day=expiry, module_serial=0,
                     address=address, status="created", tracking="", return_label="")
        session.add(s)
        session.flush()
        audit(session, None, None, "shipment-created", shipment=s.id, handset=h.id, expiry=expiry)
        made += 1
    return made


def warn_late(session: Session, ps: PortalSettings, today: dt.date | None = None) -> int:
    """Warn the driver and staff when a replacement is not delivered a day before the module expires."""
    today = today or timebase.today()
    made = 0
    for s in session.scalars(select(Shipment).where(Shipment.status.in_(("created", "shipped")))):
        expiry = timebase.date_of(s.for_expiry_day)
        if expiry is None or (expiry - today).days > 1:
            continue
        params = {"device": _label(session, session.get(Handset, s.handset_id)), "date": expiry.isoformat(),
                  "tracking": s.tracking or "-"}
        for u in _drivers(session, s.account_id) + _staff(session):
            link = "/portal/shipments" if u.role == "driver" else "/portal/staff/shipments"
            if notes.notify(session, u, "shipment-late", params, link=link, base_url=ps.BASE_URL,
                            dedupe="shipment-late:%d" % s.id):
                made += 1
    return made


def overdue(session: Session, ps: PortalSettings, today: dt.date | None = None) -> int:
    """Mark modules not returned MODULE_RETURN_DAYS after expiry: out of compliance, the next shipment blocked,
    and where the program says so the handset's inspection date becomes today (its INSPECTION DUE lock)."""
    today = today or timebase.today()
    made = 0
    for s in session.scalars(select(Shipment).where(Shipment.status.in_(("shipped", "delivered")),
                                                    Shipment.overdue_at.is_(None))):
        expiry = timebase.date_of(s.for_expiry_day)
        if expiry is None or (today - expiry).days <= ps.MODULE_RETURN_DAYS:
            continue
        s.overdue_at = _now()
        p = session.get(Program, s.account_id)
        if p is None:
            p = Program(account_id=s.account_id, jurisdiction="", out_of_compliance="", module_lock=False)
            session.add(p)
        p.out_of_compliance = "module not returned (shipment %d)" % s.id
        h = session.get(Handset, s.handset_id)
        if p.module_lock and h is not None:
            crud.set_desired(session, h, DesiredUpdate(inspection_due=max(today, dt.date(2024, 1, 2))))
        params = {"device": _label(session, h), "days": str(ps.MODULE_RETURN_DAYS), "label": s.return_label or "-"}
        for u in _drivers(session, s.account_id) + _staff(session):
            notes.notify(session, u, "module-unreturned", params,
                         link="/portal/shipments" if u.role == "driver" else "/portal/staff/shipments",
                         base_url=ps.BASE_URL, dedupe="module-unreturned:%d" % s.id)
        audit(session, None, None, "module-overdue", shipment=s.id, lock=bool(p.module_lock))
        session.flush()
        made += 1
    return made


# ---- staff -------------------------------------------------------------------------------------------------
def mark(session: Session, ps: PortalSettings, actor: User, shipment_id: int, status: str, tracking: str = "",
         module_serial: int = 0) -> Shipment:
    """Move a shipment on: shipped (tracking number and the module's serial; the return label is made and the
    handset is told which module to expect), delivered, returned, lost."""
    s = session.get(Shipment, shipment_id) if 0 < shipment_id < 2**31 else None
    if s is None or actor.role != "staff":
        raise Problem(404, "not-found", "no such shipment")
    if status not in MOVES.get(s.status, ()):
        raise Problem(409, "bad-move", "a %s shipment cannot become %s" % (s.status, status), field="status")
    now = _now()
    h = session.get(Handset, s.handset_id)
    if status == "shipped":
        tracking = (tracking or "").strip()
        if not tracking or len(tracking) > 40 or not all(ch.isalnum() or ch in "-_" for ch in tracking):
            raise Problem(422, "invalid", "a tracking number is 1 to 40 letters, digits, - or _", field="tracking")
        if not 0 < module_serial < 2**32:
            raise Problem(422, "invalid", "the module's serial is 1 to 4294967295", field="module_serial")
        s.tracking, s.module_serial, s.shipped_at = tracking, module_serial, now
        s.return_label = "RL" + secrets.token_hex(6).upper()
        if h is not None:
            crud.set_desired(session, h, DesiredUpdate(expected_module=module_serial))
        for u in _drivers(session, s.account_id):
            notes.notify(session, u, "shipment-shipped", {"device": _label(session, h), "tracking": tracking,
                                                          "label": s.return_label},
                         link="/portal/shipments", base_url=ps.BASE_URL, dedupe="shipment-shipped:%d" % s.id)
    elif status == "delivered":
        s.delivered_at = now
    elif status == "returned":
        s.returned_at = now
        p = session.get(Program, s.account_id)
        if s.overdue_at is not None and p is not None and p.out_of_compliance.endswith("(shipment %d)" % s.id):
            p.out_of_compliance = ""
    s.status = status
    session.flush()
    audit(session, actor, None, "shipment-" + status, shipment=s.id)
    return s


def open_shipments(session: Session) -> list[Shipment]:
    """Shipments not finished yet (staff's list), oldest first."""
    return list(session.scalars(select(Shipment).where(Shipment.status.in_(("created", "shipped", "delivered")))
                                .order_by(Shipment.id)))


# ---- driver ------------------------------------------------------------------------------------------------
def listing(session: Session, user: User) -> list[Shipment]:
    """The driver's shipments, newest first."""
    if user.role != "driver" or not user.account_id:
        raise Problem(404, "not-found", "no account")
    return list(session.scalars(select(Shipment).where(Shipment.account_id == user.account_id)
                                .order_by(Shipment.id.desc())))


def one_time_address(session: Session, user: User, address: str) -> OneTimeAddress:
    """Where the next module goes instead of the account's address (used once)."""
    if user.role != "driver" or not user.account_id:
        raise Problem(404, "not-found", "no account")
    address = (address or "").strip().replace("\r\n", "\n")
    if not address or len(address) > 400 or any(ord(ch) < 32 and ch != "\n" for ch in address):
        raise Problem(422, "invalid", "an address is 1 to 400 characters of text", field="address")
    row = session.get(OneTimeAddress, user.account_id)
    if row is None:
        row = OneTimeAddress(account_id=user.account_id, address=address)
        session.add(row)
    else:
        row.address = address
    session.flush()
    audit(session, user, user, "shipping-address", address=address)
    return row
