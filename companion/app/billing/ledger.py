"""The ledger: charges and payments in integer cents, and everything derived from them.

Rules
- Money is integer cents everywhere. A payment that pays one charge (a reset fee) names it; every other payment
  pays the oldest charges first (by due date, then by entry). What is paid beyond the posted charges is credit
  that pays the installments still to come, in order.
- Installment n of an account (n counts from 0 over the account's whole life) falls on
  `schedule.due_date(first_due, schedule, n - period_base)`; a frequency change starts a new schedule at the
  first installment not yet charged (`period_base`, `first_due`), so no period is charged twice or skipped.
- Installment charges are posted on their due date (`accrue`), once each: the ledger's unique
  (account, period) refuses a second one, and accrual posts every missing period up to today in order.
- Balance = charges - payments. Overdue = what the payments leave unpaid of charges due before today. The next
  due date is the due date of the oldest charge not fully paid, or else of the first installment the credit
  does not pay; it is what the handsets' `PAYMENT DUE` date is (`push_due_date`, a desired-state change).
- The account row caches the derivation (`periods_paid`, `credit_cents`, `next_due`) for the sync path and the
  back-office API; `recompute` is the only writer, called in the transaction of every ledger change.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from companion.app import schedule
from companion.app.core import timebase
from companion.app.core.problems import Problem
from companion.app.models import Account, DesiredVersion, Handset, LedgerEntry
from companion.app.service.models import Program

CHARGE_KINDS = ("installment", "reset_fee", "code_fee", "fee", "adjustment")
# waiver: no money, it pays a charge that is not owed after all (a reset fee refunded because its lockout ended
# before the clear it paid for reached the handset)
PAYMENT_METHODS = ("card", "refund", "service_center", "backoffice", "portal", "waiver")
MAX_CENTS = 10**9


def _system_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_clock: Callable[[], dt.datetime] = _system_now


def set_clock(clock: Callable[[], dt.datetime] | None) -> None:
    """Give billing another clock (tests and demos move time past due dates); None: the system's."""
    global _clock
    _clock = clock or _system_now


def now() -> dt.datetime:
    """Billing's now (timezone-aware UTC)."""
    return _clock()


def today() -> dt.date:
    """Today in UTC (the companion's billing day)."""
    return _clock().date()


def installment_date(account: Account, period: int) -> dt.date:
    """The due date of installment `period` under the account's current schedule (period >= period_base)."""
    try:
        return schedule.due_date(account.first_due, account.schedule, period - account.period_base)
    except (OverflowError, ValueError) as exc:
        raise Problem(422, "invalid", "the due date would fall after year 9999") from exc


@dataclass
class Upcoming:
    """An installment still to come: its period, due date, amount, and how much credit already pays of it."""

    period: int
    due: dt.date
    amount_cents: int
    prepaid_cents: int

    @property
    def owed_cents(self) -> int:
        """What is left to pay of it."""
        return self.amount_cents - self.prepaid_cents


@dataclass
class Position:
    """What the ledger says about an account on a given day."""

    charges_cents: int = 0
    payments_cents: int = 0
    overdue_cents: int = 0  # unpaid of charges due before the day
    due_now_cents: int = 0  # unpaid of charges due on or before the day
    unpaid_cents: int = 0  # unpaid of every posted charge
    credit_cents: int = 0  # paid beyond every posted charge
    posted_periods: int = 0  # installments charged so far (periods 0 .. posted_periods-1)
    oldest_unpaid: dt.date | None = None
    next_due: dt.date = dt.date(2024, 1, 2)
    next_amount_cents: int = 0  # what is left to pay on the next due date's charge or installment
    periods_paid: int = 0  # installments fully paid, counted from the first
    partial_cents: int = 0  # what is paid of the first installment not fully paid
    upcoming: list[Upcoming] = field(default_factory=list)
    # due_now_cents by the handset each unpaid charge is booked against (None: the account's, no handset)
    due_by_handset: dict[int | None, int] = field(default_factory=dict)

    def due_for(self, handset_id: int, primary: bool) -> int:
        """What is due now on one device (the primary handset also pays the charges booked to no handset)."""
        return self.due_by_handset.get(handset_id, 0) + (self.due_by_handset.get(None, 0) if primary else 0)

    @property
    def balance_cents(self) -> int:
        """Charges - payments (negative: credit)."""
        return self.charges_cents - self.payments_cents


