"""The compliance report of a period as a PDF (fpdf2): counts at a glance, then every violation with the rule
of the driver's state, every violation lockout and clear, the service visits and the open disputes."""

import datetime as dt
import textwrap

from fpdf import FPDF
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from companion.app.core import timebase
from companion.app.models import Account, LogRecord
from companion.app.records import authority, rules, timeline
from companion.app.records import classes as vclasses
from companion.app.service.models import Appointment, Dispute

TYPES = (timeline.VIOLATION, timeline.BYPASS, timeline.LOCKOUT, timeline.CLEAR)


def _latin(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


WRAP = 110  # characters of 8-point Courier on a Letter page's width inside the margins


def _lines(pdf: FPDF, text: str) -> None:
    """One event, wrapped in a fixed-width font: plain cells (fpdf2's multi_cell measures every glyph, which
    for a year's events took seconds)."""
    for part in textwrap.wrap(_latin(text), WRAP, subsequent_indent="    ") or [""]:
        pdf.cell(0, 4, part, new_x="LMARGIN", new_y="NEXT")


def compliance_pdf(session: Session, account: Account, since: dt.date | None, until: dt.date | None,
                   title: str = "Compliance report") -> bytes:
    """The report's bytes."""
    c = authority.compliance(session, account, since, until)
    hids = [link.handset_id for link in c.devices if link.handset_id]
    labels = {link.handset_id: link.label for link in c.devices}
    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    period = "%s to %s" % (since.isoformat() if since else "the start", until.isoformat() if until else "today")
    for line in ("Driver: %s (account %d)" % (c.name, account.id),
                 "State: %s" % (c.state or "not set"),
                 "Period: %s" % period,
                 "Program ends: %s" % (c.ends_on.isoformat() if c.ends_on else "not set"),
                 "Violations: %d   Violation lockouts: %d   Missed services: %d   Late module returns: %d"
                 % (c.violations, c.lockouts, c.missed_services, c.module_returns_late),
                 *(["Under the state's violation classes: minor violations: %d   major violations: %d"
                    % (c.minor, c.major)] if c.classed else []),
                 "Produced: %s UTC" % dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")):
        pdf.cell(0, 6, _latin(line), new_x="LMARGIN", new_y="NEXT")
    if c.out_of_compliance:
        pdf.cell(0, 6, _latin("Out of compliance: " + c.out_of_compliance), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Events", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", "", 8)
    conds: list[ColumnElement[bool]] = [LogRecord.handset_id.in_(hids), LogRecord.rtype.in_(TYPES)]
    if since:
        conds.append(LogRecord.wall >= timeline._wall(since))
    if until:
        conds.append(LogRecord.wall < timeline._wall(until + dt.timedelta(days=1)))
    rows = session.execute(select(LogRecord.handset_id, LogRecord.seq, LogRecord.wall, LogRecord.rtype, LogRecord.a,
                                  LogRecord.b, LogRecord.c).where(*conds)
                           .order_by(LogRecord.wall, LogRecord.seq)).all() if hids else []
    disputes = {(d.handset_id, d.seq): d for d in session.scalars(select(Dispute).where(
        Dispute.account_id == account.id))}
    if not rows:
        pdf.cell(0, 6, "No violations, lockouts or clears in the period.", new_x="LMARGIN", new_y="NEXT")
    for hid, seq, wall, rtype, a, b, cc in rows:
        if rtype == timeline.LOCKOUT and a != authority.LOCK_VIOLATION:
            continue
        _kind, text, params = timeline.describe(rtype, a, b, cc)
        when = (timebase.EPOCH + dt.timedelta(seconds=wall)).strftime("%Y-%m-%d %H:%M")
        line = "%s  %s #%d  %s" % (when, labels.get(hid, ""), seq, text % params if params else text)
        if rtype == timeline.VIOLATION:
            r = rules.rule_for(a, c.state)
            line += ("  -- %s: %s" % (r.citation, r.says) if r.found
                     else "  -- no rule of %s found for this; a violation under the handset's policy"
                     % (c.state or "the state"))
        d = disputes.get((hid, seq))
        if d is not None:
            line += "  [disputed: %s]" % d.status
        _lines(pdf, line)
    if c.classed:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, "Violation classes of %s" % c.state, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Courier", "", 8)
        shown = [e for e in c.classes or [] if e.cls in (vclasses.MINOR, vclasses.MAJOR, vclasses.STARTUP)]
        if not shown:
            pdf.cell(0, 6, "No start-up failure, minor or major violation in the period.", new_x="LMARGIN",
                     new_y="NEXT")
        for e in shown:
            when = (timebase.EPOCH + dt.timedelta(seconds=e.wall)).strftime("%Y-%m-%d %H:%M")
            _lines(pdf, "%s  %s%s: %s  -- %s: %s" % (when, vclasses.LABELS[e.cls],
                                                     " (#%d)" % e.seq if e.seq is not None else "", e.why,
                                                     e.rule.cite, e.rule.says))
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Service visits", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    visits = list(session.scalars(select(Appointment).where(Appointment.account_id == account.id,
                                                            Appointment.status.in_(("done", "missed", "booked")))
                                  .order_by(Appointment.starts_ts)))
    if not visits:
        pdf.cell(0, 6, "None.", new_x="LMARGIN", new_y="NEXT")
    for v in visits:
        when = dt.datetime.fromtimestamp(v.starts_ts or 0, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        pdf.cell(0, 5, _latin("%s  %s  %s" % (when, v.kind, v.status)), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def certificate_pdf(session: Session, account: Account, ended_on: dt.date) -> bytes:
    """The compliance certificate of a program that ended: who, which state, when, and the program's counts."""
    c = authority.compliance(session, account)
    pdf = FPDF(format="Letter")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, "Certificate of program completion", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    for line in ("This certifies that %s (account %d) completed the ignition interlock program" % (c.name, account.id),
                 "on %s%s." % (ended_on.isoformat(), " under the rules of " + c.state if c.state else ""),
                 "Violations recorded: %d. Violation lockouts: %d. Missed services: %d. Late module returns: %d."
                 % (c.violations, c.lockouts, c.missed_services, c.module_returns_late),
                 "Produced %s UTC from the handset's verified event log." % dt.datetime.now(dt.UTC).strftime(
                     "%Y-%m-%d %H:%M")):
        pdf.multi_cell(0, 7, _latin(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
