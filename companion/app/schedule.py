"""Payment schedules and the due date each produces.

The n-th due date is counted from the account's first due date, not from the previous due date, so a
monthly schedule that starts on the 31st comes back to the 31st after a short month (Jan 31, Feb 29, Mar 31).
Bi-monthly means every two months.
"""

import calendar
import datetime as dt

SCHEDULES = ("weekly", "biweekly", "monthly", "bimonthly")


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
    raise ValueError("unknown schedule " + schedule)