def entries(session: Session, account_id: int) -> list[LedgerEntry]:
    """The account's ledger, in the order it was written."""
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account_id)
                                .order_by(LedgerEntry.id)))


def derive(account: Account, rows: list[LedgerEntry], day: dt.date, upcoming: int = 0) -> Position:
    """The account's position on `day` from its ledger rows (a pure function of the rows and the schedule);
    with upcoming > 0, that many installments still to come are listed."""
    pos = Position()
    charges = [e for e in rows if e.side == "charge"]
    targeted: dict[int, int] = {}
    pool = 0
    for e in rows:
        if e.side != "payment":
            continue
        pos.payments_cents += e.amount_cents
        if e.charge_id is not None:
            targeted[e.charge_id] = targeted.get(e.charge_id, 0) + e.amount_cents
        else:
            pool += e.amount_cents
    periods = sorted(e.period for e in charges if e.kind == "installment" and e.period is not None)
    pos.posted_periods = periods[-1] + 1 if periods else 0
    for e in charges:  # a targeted payment beyond its charge (or for a charge not here) goes to the pool
        paid = targeted.get(e.id, 0)
        if paid > e.amount_cents:
            pool += paid - e.amount_cents
            targeted[e.id] = e.amount_cents
    known = {e.id for e in charges}
    pool += sum(v for k, v in targeted.items() if k not in known)
    pos.charges_cents = sum(e.amount_cents for e in charges)
    first_unpaid_period: int | None = None
    for e in sorted(charges, key=lambda c: (c.due_date or day, c.id)):
        need = e.amount_cents - targeted.get(e.id, 0)
        take = min(max(need, 0), max(pool, 0))
        pool -= take
        left = need - take
        if left <= 0:
            continue
        due = e.due_date or day
        pos.unpaid_cents += left
        if due < day:
            pos.overdue_cents += left
        if due <= day:
            pos.due_now_cents += left
            pos.due_by_handset[e.handset_id] = pos.due_by_handset.get(e.handset_id, 0) + left
        if pos.oldest_unpaid is None:
            pos.oldest_unpaid, pos.next_amount_cents = due, left
        if e.kind == "installment" and e.period is not None and first_unpaid_period is None:
            first_unpaid_period = e.period
            pos.partial_cents = e.amount_cents - left
    if pool < 0:  # refunds beyond what the untargeted payments paid: owed again, today
        pos.unpaid_cents -= pool
        pos.due_now_cents -= pool
        pos.due_by_handset[None] = pos.due_by_handset.get(None, 0) - pool
        if pos.oldest_unpaid is None:
            pos.oldest_unpaid, pos.next_amount_cents = day, -pool
    pos.credit_cents = max(pool, 0)
    # installments not posted yet, paid by the credit in order
    n = pos.posted_periods
    credit = pos.credit_cents
    inst = account.installment_cents
    if n < account.period_base:  # a schedule change always starts at the first installment not charged
        n = account.period_base
    skip = credit // inst
    n_free = n + skip
    credit -= skip * inst
    if first_unpaid_period is None:
        pos.periods_paid, pos.partial_cents = n_free, credit
    else:
        pos.periods_paid = first_unpaid_period
    if pos.oldest_unpaid is not None:
        pos.next_due = pos.oldest_unpaid
    else:
        pos.next_due = installment_date(account, n_free)
        pos.next_amount_cents = inst - credit
    for i in range(upcoming):
        period = n_free + i
        pos.upcoming.append(Upcoming(period, installment_date(account, period), inst, credit if i == 0 else 0))
    return pos


