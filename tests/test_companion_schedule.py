"""Payment schedules and the due dates they produce."""

import datetime as dt

import pytest

from companion.app.schedule import add_months, due_date


def test_weekly_and_biweekly_add_whole_weeks():
    """Weekly adds 7 days per payment, bi-weekly 14."""
    start = dt.date(2026, 12, 1)
    assert due_date(start, "weekly", 0) == start
    assert due_date(start, "weekly", 3) == dt.date(2026, 12, 22)
    assert due_date(start, "biweekly", 2) == dt.date(2026, 12, 29)


def test_monthly_keeps_the_anchor_day_after_short_months():
    """Monthly from Jan 31 gives Feb 28/29, then Mar 31 again (counted from the first due date)."""
    start = dt.date(2028, 1, 31)
    assert [due_date(start, "monthly", n) for n in range(4)] == [
        dt.date(2028, 1, 31), dt.date(2028, 2, 29), dt.date(2028, 3, 31), dt.date(2028, 4, 30)]


def test_bimonthly_is_every_two_months_across_years():
    """Bi-monthly steps two months at a time, across the year end."""
    assert due_date(dt.date(2026, 11, 15), "bimonthly", 1) == dt.date(2027, 1, 15)
    assert due_date(dt.date(2026, 12, 31), "bimonthly", 1) == dt.date(2027, 2, 28)


def test_add_months_handles_negative_and_large_steps():
    """Month arithmetic clamps the day and works for any number of months."""
    assert add_months(dt.date(2026, 3, 31), -1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 1, 15), 25) == dt.date(2028, 2, 15)


def test_unknown_schedule_is_refused():
    """A schedule name outside the four raises."""
    with pytest.raises(ValueError):
        due_date(dt.date(2026, 1, 1), "daily", 1)
