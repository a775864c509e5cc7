"""The program's end: on its end date (Program.ends_on) the worker stops reminders, produces the compliance
certificate (PDF) and the final compliance report, sends the report to the monitoring authorities assigned to
the account, tells the driver both were sent, and opens a removal request for staff to schedule. Billing asks
`ended` before charging: no installment is charged after the end."""

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from companion.app.accounts.models import User
from companion.app.accounts.services import audit
from companion.app.core import timebase
from companion.app.models import Account
from companion.app.notifications import services as notes
from companion.app.portal.config import PortalSettings
from companion.app.records import report
from companion.app.service import documents
from companion.app.service.models import Appointment, AuthorityAssignment, Program


def ended(session: Session, account_id: int) -> bool:
    """Whether the account's program has ended (no more charges, no more reminders)."""
    p = session.get(Program, account_id)
    return p is not None and p.ended_at is not None


def ended_ids(session: Session) -> set[int]:
    """The accounts whose program has ended."""
    return set(session.scalars(select(Program.account_id).where(Program.ended_at.is_not(None))))


def end(session: Session, ps: PortalSettings, p: Program, actor: User | None = None) -> Program:
    """End one program now (idempotent: an ended program is left as it is)."""
    if p.ended_at is not None:
        return p
    account = session.get(Account, p.account_id)
    if account is None:
        return p
    today = timebase.today()
    ends_on = min(p.ends_on or today, today)
    p.ended_at = dt.datetime.now(dt.UTC)
    cert = documents.store(session, ps, account.id, None, report.certificate_pdf(session, account, ends_on),
                           "certificate-%s.pdf" % ends_on.isoformat(), origin="certificate")
    final = documents.store(session, ps, account.id, None,
                            report.compliance_pdf(session, account, None, ends_on, "Final compliance report"),
                            "final-report-%s.pdf" % ends_on.isoformat(), origin="report")
    p.certificate_doc_id, p.report_doc_id = cert.id, final.id
    authorities = list(session.scalars(select(User).join(AuthorityAssignment, AuthorityAssignment.user_id == User.id)
                                       .where(AuthorityAssignment.account_id == account.id, User.active.is_(True))))
    for u in authorities:
        notes.notify(session, u, "final-report", {"driver": account.name, "date": ends_on.isoformat()},
                     link="/portal/documents/%d" % final.id, base_url=ps.BASE_URL,
                     dedupe="final-report:%d" % account.id)
    p.report_sent_at = dt.datetime.now(dt.UTC) if authorities else None
    for u in session.scalars(select(User).where(User.account_id == account.id, User.role == "driver")):
        notes.notify(session, u, "program-ended", {"date": ends_on.isoformat()}, link="/portal/dashboard",
                     base_url=ps.BASE_URL, dedupe="program-ended:%d" % account.id)
    if session.scalar(select(Appointment.id).where(Appointment.account_id == account.id,
                                                   Appointment.kind == "removal",
                                                   Appointment.status.in_(("requested", "booked")))) is None:
        session.add(Appointment(account_id=account.id, kind="removal", status="requested",
                                note="program ended %s" % ends_on.isoformat()))
    session.flush()
    audit(session, actor, None, "program-ended", account_id=account.id, certificate=cert.id, report=final.id,
          authorities=len(authorities))
    return p


def end_due(session: Session, ps: PortalSettings, today: dt.date | None = None) -> int:
    """End every program whose end date has come; returns how many."""
    today = today or timebase.today()
    n = 0
    for p in session.scalars(select(Program).where(Program.ends_on.is_not(None), Program.ends_on <= today,
                                                   Program.ended_at.is_(None))):
        end(session, ps, p)
        n += 1
    return n


@dataclass
class Status:
    """What the driver's dashboard says about the program."""

    ends_on: dt.date | None
    ended_at: dt.datetime | None
    certificate_doc_id: int | None
    report_sent_at: dt.datetime | None

    @property
    def status(self) -> Literal["open", "ending", "ended"]:
        """"ended" (billing and reminders stopped), "ending" (an end date is set, still to come) or "open" (no
        end date on file)."""
        if self.ended_at is not None:
            return "ended"
        return "ending" if self.ends_on is not None else "open"


def status_of(row: Any) -> Status | None:
    """The program's end as the driver's dashboard shows it, from a row of the dashboard's statement
    (portal/reads.py); None when no program is set."""
    if row.program_row is None:
        return None
    return Status(row.ends_on, row.ended_at, row.certificate_doc_id, row.report_sent_at)
