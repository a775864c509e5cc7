"""Invoices (one per billing period: from an installment's due date to the next one's), numbered in one
sequence; the program agreement and the order details. PDFs are written with fpdf2."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fpdf import FPDF
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from companion.app import crud
from companion.app.accounts.models import DeviceLink, User
from companion.app.billing import ledger
from companion.app.billing.models import Agreement, Invoice
from companion.app.billing.services import money
from companion.app.core.problems import Problem
from companion.app.models import Account, Handset, LedgerEntry
from companion.app.portal import services as portal

AGREEMENT_VERSION = "2026-12"
ENTRY_KINDS = {"installment": "Program installment", "reset_fee": "Violation reset fee", "code_fee": "Unlock code fee",
         "fee": "Fee", "adjustment": "Adjustment"}
METHODS = {"card": "Card payment", "refund": "Refund", "service_center": "Paid at a service center",
           "backoffice": "Payment", "portal": "Payment", "waiver": "Fee waived"}


def lines_for(rows: list[LedgerEntry], start: dt.date, end: dt.date) -> tuple[list[dict[str, Any]], int, int]:
    """The lines of the period [start, end): charges by due date, payments by the day they were made."""
    out: list[dict[str, Any]] = []
    charges = payments = 0
    for e in rows:
        day = e.due_date if e.side == "charge" and e.due_date else e.created_at.date()
        if not start <= day < end:
            continue
        if e.side == "charge":
            charges += e.amount_cents
            text = ENTRY_KINDS.get(e.kind, e.kind)
        else:
            payments += e.amount_cents
            text = METHODS.get(e.method, "Payment")
        out.append({"date": day.isoformat(), "side": e.side, "text": text, "note": e.note,
                    "amount_cents": e.amount_cents if e.side == "charge" else -e.amount_cents})
    return out, charges, payments


def _next_number(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Invoice.number), 0))) or 0) + 1


def issue_due(session: Session, user: User, day: dt.date | None = None) -> list[Invoice]:
    """Issue the invoices of every period that has begun (each once), and return them all, newest first."""
    account = portal.driver_account(session, user)
    locked = crud.lock_account(session, account.id)
    assert locked is not None
    day = day or ledger.today()
    ledger.accrue(session, locked, day)
    rows = ledger.entries(session, account.id)
    starts = sorted((e.period, e.due_date) for e in rows
                    if e.side == "charge" and e.kind == "installment" and e.period is not None and e.due_date)
    have = set(session.scalars(select(Invoice.period_start).where(Invoice.account_id == account.id)))
    balance = 0
    for i, (period, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else ledger.installment_date(locked, period + 1)
        lines, charges, payments = lines_for(rows, start, end)
        balance += charges - payments
        if start in have:
            continue
        for _try in range(5):
            try:
                with session.begin_nested():
                    session.add(Invoice(number=_next_number(session), account_id=account.id, period_start=start,
                                        period_end=end, lines=lines, charges_cents=charges,
                                        payments_cents=payments, balance_cents=balance))
                    session.flush()
                break
            except IntegrityError:  # another invoice took the number
                continue
    return list(session.scalars(select(Invoice).where(Invoice.account_id == account.id)
                                .order_by(Invoice.period_start.desc())))


def invoice_of(session: Session, user: User, invoice_id: int) -> Invoice:
    """One of the driver's invoices (another's: 404)."""
    inv = session.get(Invoice, invoice_id) if 0 < invoice_id < 2**31 else None
    if inv is None or user.role != "driver" or inv.account_id != user.account_id:
        raise Problem(404, "not-found", "no such invoice on your account")
    return inv


def _pdf() -> FPDF:
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    return pdf


def _text(s: str) -> str:
    """Latin-1 text for the core fonts (anything else becomes '?')."""
    return s.encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(inv: Invoice, account: Account, user: User) -> bytes:
    """The invoice as a PDF: number, period, the driver, line items, totals."""
    pdf = _pdf()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Invoice %06d" % inv.number, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for text in ("Interlock program - %s" % _text(user.name or account.name),
                 "Account %d" % account.id,
                 "Billing period: %s to %s" % (inv.period_start.isoformat(),
                                               (inv.period_end - dt.timedelta(days=1)).isoformat()),
                 "Issued: %s" % inv.created_at.date().isoformat()):
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    # the lines go to the page as one block of text operators per page (what text() writes for each value,
    # without its per-call checks: a 104-line invoice made 312 calls of it, most of the time of a PDF)
    left, item_x, right, step = pdf.l_margin, pdf.l_margin + 28, pdf.w - pdf.r_margin, 6.0
    bottom = pdf.h - pdf.b_margin
    y = pdf.get_y() + 5
    block: list[str] = []
    widths: dict[str, float] = {}

    def flush() -> None:
        if block:
            pdf.text(left, y, "")  # sets the font on the page if it is not yet (a no-op string otherwise)
            pdf._out("\n".join(block))  # noqa: SLF001 -- fpdf2's writer of page content
            block.clear()

    k, page_h = pdf.k, pdf.h

    def row(cols: tuple[str, str, str], y: float) -> float:
        if y > bottom:
            flush()
            pdf.add_page()
            y = pdf.t_margin + 5
        font = pdf.current_font
        assert font is not None
        key = pdf.font_style + cols[2]
        w = widths.get(key)
        if w is None:
            w = widths[key] = pdf.get_string_width(cols[2])
        base = page_h - y
        for x, text in ((left, cols[0]), (item_x, cols[1]), (right - w, cols[2])):
            if text:
                block.append("BT %.2f %.2f Td %s ET" % (x * k, base * k, font.encode_text(pdf.normalize_text(text))))
        return y + step

    pdf.set_font("Helvetica", "B", 10)
    y = row(("Date", "Item", "Amount"), y)
    flush()
    pdf.set_font("Helvetica", size=10)
    for ln in inv.lines:
        item = ln["text"] + (" (%s)" % ln["note"] if ln.get("note") and ln["side"] == "charge" else "")
        y = row((str(ln["date"]), _text(item)[:70], money(int(ln["amount_cents"]))), y)
    flush()
    y += 2
    pdf.set_font("Helvetica", "B", 10)
    for label, cents in (("Charges", inv.charges_cents), ("Payments", -inv.payments_cents),
                         ("Balance after this period", inv.balance_cents)):
        y = row(("", label, money(cents)), y)
    flush()
    pdf.set_xy(left, y)
    pdf.set_font("Helvetica", size=8)
    pdf.ln(4)
    pdf.cell(0, 4, "Amounts are in US dollars. Installments are rounded half up to the cent.")
    return bytes(pdf.output())


# ---- the agreement and the order ---------------------------------------------------------------------------
def terms_of(account: Account) -> dict[str, Any]:
    """The program's terms as they stand (what the agreement freezes)."""
    return {"program": "Ignition interlock program", "schedule": account.schedule,
            "installment_cents": account.installment_cents, "reset_fee_cents": account.reset_fee_cents,
            "allow_codes": account.allow_codes, "codes_per_period": account.codes_per_period,
            "service_period_days": account.service_period_days, "first_due": account.first_due.isoformat()}