def position(session: Session, account: Account, day: dt.date | None = None, upcoming: int = 0) -> Position:
    """The account's position today (or on `day`)."""
    return derive(account, entries(session, account.id), day or today(), upcoming)


def recompute(session: Session, account: Account, day: dt.date | None = None) -> Position:
    """Derive the position, write the account's cached fields, and give every handset of the account its
    payment due date (a new desired version where it moved). The caller holds the account row locked."""
    session.flush()
    pos = position(session, account, day)
    account.periods_paid = pos.periods_paid
    account.credit_cents = pos.partial_cents
    account.next_due = pos.next_due
    session.flush()
    push_due_date(session, account, pos.next_due)
    return pos


def push_due_date(session: Session, account: Account, due: dt.date) -> None:
    """Give every handset of the account `due` as its payment due date (a new desired version if it moved)."""
    day = timebase.day_of(due)
    moved = session.execute(
        update(Handset).where(Handset.account_id == account.id, Handset.payment_due_day != day)
        .values(payment_due_day=day, desired_version=Handset.desired_version + 1)
        .returning(Handset.id, Handset.desired_version)
        .execution_options(synchronize_session="fetch")).all()
    for device_id, version in moved:
        session.add(DesiredVersion(handset_id=device_id, version=int(version)))
    session.flush()


def primary_handset(session: Session, account_id: int) -> int | None:
    """The account's first handset (installments are booked against it)."""
    return session.scalar(select(Handset.id).where(Handset.account_id == account_id).order_by(Handset.id)
                          .limit(1))


def accrue(session: Session, account: Account, day: dt.date | None = None) -> int:
    """Post every installment charge due on or before `day` that is not posted yet, in period order; returns
    how many were posted. The caller holds the account row locked (two workers post nothing twice: the row lock
    serialises them, and the unique (account, period) would refuse a second charge anyway). An ended program
    is charged no more: nothing is posted, whatever the day."""
    day = day or today()
    if ended(session, account.id):
        return 0
    last = session.scalar(select(LedgerEntry.period).where(
        LedgerEntry.account_id == account.id, LedgerEntry.side == "charge", LedgerEntry.kind == "installment")
        .order_by(LedgerEntry.period.desc()).limit(1))
    n = max(int(last) + 1 if last is not None else 0, account.period_base)
    posted = 0
    device = None
    while True:
        due = installment_date(account, n)
        if due > day:
            break
        if device is None:
            device = primary_handset(session, account.id)
        session.add(LedgerEntry(account_id=account.id, side="charge", kind="installment", method="",
                                amount_cents=account.installment_cents, period=n, due_date=due,
                                handset_id=device, reference="installment:%d" % n,
                                note="%s installment" % account.schedule))
        n += 1
        posted += 1
        if posted > 10000:
            raise Problem(422, "invalid", "more than 10000 installments are missing: check the first due date")
    if posted:
        session.flush()
    return posted


def position_accrued(session: Session, account: Account, upcoming: int = 0) -> Position:
    """The position today as it will be once `accrue` has posted what fell due (read only: the missing
    installment charges are derived in memory, nothing is written). A form that shows a balance to pay shows
    this one, the one the payment is checked against."""
    day = today()
    rows = entries(session, account.id)
    if not ended(session, account.id):
        periods = [e.period for e in rows if e.side == "charge" and e.kind == "installment" and e.period is not None]
        n = max(max(periods) + 1 if periods else 0, account.period_base)
        device = primary_handset(session, account.id)
        fake = 2**62
        while len(rows) < 100000:
            due = installment_date(account, n)
            if due > day:
                break
            fake += 1
            rows.append(LedgerEntry(id=fake, account_id=account.id, side="charge", kind="installment", method="",
                                    amount_cents=account.installment_cents, period=n, due_date=due,
                                    handset_id=device))
            n += 1
    return derive(account, rows, day, upcoming)


def ended(session: Session, account_id: int) -> bool:
    """Whether the account's program has ended (no installment is charged after it)."""
    return session.scalar(select(Program.ended_at).where(Program.account_id == account_id)) is not None


