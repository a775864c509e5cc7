"""Payment schedules and the due date each produces.

The n-th due date is counted from the account's first due date, not from the previous due date, so a
monthly schedule that starts on the 31st comes back to the 31st after a short month (Jan 31, Feb 29, Mar 31).
Bi-monthly means every two months; twice a month ("semimonthly") is the first due date's day and fifteen
days later, in every month (Jan 20, Feb 4, Feb 20, Mar 7, ...).

Changing the frequency keeps the price of a year: the new installment is the old one times the old number of
installments a year, divided by the new number, rounded half up to the cent (`installment_for`).
"""

import calendar
import datetime as dt

SCHEDULES = ("weekly", "biweekly", "monthly", "bimonthly", "semimonthly")
PER_YEAR = {"weekly": 52, "biweekly": 26, "monthly": 12, "bimonthly": 6, "semimonthly": 24}


def add_months(date: dt.date, months: int) -> dt.date:
    """date moved by whole months, the day clamped to the month's length."""
    m = date.month - 1 + months
    year = date.year + m // 12
    month = m % 12 + 1
    day = min(date.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day)


def due_date(first_due: dt.date, schedule: str, periods_paid: int) -> dt.date:
    """The next due date after periods_paid payments."""
    if schedule == "weekly":
        return first_due + dt.timedelta(days=7 * periods_paid)
    if schedule == "biweekly":
        return first_due + dt.timedelta(days=14 * periods_paid)
    if schedule == "monthly":
        return add_months(first_due, periods_paid)
    if schedule == "bimonthly":
        return add_months(first_due, 2 * periods_paid)
    if schedule == "semimonthly":
        return add_months(first_due, periods_paid // 2) + dt.timedelta(days=15 * (periods_paid % 2))
    raise ValueError("unknown schedule " + schedule)


def installment_for(installment_cents: int, old: str, new: str) -> int:
    """The installment of schedule `new` that keeps the yearly price of `installment_cents` on `old`:
    installment x (old a year) / (new a year), rounded half up to a whole cent."""
    yearly = installment_cents * PER_YEAR[old]
    per = PER_YEAR[new]
    return max((2 * yearly + per) // (2 * per), 1)