def agreement_of(session: Session, user: User) -> Agreement:
    """The account's agreement (written with the current terms the first time it is shown)."""
    account = portal.driver_account(session, user)
    ag = session.scalar(select(Agreement).where(Agreement.account_id == account.id).order_by(Agreement.id.desc()))
    if ag is None:
        ag = Agreement(account_id=account.id, version=AGREEMENT_VERSION, terms=terms_of(account))
        session.add(ag)
        session.flush()
    return ag


def accept(session: Session, user: User) -> Agreement:
    """The driver accepts the agreement (once; the time is kept)."""
    ag = agreement_of(session, user)
    if ag.accepted_at is None:
        ag.accepted_by, ag.accepted_at = user.id, ledger.now()
        session.flush()
    return ag


@dataclass
class OrderLine:
    """A device of the order."""

    label: str
    serial: str
    kind: str
    installed: dt.date


def order_details(session: Session, user: User) -> dict[str, Any]:
    """Devices (with their installation date) and fees."""
    account = portal.driver_account(session, user)
    devices = []
    for link, h in session.execute(select(DeviceLink, Handset).outerjoin(Handset, Handset.id == DeviceLink.handset_id)
                                   .where(DeviceLink.account_id == account.id).order_by(DeviceLink.id)).all():
        devices.append(OrderLine(link.label, h.serial if h else "", link.kind, link.created_at.date()))
    return {"devices": devices, "installment_cents": account.installment_cents, "schedule": account.schedule,
            "reset_fee_cents": account.reset_fee_cents}


TERMS_TEXT = (
    "The driver leases the ignition interlock device(s) listed below for the length of the program ordered by "
    "the monitoring authority, and pays the program installments on the schedule chosen. Installments are due "
    "on their due dates; a payment that is missing on the due date may show PAYMENT DUE on the handset. A "
    "violation lockout is cleared remotely once the reset fee is paid. The device stays the property of the "
    "provider and is returned at the end of the program.")


def agreement_pdf(ag: Agreement, order: dict[str, Any], user: User) -> bytes:
    """The agreement as a PDF: terms, fees, devices, acceptance."""
    pdf = _pdf()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Program agreement (version %s)" % ag.version, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, "Driver: " + _text(user.name or user.email), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(0, 5, TERMS_TEXT)
    pdf.ln(2)
    t = ag.terms
    for text in ("Schedule: %s, installment %s" % (t["schedule"], money(int(t["installment_cents"]))),
                 "Violation reset fee: %s" % money(int(t["reset_fee_cents"])),
                 "Unlock codes: %s" % ("%d per service period" % t["codes_per_period"] if t["allow_codes"]
                                       else "not allowed"),
                 "Service every %d days" % t["service_period_days"]):
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for d in order["devices"]:
        pdf.cell(0, 6, _text("Device: %s %s (%s), installed %s" % (d.label, d.serial, d.kind, d.installed)),
                 new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.cell(0, 6, "Accepted: " + (ag.accepted_at.strftime("%Y-%m-%d %H:%M UTC") if ag.accepted_at
                                   else "not yet accepted"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