def post_charge(session: Session, account: Account, kind: str, amount_cents: int, reference: str | None,
                handset_id: int | None = None, due: dt.date | None = None, note: str = "",
                lockout_id: int | None = None) -> LedgerEntry:
    """Post a fee (reset fee, code fee, other fee) due on `due` (today by default)."""
    if kind not in CHARGE_KINDS or kind == "installment":
        raise Problem(422, "invalid", "unknown charge kind")
    check_amount(amount_cents)
    e = LedgerEntry(account_id=account.id, side="charge", kind=kind, method="", amount_cents=amount_cents,
                    reference=reference, handset_id=handset_id, due_date=due or today(), note=note[:200],
                    lockout_id=lockout_id)
    session.add(e)
    session.flush()
    return e


def post_payment(session: Session, account: Account, method: str, amount_cents: int, reference: str | None,
                 kind: str = "installment", handset_id: int | None = None, charge_id: int | None = None,
                 intent_id: str | None = None, note: str = "") -> LedgerEntry:
    """Post a payment (a refund is a negative amount with method "refund")."""
    if method not in PAYMENT_METHODS:
        raise Problem(422, "invalid", "unknown payment method")
    if method == "refund":
        check_amount(-amount_cents)
    else:
        check_amount(amount_cents)
    e = LedgerEntry(account_id=account.id, side="payment", kind=kind, method=method, amount_cents=amount_cents,
                    reference=reference, handset_id=handset_id, charge_id=charge_id, intent_id=intent_id,
                    note=note[:200])
    session.add(e)
    session.flush()
    return e


def check_amount(amount_cents: object) -> int:
    """An amount of money: a positive whole number of cents up to $10,000,000 (else a 422 naming it)."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise Problem(422, "invalid-amount", "an amount is a whole number of cents", field="amount_cents")
    if amount_cents <= 0:
        raise Problem(422, "invalid-amount", "an amount must be more than zero", field="amount_cents")
    if amount_cents > MAX_CENTS:
        raise Problem(422, "invalid-amount", "the amount is too large", field="amount_cents")
    return amount_cents


# ---- frequency ---------------------------------------------------------------------------------------------
@dataclass
class FrequencyPreview:
    """What a frequency change would do: from when, the new installment, and the next payments."""

    schedule: str
    effective: dt.date
    installment_cents: int
    payments: list[Upcoming]
    rule: str = ("Each installment is the yearly price (the current installment times the installments in a "
                 "year) divided by the new number of installments in a year, rounded half up to the cent.")


def preview_frequency(session: Session, account: Account, new: str, count: int = 6,
                      day: dt.date | None = None) -> FrequencyPreview:
    """The change to schedule `new` without making it: it takes effect at the first installment not charged
    yet (the one on its due date under the current schedule), so nothing is charged twice or skipped."""
    if new not in schedule.SCHEDULES or new == "bimonthly":
        raise Problem(422, "invalid", "the frequency is weekly, biweekly, monthly or semimonthly", field="schedule")
    rows = entries(session, account.id)
    pos = derive(account, rows, day or today())
    start = max(pos.posted_periods, account.period_base)
    effective = installment_date(account, start)
    amount = schedule.installment_for(account.installment_cents, account.schedule, new)
    trial = Account(schedule=new, first_due=effective, installment_cents=amount, period_base=start,
                    periods_paid=0, credit_cents=0)
    after = derive(trial, rows, day or today(), upcoming=count)
    return FrequencyPreview(new, effective, amount, after.upcoming)


def change_frequency(session: Session, account: Account, new: str, day: dt.date | None = None
                     ) -> FrequencyPreview:
    """Make the change `preview_frequency` shows (the caller holds the account row locked)."""
    preview = preview_frequency(session, account, new, day=day)
    start = max(position(session, account, day).posted_periods, account.period_base)
    account.schedule = new
    account.first_due = preview.effective
    account.installment_cents = preview.installment_cents
    account.period_base = start
    recompute(session, account, day)
    return preview
