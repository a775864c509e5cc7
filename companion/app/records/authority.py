"""The monitoring authority's view: the drivers staff assigned to it, compliance at a glance, and the
compliance report (PDF) for a period. An authority never sees an unassigned driver (404, as no such driver)."""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from companion.app.accounts.models import DeviceLink, User
from companion.app.accounts.services import audit
from companion.app.core import timebase
from companion.app.core.problems import Problem
from companion.app.models import Account, Handset, LogRecord
from companion.app.records import classes as vclasses
from companion.app.records import timeline
from companion.app.service.models import Appointment, AuthorityAssignment, Program, Shipment


def assign(session: Session, actor: User, authority_id: int, account_id: int) -> AuthorityAssignment:
    """Staff assign an account to a monitoring-authority user (once)."""
    who = session.get(User, authority_id) if 0 < authority_id < 2**31 else None
    if who is None or who.role != "authority":
        raise Problem(404, "not-found", "no such authority user", field="authority_id")
    if (session.get(Account, account_id) if 0 < account_id < 2**31 else None) is None:
        raise Problem(404, "not-found", "no such account", field="account_id")
    if session.scalar(select(AuthorityAssignment.id).where(AuthorityAssignment.user_id == who.id,
                                                           AuthorityAssignment.account_id == account_id)):
        raise Problem(409, "conflict", "assigned already")
    a = AuthorityAssignment(user_id=who.id, account_id=account_id)
    session.add(a)
    session.flush()
    audit(session, actor, who, "authority-assigned", account_id=account_id)
    return a


def set_program(session: Session, actor: User, account_id: int, jurisdiction: str | None = None,
                ends_on: dt.date | None = None, module_lock: bool | None = None,
                starts_on: dt.date | None = None) -> Program:
    """Staff set an account's state (whose rules its record cites), its program start and end dates, and whether
    an unreturned module locks the vehicle (as the state's program says)."""
    if (session.get(Account, account_id) if 0 < account_id < 2**31 else None) is None:
        raise Problem(404, "not-found", "no such account", field="account_id")
    p = session.get(Program, account_id)
    if p is None:
        p = Program(account_id=account_id, jurisdiction="", out_of_compliance="", module_lock=False)
        session.add(p)
    if jurisdiction is not None:
        jurisdiction = jurisdiction.strip().upper()
        if jurisdiction and (len(jurisdiction) != 2 or not jurisdiction.isalpha()):
            raise Problem(422, "invalid", "a state is its two-letter code", field="jurisdiction")
        p.jurisdiction = jurisdiction
    if ends_on is not None:
        p.ends_on = ends_on
    if starts_on is not None:
        last = ends_on or p.ends_on
        if last is not None and starts_on > last:
            raise Problem(422, "invalid", "the program starts after it ends", field="starts_on")
        p.starts_on = starts_on
    if module_lock is not None:
        p.module_lock = module_lock
    session.flush()
    audit(session, actor, None, "program-set", account_id=account_id, jurisdiction=p.jurisdiction,
          ends_on=p.ends_on.isoformat() if p.ends_on else None,
          starts_on=p.starts_on.isoformat() if p.starts_on else None, module_lock=bool(p.module_lock))
    return p


def assigned_account(session: Session, user: User, account_id: int) -> Account:
    """An account the authority (or staff) may see; any other id is 404."""
    account = session.get(Account, account_id) if 0 < account_id < 2**31 else None
    if account is None or user.role not in ("authority", "staff") or not timeline.may_read(session, user,
                                                                                           account_id):
        raise Problem(404, "not-found", "no such driver")
    return account


@dataclass
class Compliance:
    """One driver at a glance."""

    account: Account
    name: str
    state: str
    devices: list[DeviceLink]
    violations: int
    lockouts: int
    missed_services: int
    module_returns_late: int
    out_of_compliance: str
    ends_on: dt.date | None
    minor: int = 0  # the state's minor and major violations in the period (states whose preset has classes)
    major: int = 0
    classes: list[vclasses.Classified] | None = None  # those classified events, oldest first
    classed: bool = False  # whether the state's preset defines violation classes


LOCK_VIOLATION = 3


def compliance(session: Session, account: Account, since: dt.date | None = None,
               until: dt.date | None = None) -> Compliance:
    """Violations, violation lockouts, missed services and late module returns of one account (in a period)."""
    links = list(session.scalars(select(DeviceLink).where(DeviceLink.account_id == account.id)
                                 .order_by(DeviceLink.id)))
    hids = [link.handset_id for link in links if link.handset_id]
    conds: list[ColumnElement[bool]] = [LogRecord.handset_id.in_(hids)]
    if since:
        conds.append(LogRecord.wall >= timeline._wall(since))
    if until:
        conds.append(LogRecord.wall < timeline._wall(until + dt.timedelta(days=1)))
    vio = int(session.scalar(select(func.count()).select_from(LogRecord).where(
        *conds, LogRecord.rtype == timeline.VIOLATION)) or 0) if hids else 0
    locks = int(session.scalar(select(func.count()).select_from(LogRecord).where(
        *conds, LogRecord.rtype == timeline.LOCKOUT, LogRecord.a == LOCK_VIOLATION)) or 0) if hids else 0
    missed = int(session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.account_id == account.id, Appointment.status == "missed")) or 0)
    today = timebase.day_of(timebase.today())
    if hids:
        missed += int(session.scalar(select(func.count()).select_from(Handset).where(
            Handset.id.in_(hids), Handset.inspection_due_day > 0, Handset.inspection_due_day < today)) or 0)
    late = int(session.scalar(select(func.count()).select_from(Shipment).where(
        Shipment.account_id == account.id, Shipment.overdue_at.is_not(None))) or 0)
    p = session.get(Program, account.id)
    driver = session.scalar(select(User.name).where(User.account_id == account.id, User.role == "driver"))
    lo = timeline._wall(since) if since else None
    hi = timeline._wall(until + dt.timedelta(days=1)) if until else None
    classified: list[vclasses.Classified] = []
    classed = False
    for hid in hids:
        got = vclasses.of_device(session, hid, account.id)
        classed = classed or got is not vclasses.NONE
        classified += [e for e in got.events if (lo is None or e.wall >= lo) and (hi is None or e.wall < hi)]
    classified.sort(key=lambda e: e.wall)
    state = timeline.jurisdiction(session, account.id, hids[0] if hids else None)
    return Compliance(account, driver or account.name, state, links, vio, locks, missed, late,
                      p.out_of_compliance if p else "", p.ends_on if p else None,
                      sum(1 for e in classified if e.cls == vclasses.MINOR),
                      sum(1 for e in classified if e.cls == vclasses.MAJOR), classified, classed)


def drivers(session: Session, user: User) -> list[Compliance]:
    """The authority's drivers at a glance (staff: every account with an authority)."""
    if user.role not in ("authority", "staff"):
        raise Problem(404, "not-found", "no such page")
    q = select(Account).join(AuthorityAssignment, AuthorityAssignment.account_id == Account.id)
    if user.role == "authority":
        q = q.where(AuthorityAssignment.user_id == user.id)
    return [compliance(session, a) for a in session.scalars(q.distinct().order_by(Account.id))]
