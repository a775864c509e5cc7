"""Device time (interlock.timebase): seconds since its epoch, and days since that date (0 = not set)."""

import datetime as dt
import time

from interlock.timebase import EPOCH_UNIX

EPOCH = dt.datetime.fromtimestamp(EPOCH_UNIX, dt.UTC)
EPOCH_DATE = EPOCH.date()


def device_now() -> int:
    """The current device time in seconds."""
    return int(time.time()) - EPOCH_UNIX


def day_of(date: dt.date | None) -> int:
    """Days since 2024-01-01 for date (0 when date is None)."""
    if date is None:
        return 0
    return (date - EPOCH_DATE).days


def date_of(day: int) -> dt.date | None:
    """The date for a day number (None for 0)."""
    if not day:
        return None
    return EPOCH_DATE + dt.timedelta(days=day)


def today() -> dt.date:
    """Today's date in UTC."""
    return dt.datetime.now(dt.UTC).date()
